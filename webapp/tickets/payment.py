"""How a ticket was paid: the SAT c_FormaPago codes a ticket may carry, and the forma de pago
that stands for several payments.

SAT's guide to filling in the CFDI (Anexo 20, FormaPago): when a payment was made with several
forms, the CFDI carries the form with which the greatest amount was paid.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal

from webapp.fiscal.catalogs import FORMAS_PAGO

POR_DEFINIR = "99"  # only with método de pago PPD: a paid ticket always knows its form
TICKET_FORMAS_PAGO: tuple[str, ...] = tuple(code for code in FORMAS_PAGO if code != POR_DEFINIR)


def predominant(payments: Iterable[tuple[str, Decimal]]) -> str | None:
    """The code whose (code, amount) payments add up to the greatest amount; a tie goes to
    the lower code. None when there is no payment."""
    sums: dict[str, Decimal] = {}
    for code, amount in payments:
        sums[code] = sums.get(code, Decimal(0)) + amount
    if not sums:
        return None
    return min(sums, key=lambda code: (-sums[code], code))
