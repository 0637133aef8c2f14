"""A bank statement (CSV) matched against the payment slips, row by row.

    report = match(session, data, confirm_one=lambda slip_id: applied_now)

The layout (a sample: `sample_csv()`): a header row naming the columns, in any order,

    fecha       the day of the deposit: 2026-01-31 or 31/01/2026
    referencia  the reference the merchant gave the bank (the slip's Referencia)
    monto       the amount deposited, in pesos: 1305.00, 1,305.00 or $1,305.00

UTF-8 with or without BOM, comma or semicolon separated (the header tells which), at most
MAX_ROWS rows; read by the tickets' CSV reader (webapp.tickets.csvfile.read_rows: the same
encoding, size and column checks). Nothing in the file is ever written back out as CSV, so a
cell that looks like a spreadsheet formula is only text here.

Each row is one of:
- matched: the reference is a pending slip's (or one with its proof) and the amount is its
  total: the slip is confirmed as by the operator's button (`confirm_one(slip_id)`, which
  applies the products once and issues the platform's CFDI);
- amount_differs ("monto distinto"): the reference is found but the amount is not the slip's
  total: nothing is confirmed;
- unknown ("referencia desconocida"): no slip has that reference;
- already: the slip was confirmed before (by the button, or an earlier row or file);
- cancelled: the slip with that reference was cancelled;
- invalid: the row cannot be read (no reference, an amount or a date that is not one).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from webapp.i18n_marker import N_
from webapp.models import PaymentSlip, SlipStatus
from webapp.platform.confirm import CONFIRMABLE
from webapp.tickets.csvfile import CsvError, read_rows

__all__ = ["COLUMNS", "CsvError", "Report", "Row", "match", "sample_csv"]

COLUMNS = ("fecha", "referencia", "monto")
MAX_ROWS = 5_000
COLUMN_DOCS = {
    "fecha": N_("Día del depósito: 2026-01-31 o 31/01/2026."),
    "referencia": N_("La referencia que el comercio dio al banco (la de su constancia de pago)."),
    "monto": N_("Importe depositado en pesos: 1305.00, 1,305.00 o $1,305.00."),
}
SAMPLE_ROWS = (
    ("2026-01-15", "0000012345678", "1305.00"),
    ("16/01/2026", "0000012345679", "$4,176.00"),
)
TOO_MANY_ROWS = N_("El archivo tiene más de %(n)s filas; divídalo en varios.")

MATCHED = "matched"
AMOUNT_DIFFERS = "amount_differs"
UNKNOWN = "unknown"
ALREADY = "already"
CANCELLED = "cancelled"
INVALID = "invalid"
OUTCOMES = (MATCHED, AMOUNT_DIFFERS, UNKNOWN, ALREADY, CANCELLED, INVALID)

BAD_AMOUNT = N_("El monto no es un importe: %(value)s.")
BAD_DATE = N_("La fecha no es un día: %(value)s.")
NO_REFERENCE = N_("Falta la referencia.")

_AMOUNT = re.compile(r"\$?\s*(\d{1,3}(,\d{3})+|\d+)(\.\d{1,2})?")
_CENTS = Decimal("0.01")


@dataclass
class Row:
    row: int  # as a spreadsheet numbers it
    day: date | None
    reference: str
    amount: Decimal | None
    outcome: str
    slip_id: int | None = None
    slip_public_id: str | None = None
    issuer_name: str = ""
    slip_total: Decimal | None = None
    note: str = ""  # a msgid (BAD_AMOUNT...), with `params`
    params: dict[str, str] = field(default_factory=dict)
    message: str = ""  # the note in the reader's language (filled by the view)


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for row in self.rows if row.outcome == outcome)


def sample_csv() -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows(SAMPLE_ROWS)
    return out.getvalue()


def parse_amount(text: str) -> Decimal | None:
    """Pesos of "1305", "1,305.00" or "$1,305.00" (two decimals at most); None otherwise."""
    value = (text or "").strip()
    if not _AMOUNT.fullmatch(value):
        return None
    try:
        return Decimal(value.lstrip("$").strip().replace(",", "")).quantize(_CENTS)
    except InvalidOperation:
        return None


def parse_day(text: str) -> date | None:
    value = (text or "").strip()
    for pattern in ("%Y-%m-%d", "%d/%m/%Y"):
        try:
            return datetime.strptime(value, pattern).date()
        except ValueError:
            continue
    return None


def normalize_reference(text: str) -> str:
    """The reference without blanks (banks print it in groups), upper case."""
    return re.sub(r"\s", "", text or "").upper()[:40]


def _read(data: bytes) -> list[tuple[int, dict[str, str]]]:
    rows = read_rows(data, COLUMNS, frozenset())
    if len(rows) > MAX_ROWS:
        raise CsvError(TOO_MANY_ROWS, n=str(MAX_ROWS))
    return rows


def match(
    session: Session,
    data: bytes,
    *,
    confirm_one: Callable[[int], bool],
) -> Report:
    """Read the statement and confirm each matched slip through `confirm_one(slip_id)`
    (which commits, and answers whether it applied the slip now: False when another
    confirmation came first). CsvError when the file as a whole cannot be read (nothing
    is confirmed then)."""
    rows = _read(data)
    report = Report()
    for number, values in rows:
        reference = normalize_reference(values.get("referencia", ""))
        amount_text = values.get("monto", "")
        day_text = values.get("fecha", "")
        amount, day = parse_amount(amount_text), parse_day(day_text)
        row = Row(number, day, reference, amount, INVALID)
        report.rows.append(row)
        if not reference:
            row.note = NO_REFERENCE
            continue
        if amount is None:
            row.note, row.params = BAD_AMOUNT, {"value": amount_text[:40]}
            continue
        if day is None:
            row.note, row.params = BAD_DATE, {"value": day_text[:40]}
            continue
        session.rollback()  # read what other confirmations committed meanwhile
        slip = session.scalar(
            select(PaymentSlip).where(func.upper(PaymentSlip.reference) == reference)
        )
        if slip is None:
            row.outcome = UNKNOWN
            continue
        row.slip_id, row.slip_public_id = slip.id, slip.public_id
        row.issuer_name, row.slip_total = slip.issuer.legal_name, Decimal(slip.total)
        if slip.status is SlipStatus.CONFIRMED:
            row.outcome = ALREADY
        elif slip.status not in CONFIRMABLE:
            row.outcome = CANCELLED
        elif Decimal(slip.total).quantize(_CENTS) != amount:
            row.outcome = AMOUNT_DIFFERS
        else:
            row.outcome = MATCHED if confirm_one(slip.id) else ALREADY
    return report
