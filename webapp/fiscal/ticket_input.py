"""Order numbers, ticket numbers and totals as customers type them from a printed ticket."""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal, InvalidOperation

__all__ = ["MAX_TOTAL_DIGITS", "normalize_number", "parse_total"]

MAX_TOTAL_DIGITS = 12
"""Integer digits of the largest total stored (the Money column is NUMERIC(14, 2))."""

# Whitespace, dashes (ASCII and Unicode), dots and '#': separators printed or typed by habit.
_NUMBER_NOISE = re.compile(r"[\s\-\u2010-\u2015\u2212.#]+")
# Letters that look like digits on a receipt: O → 0; I, l, | → 1.
_LOOKALIKES = str.maketrans({"O": "0", "o": "0", "I": "1", "i": "1", "l": "1", "|": "1"})

_CENT = Decimal("0.01")
_GROUPED = re.compile(r"\d{1,3}(,\d{3})+")  # 1,234 or 1,234,567


def normalize_number(value: str | None) -> str:
    """An order or ticket number without separators and with look-alike letters as digits.

    Removes spaces, dashes, dots and '#'; O/o → 0; I, i, l, | → 1; full-width digits → ASCII.
    Other characters are kept, so the caller can refuse what is still not a digit.

    >>> normalize_number("12-34 O5")
    '123405'
    """
    if not value:
        return ""
    value = unicodedata.normalize("NFKC", value)
    return _NUMBER_NOISE.sub("", value).translate(_LOOKALIKES)


def _split(amount: str) -> tuple[str, str] | None:
    """Integer and decimal digits of an amount without currency sign nor spaces, or None.

    "." is the decimal point, "," separates thousands (1,234.50); "," is the decimal point
    instead when it is the only separator, appears once and has 1 or 2 digits after it (12,5).
    """
    if not amount or amount.strip("0123456789.,"):
        return None
    if "," in amount and "." not in amount:
        whole, _, decimals = amount.partition(",")
        if "," not in decimals and 1 <= len(decimals) <= 2 and decimals.isdigit():
            return whole, decimals
        return (amount.replace(",", ""), "") if _GROUPED.fullmatch(amount) else None
    whole, dot, decimals = amount.partition(".")
    if "." in decimals or "," in decimals:
        return None
    if "," in whole:
        if not _GROUPED.fullmatch(whole):
            return None
        whole = whole.replace(",", "")
    if not whole and not decimals:
        return None
    return whole, decimals


def parse_total(value: str | None) -> Decimal | None:
    """A ticket total as a Decimal with 2 places, or None when it is not a valid amount.

    Accepts "1234.5", "1,234.50", "$ 1 234.50", "1234,50", "12,5". Refuses negatives, more than
    two decimals ("1.234" is not one thousand: Mexican tickets use "." for decimals), letters,
    and more than MAX_TOTAL_DIGITS integer digits. Never goes through float.
    """
    if not value:
        return None
    amount = "".join(unicodedata.normalize("NFKC", value).split())
    amount = amount.removeprefix("$")
    parts = _split(amount)
    if parts is None:
        return None
    whole, decimals = parts
    whole = whole.lstrip("0")
    if len(decimals) > 2 or len(whole) > MAX_TOTAL_DIGITS:
        return None
    try:
        return Decimal(f"{whole or '0'}.{decimals or '0'}").quantize(_CENT)
    except InvalidOperation:  # pragma: no cover - the digits were checked above
        return None
