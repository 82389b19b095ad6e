"""Turning identity and camera names into integers, the same way in every format."""

from __future__ import annotations

from collections.abc import Iterable

from visim.data.records import DataError


def number_labels(values: Iterable[str], what: str = "identity") -> dict[str, int]:
    """Integer strings keep their value; any other set of names is numbered in sorted order."""
    values = set(values)
    try:
        numbers = {value: int(value) for value in values}
    except ValueError:
        return {value: index for index, value in enumerate(sorted(values))}
    by_number: dict[int, list[str]] = {}
    for value, number in numbers.items():
        by_number.setdefault(number, []).append(value)
    clashes = sorted(v for names in by_number.values() if len(names) > 1 for v in names)
    if clashes:
        raise DataError(f"{what} names {clashes} are the same number")
    return numbers


def sorted_numerically(values: Iterable[str]) -> list[str]:
    values = list(values)
    try:
        return sorted(values, key=int)
    except ValueError:
        return sorted(values)
