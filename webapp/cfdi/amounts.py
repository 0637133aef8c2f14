"""The one place where invoice money is rounded.

A line's Importe is round(quantity × unit price, 2) and its IVA round(Importe × rate, 2), both
half up; a ticket's total is the sum of both over its lines. The CFDI's SubTotal, Traslados and
Total are sums of exactly these figures, so a customer who types the total printed on a ticket
gets an invoice for the same amount, to the cent.

The functions take anything shaped like `webapp.cfdi.draft.Line` (quantity, unit_price,
objeto_imp, tax_factor, tax_rate): a Line, a TicketLine row, a demo line.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

CENT = Decimal("0.01")
ZERO = Decimal("0.00")


class Priced(Protocol):
    quantity: Decimal
    unit_price: Decimal
    objeto_imp: str
    tax_factor: str | None
    tax_rate: Decimal | None


def money(value: Decimal) -> Decimal:
    """`value` rounded half up to cents."""
    return value.quantize(CENT, ROUND_HALF_UP)


def line_importe(line: Priced) -> Decimal:
    """The Concepto's Importe (and its tax Base): round(quantity × unit_price, 2)."""
    return money(Decimal(line.quantity) * Decimal(line.unit_price))


def line_tax(line: Priced) -> Decimal | None:
    """The line's IVA: round(Importe × rate, 2); None when exempt or not subject to tax."""
    if line.objeto_imp != "02" or line.tax_factor != "Tasa" or line.tax_rate is None:
        return None
    return money(line_importe(line) * Decimal(line.tax_rate))


def line_amount(line: Priced) -> Decimal:
    """What a line adds to the ticket: its Importe plus its IVA."""
    return line_importe(line) + (line_tax(line) or ZERO)


def ticket_total(lines: Iterable[Priced]) -> Decimal:
    """The ticket's printed total, which is the CFDI's Total."""
    return sum((line_amount(line) for line in lines), ZERO)


@dataclass(frozen=True)
class TaxGroup:
    """One comprobante-level Traslado of IVA: the sums over the lines of one factor and rate.

    `rate` and `amount` are None for Exento (SAT writes neither TasaOCuota nor Importe).
    """

    factor: str
    rate: Decimal | None
    base: Decimal
    amount: Decimal | None


@dataclass(frozen=True)
class Totals:
    """SubTotal, the Traslados grouped by factor and rate, their total, and the Total."""

    subtotal: Decimal
    taxes: tuple[TaxGroup, ...]
    tax_total: Decimal | None  # TotalImpuestosTrasladados: None when no line has a Tasa
    total: Decimal

    def tax(self, rate: Decimal) -> TaxGroup | None:
        """The Tasa group for `rate` (e.g. Decimal("0.16")), if any line has it."""
        return next((t for t in self.taxes if t.rate is not None and t.rate == rate), None)

    @property
    def exempt(self) -> TaxGroup | None:
        return next((t for t in self.taxes if t.factor == "Exento"), None)


def totals(lines: Iterable[Priced]) -> Totals:
    """The comprobante's figures; groups in order of first appearance, like SAT's examples."""
    lines = list(lines)
    subtotal = sum((line_importe(line) for line in lines), ZERO)
    groups: dict[tuple[str, Decimal | None], tuple[Decimal, Decimal | None]] = {}
    for line in lines:
        if line.objeto_imp != "02":
            continue
        rate = None if line.tax_rate is None else Decimal(line.tax_rate)
        key = (str(line.tax_factor), rate)
        base, amount = groups.get(key, (ZERO, None))
        tax = line_tax(line)
        groups[key] = (
            base + line_importe(line),
            amount if tax is None else (amount or ZERO) + tax,
        )
    taxes = tuple(
        TaxGroup(factor, rate, base, amount if factor == "Tasa" else None)
        for (factor, rate), (base, amount) in groups.items()
    )
    amounts = [t.amount for t in taxes if t.amount is not None]
    tax_total = sum(amounts, ZERO) if amounts else None
    return Totals(subtotal, taxes, tax_total, subtotal + (tax_total or ZERO))
