"""The Referencia of a payment slip: what the merchant tells the bank, and what the operator
matches the payment by.

Algorithm: seven digits, the first six drawn at random (100000–999999, never a leading zero),
the seventh a **Luhn check digit** (base 10, "módulo 10" as ISO/IEC 7812 defines it; computed
by python-stdnum's `stdnum.luhn`). Seven digits fit the numeric reference of a SPEI transfer
and of a deposit at a bank's window; a mistyped digit or two swapped neighbours fail the check.
Random rather than a running number: a reference says nothing of how many slips there are.
Unique by the database's constraint (payment_slip.reference); on the rare collision the caller
draws again (webapp.platform.slips.generate).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable

from stdnum import luhn

BODY_DIGITS = 6
ALGORITHM = "Luhn (módulo 10)"


def new_reference(randbelow: Callable[[int], int] = secrets.randbelow) -> str:
    """A fresh reference: six random digits and their Luhn check digit."""
    low = 10 ** (BODY_DIGITS - 1)
    body = str(low + randbelow(9 * low))
    return body + luhn.calc_check_digit(body)


def is_valid(reference: str) -> bool:
    """Whether `reference` is seven digits whose last is the Luhn check digit of the others."""
    reference = (reference or "").strip()
    return len(reference) == BODY_DIGITS + 1 and reference.isdigit() and luhn.is_valid(reference)
