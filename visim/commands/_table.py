"""Aligned plain-text tables for the human output of the listing commands.

A cell may hold several lines (``"a\\nb"``); its row then grows to as many lines, the other
cells staying on the first. The last column is not padded, so no line ends in spaces.
"""

from __future__ import annotations

from collections.abc import Sequence

GAP = "  "


def format_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Render ``rows`` under ``headers``, every column as wide as its widest line."""
    cells = [[str(cell).splitlines() or [""] for cell in row] for row in rows]
    for row in cells:
        if len(row) != len(headers):
            raise ValueError(f"row has {len(row)} cells for {len(headers)} columns: {row!r}")
    widths = [
        max([len(header), *(len(line) for row in cells for line in row[i])])
        for i, header in enumerate(headers)
    ]
    lines = [render_line(headers, widths)]
    for row in cells:
        height = max(len(cell) for cell in row)
        for n in range(height):
            lines.append(render_line([cell[n] if n < len(cell) else "" for cell in row], widths))
    return "\n".join(lines)


def render_line(values: Sequence[str], widths: Sequence[int]) -> str:
    padded = [value.ljust(width) for value, width in zip(values, widths)]
    return GAP.join(padded).rstrip()


def join_wrapped(prefix: str, items: Sequence[str], width: int = 72, indent: str = "  ") -> str:
    """``prefix a, b, c`` over as many lines as keep each under ``width``; items are never split.

    Lines after the first are indented by ``indent``, so a wrapped list reads as one entry.
    """
    lines = [prefix]
    for n, item in enumerate(items):
        text = f"{item}," if n < len(items) - 1 else item
        if n == 0 or len(lines[-1]) + 1 + len(text) <= width:
            lines[-1] = f"{lines[-1]} {text}" if lines[-1] else text
        else:
            lines.append(f"{indent}{text}")
    return "\n".join(lines)
