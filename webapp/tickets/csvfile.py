"""Tickets from a CSV file: one row per ticket line, the ticket's columns repeated on each of
its rows; a row-by-row report (accepted, already there, or rejected with the reason).

UTF-8 with or without BOM; comma or semicolon separated (the header row tells which).
Rows of one ticket (same branch + ticket number) need not be consecutive, but must agree on the
ticket's columns. Idempotent: a ticket already stored with the same content is "ya existía".
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from webapp.i18n_marker import N_, spanish
from webapp.models import Branch
from webapp.tickets.ingest import Outcome, branch_finder, ingest_ticket
from webapp.tickets.validate import LINE_KEYS, TICKET_KEYS, parse_ticket

TICKET_COLUMNS, LINE_COLUMNS = TICKET_KEYS, LINE_KEYS
COLUMNS = TICKET_COLUMNS + LINE_COLUMNS
OPTIONAL = frozenset({"currency", "forma_pago", "tax_factor", "tax_rate"})
MAX_ROWS = 20_000

# Each column: what it holds, for the page that documents the layout (msgids, es-MX).
COLUMN_DOCS = {
    "branch": N_("Clave de la sucursal, p. ej. CENTRO."),
    "ticket_number": N_("Número de ticket: sólo dígitos, hasta 40."),
    "order_number": N_("Número de pedido o de caja impreso en el ticket: sólo dígitos, hasta 40."),
    "sold_at": N_("Fecha y hora de venta ISO 8601 con zona horaria: 2026-05-01T13:45:00-06:00."),
    "total": N_(
        "Total del ticket con IVA, con punto decimal: 123.45. Debe coincidir con las "
        "partidas (importe = cantidad × precio redondeado a centavos, más su IVA redondeado)."
    ),
    "currency": N_("Moneda: MXN (opcional)."),
    "forma_pago": N_(
        "Forma de pago del SAT (c_FormaPago), opcional: 01 efectivo, 04 tarjeta de crédito, "
        "28 tarjeta de débito… Si se pagó de varias formas, la del mayor importe; 99 no se "
        "acepta. La factura global toma la forma de pago del mayor importe entre sus tickets "
        "y cuenta como 01 los que no la tienen."
    ),
    "description": N_("Descripción del producto o servicio."),
    "clave_prod_serv": N_("Clave del SAT de 8 dígitos (c_ClaveProdServ), p. ej. 50202306."),
    "clave_unidad": N_("Clave de unidad del SAT (c_ClaveUnidad), p. ej. H87 o KGM."),
    "quantity": N_("Cantidad, hasta seis decimales: 1 o 0.750."),
    "unit_price": N_("Precio unitario ANTES de impuestos, hasta seis decimales."),
    "objeto_imp": N_("01 (no objeto de impuesto) o 02 (sí objeto)."),
    "tax_factor": N_("Con 02: Tasa o Exento; vacío con 01."),
    "tax_rate": N_("Con Tasa: 0.160000, 0.080000 o 0.000000; vacío con Exento o 01."),
}

SAMPLE_ROWS = (
    (
        "CENTRO",
        "90000001",
        "500001",
        "2026-05-01T13:45:00-06:00",
        "108.01",
        "MXN",
        "04",
        "REFRESCO DE COLA 600 ML",
        "50202306",
        "H87",
        "2",
        "15.52",
        "02",
        "Tasa",
        "0.160000",
    ),
    (
        "CENTRO",
        "90000001",
        "500001",
        "2026-05-01T13:45:00-06:00",
        "108.01",
        "MXN",
        "04",
        "LECHE ENTERA 1 L",
        "50131702",
        "LTR",
        "2",
        "28.50",
        "02",
        "Tasa",
        "0.000000",
    ),
    (
        "CENTRO",
        "90000001",
        "500001",
        "2026-05-01T13:45:00-06:00",
        "108.01",
        "MXN",
        "04",
        "PERIODICO DEL DIA",
        "55101504",
        "H87",
        "1",
        "15.00",
        "02",
        "Exento",
        "",
    ),
)

# Messages: msgids (es-MX), translated where the report is shown.
NOT_UTF8 = N_("El archivo no está en UTF-8. Guárdelo como «CSV UTF-8» e intente de nuevo.")
EMPTY = N_("El archivo está vacío.")
MISSING_COLUMNS = N_("Faltan columnas: %(columns)s.")
TOO_MANY_ROWS = N_("El archivo tiene más de %(n)s filas; divídalo en varios.")
BAD_CSV = N_("No pudimos leer el archivo como CSV: %(error)s.")
UNKNOWN_COLUMN = N_("Columna desconocida: %(column)s.")
DIFFERENT_TICKET = N_("Los datos del ticket no coinciden con los de la fila %(row)s.")
SEE_ROW = N_("Ticket rechazado; vea la fila %(row)s.")
ACCEPTED = N_("Aceptado.")
EXISTED = N_("Ya existía; no se cambió.")


class CsvError(ValueError):
    """The file as a whole cannot be read: `message` (a msgid) with `params` says why;
    str() reads it in Spanish."""

    def __init__(self, message: str, **params: str) -> None:
        super().__init__(spanish(message, params))
        self.message = message
        self.params = params


@dataclass(frozen=True)
class Note:
    """One message of a row's report: a msgid with its params, about `column` if any."""

    message: str
    params: dict[str, str] = field(default_factory=dict, hash=False)
    column: str = ""

    @property
    def text(self) -> str:
        text = spanish(self.message, self.params)
        return f"{self.column}: {text}" if self.column else text

    def as_dict(self) -> dict:
        return {"message": self.message, "params": dict(self.params), "column": self.column}


@dataclass
class RowReport:
    row: int
    branch: str
    ticket_number: str
    status: str  # accepted | existing | rejected
    notes: list[Note] = field(default_factory=list)

    @property
    def message(self) -> str:
        """The row's notes in Spanish, one after the other."""
        return " ".join(note.text for note in self.notes)

    def as_dict(self) -> dict:
        """As stored: the notes to translate when shown, and `message` in Spanish (what
        reports stored before the notes existed hold, and what any reader falls back on)."""
        return {
            "row": self.row,
            "branch": self.branch,
            "ticket_number": self.ticket_number,
            "status": self.status,
            "message": self.message,
            "notes": [note.as_dict() for note in self.notes],
        }


@dataclass
class ImportReport:
    rows: list[RowReport] = field(default_factory=list)
    accepted: int = 0  # tickets created
    existing: int = 0  # tickets already there with the same content
    rejected: int = 0  # tickets refused


@dataclass
class _Group:
    rows: list[int]
    ticket: dict
    lines: list[dict]
    errors: dict[int, list[Note]] = field(default_factory=dict)


def sample_csv() -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows(SAMPLE_ROWS)
    return out.getvalue()


def _decode(data: bytes) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CsvError(NOT_UTF8) from exc


def read_rows(
    data: bytes, columns: tuple[str, ...] = COLUMNS, optional=OPTIONAL
) -> list[tuple[int, dict[str, str]]]:
    """(row number as a spreadsheet shows it, {column: value}) for each non-empty data row of
    a CSV whose header names `columns` (all but the `optional` ones) and no other."""
    text = _decode(data)
    if not text.strip():
        raise CsvError(EMPTY)
    first = text.splitlines()[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
        names = [name.strip().lower() for name in header]
        unknown = [name for name in names if name and name not in columns]
        if unknown:
            raise CsvError(UNKNOWN_COLUMN, column=", ".join(n[:40] for n in unknown[:5]))
        missing = [c for c in columns if c not in names and c not in optional]
        if missing:
            raise CsvError(MISSING_COLUMNS, columns=", ".join(missing))
        rows = []
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            if len(rows) >= MAX_ROWS:
                raise CsvError(TOO_MANY_ROWS, n=str(MAX_ROWS))
            row = {
                name: (values[i].strip() if i < len(values) else "")
                for i, name in enumerate(names)
                if name
            }
            rows.append((reader.line_num, row))
    except csv.Error as exc:
        raise CsvError(BAD_CSV, error=str(exc)) from exc
    return rows


def _group(rows: list[tuple[int, dict[str, str]]]) -> list[_Group]:
    groups: dict[tuple[str, str], _Group] = {}
    for number, row in rows:
        ticket = {c: row.get(c, "") for c in TICKET_COLUMNS}
        for name in OPTIONAL & set(TICKET_COLUMNS):
            if not ticket[name]:
                del ticket[name]
        line = {c: row.get(c, "") or None for c in LINE_COLUMNS}
        key = (ticket["branch"].upper(), ticket["ticket_number"])
        group = groups.get(key)
        if group is None:
            groups[key] = _Group(rows=[number], ticket=ticket, lines=[line])
            continue
        group.rows.append(number)
        group.lines.append(line)
        if ticket != group.ticket:
            note = Note(DIFFERENT_TICKET, {"row": str(group.rows[0])})
            group.errors.setdefault(number, []).append(note)
    return list(groups.values())


def import_csv(
    session: Session,
    issuer_id: int,
    data: bytes,
    *,
    now: datetime,
    allowed_branch_ids: Collection[int] | None = None,
    find_branch: Callable[[str], Branch | None] | None = None,
) -> ImportReport:
    """Read and store the file's tickets in the caller's transaction (each in a savepoint).
    Raises CsvError when the file as a whole is unusable."""
    find = find_branch or branch_finder(session, issuer_id)
    report = ImportReport()
    rows_out: dict[int, RowReport] = {}
    for group in _group(read_rows(data)):
        branch, number = group.ticket.get("branch", ""), group.ticket.get("ticket_number", "")

        def put(row: int, status: str, notes: list[Note], branch=branch, number=number) -> None:
            rows_out[row] = RowReport(row, branch, number, status, notes)

        errors = dict(group.errors)
        result = None
        if not errors:
            parsed = parse_ticket(
                {**group.ticket, "lines": group.lines},
                find,
                now=now,
                allowed_branch_ids=allowed_branch_ids,
            )
            if parsed.ticket is None:
                for error in parsed.errors:
                    row, column = _locate(error.field, group.rows)
                    note = Note(error.message, dict(error.params), column)
                    errors.setdefault(row, []).append(note)
            else:
                result = ingest_ticket(session, parsed.ticket)
                if result.outcome is Outcome.CONFLICT:
                    errors[group.rows[0]] = [Note(e.message, dict(e.params)) for e in result.errors]
        if errors:
            report.rejected += 1
            first = min(errors)
            for row in group.rows:
                see = [Note(SEE_ROW, {"row": str(first)})]
                put(row, "rejected", errors.get(row) or see)
        elif result is not None and result.outcome is Outcome.EXISTING:
            report.existing += 1
            for row in group.rows:
                put(row, "existing", [Note(EXISTED)])
        else:
            report.accepted += 1
            for row in group.rows:
                put(row, "accepted", [Note(ACCEPTED)])
    report.rows = [rows_out[row] for row in sorted(rows_out)]
    return report


def _locate(path: str, rows: list[int]) -> tuple[int, str]:
    """ "lines[2].quantity" → (the row of line 2, "quantity"); ticket fields → the first row."""
    if path.startswith("lines["):
        index, _, column = path[len("lines[") :].partition("]")
        column = column.lstrip(".") or "lines"
        if index.isdigit() and int(index) < len(rows):
            return rows[int(index)], column
    return rows[0], path
