"""The one "did you mean" of visim: one similarity cutoff, one phrasing, everywhere.

Unknown component names, unknown config keys, unknown rule names and values outside a rule's
choices are all answered the same way: ``; did you mean 'cosine'?`` (or ``'adam' or 'adamw'``).
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

CUTOFF = 0.7  # close enough to be a typo ("extra" is not "train", 0.6), loose enough for "adamm"
MAX_SUGGESTIONS = 3


def close_matches(word: str, candidates: Iterable[str]) -> list[str]:
    """The candidates ``word`` is most likely a misspelling of, best first."""
    options = [c for c in dict.fromkeys(candidates) if isinstance(c, str)]
    return difflib.get_close_matches(word, options, n=MAX_SUGGESTIONS, cutoff=CUTOFF)


def suggestion(names: Iterable[str]) -> str:
    """``; did you mean 'a' or 'b'?`` for the given names, or ``""`` when there are none."""
    names = list(names)
    return f"; did you mean {' or '.join(map(repr, names))}?" if names else ""


def did_you_mean(word: object, candidates: Iterable[str]) -> str:
    """The suggestion for a misspelt ``word`` (``""`` when nothing is close, or not a string)."""
    return suggestion(close_matches(word, candidates)) if isinstance(word, str) else ""
