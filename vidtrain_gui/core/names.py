"""Names the user types (a class, a source group): one way to clean them, so every name shows and compares alike."""

from __future__ import annotations

import unicodedata

# Characters that reorder the text shown around them: a name with one reads differently from what it is.
BIDI_CONTROLS = frozenset("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def fold_name(value: object, what: str, max_length: int) -> str:
    """``value`` with its runs of white space folded to one space (tabs and newlines pasted in from elsewhere too),
    possibly empty. A ValueError naming ``what`` ("A class name") for anything but text, a control character (a
    NUL, an escape, a lone surrogate, a right-to-left override: invisible or unsafe), or more than ``max_length``
    characters. Callers turn it into their own error type."""
    if not isinstance(value, str):
        raise ValueError(f"{what} must be text, got {value!r}.")
    cleaned = " ".join(value.split())
    bad = next((ch for ch in cleaned if unicodedata.category(ch) in ("Cc", "Cs") or ch in BIDI_CONTROLS), None)
    if bad is not None:
        raise ValueError(
            f"{what} cannot contain control characters (U+{ord(bad):04X} found): type it again without it."
        )
    if len(cleaned) > max_length:
        raise ValueError(f"{what} can have at most {max_length} characters: shorten '{cleaned}'.")
    return cleaned
