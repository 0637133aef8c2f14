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

from webapp.models import Branch
from webapp.tickets.ingest import Outcome, branch_finder, ingest_ticket
from webapp.tickets.validate import parse_ticket

TICKET_COLUMNS = ("branch", "ticket_number", "order_number", "sold_at", "total", "currency")
LINE_COLUMNS = (
    "description",
    "clave_prod_serv",
    "clave_unidad",
    "quantity",
    "unit_price",
    "objeto_imp",
    "tax_factor",
    "tax_rate",
)
COLUMNS = TICKET_COLUMNS + LINE_COLUMNS
OPTIONAL = frozenset({"currency", "tax_factor", "tax_rate"})
MAX_ROWS = 20_000

# Each column: what it holds, for the page that documents the layout (es-MX).
COLUMN_DOCS = {
    "branch": "Clave de la sucursal, p. ej. CENTRO.",
    "ticket_number": "Número de ticket: sólo dígitos, hasta 40.",
    "order_number": "Número de pedido o de caja impreso en el ticket: sólo dígitos, hasta 40.",
    "sold_at": "Fecha y hora de venta ISO 8601 con zona horaria: 2026-05-01T13:45:00-06:00.",
    "total": "Total del ticket con IVA, con punto decimal: 123.45. Debe coincidir con las "
    "partidas (importe = cantidad × precio redondeado a centavos, más su IVA redondeado).",
    "currency": "Moneda: MXN (opcional).",
    "description": "Descripción del producto o servicio.",
    "clave_prod_serv": "Clave del SAT de 8 dígitos (c_ClaveProdServ), p. ej. 50202306.",
    "clave_unidad": "Clave de unidad del SAT (c_ClaveUnidad), p. ej. H87 o KGM.",
    "quantity": "Cantidad, hasta seis decimales: 1 o 0.750.",
    "unit_price": "Precio unitario ANTES de impuestos, hasta seis decimales.",
    "objeto_imp": "01 (no objeto de impuesto) o 02 (sí objeto).",
    "tax_factor": "Con 02: Tasa o Exento; vacío con 01.",
    "tax_rate": "Con Tasa: 0.160000, 0.080000 o 0.000000; vacío con Exento o 01.",
}

SAMPLE_ROWS = (
    (
        "CENTRO",
        "90000001",
        "500001",
        "2026-05-01T13:45:00-06:00",
        "108.01",
        "MXN",
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

NOT_UTF8 = "El archivo no está en UTF-8. Guárdelo como «CSV UTF-8» e intente de nuevo."
EMPTY = "El archivo está vacío."
MISSING_COLUMNS = "Faltan columnas: {columns}."
TOO_MANY_ROWS = "El archivo tiene más de {n} filas; divídalo en varios."
BAD_CSV = "No pudimos leer el archivo como CSV: {error}."
UNKNOWN_COLUMN = "Columna desconocida: {column}."
DIFFERENT_TICKET = "Los datos del ticket no coinciden con los de la fila {row}."
SEE_ROW = "Ticket rechazado; vea la fila {row}."
ACCEPTED = "Aceptado."
EXISTED = "Ya existía; no se cambió."


class CsvError(ValueError):
    """The file as a whole cannot be read; the message says why (es-MX)."""


@dataclass
class RowReport:
    row: int
    branch: str
    ticket_number: str
    status: str  # accepted | existing | rejected
    message: str

    def as_dict(self) -> dict:
        return self.__dict__.copy()


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
    errors: dict[int, list[str]] = field(default_factory=dict)


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


def read_rows(data: bytes) -> list[tuple[int, dict[str, str]]]:
    """(row number as a spreadsheet shows it, {column: value}) for each non-empty data row."""
    text = _decode(data)
    if not text.strip():
        raise CsvError(EMPTY)
    first = text.splitlines()[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    try:
        header = next(reader)
        names = [name.strip().lower() for name in header]
        unknown = [name for name in names if name and name not in COLUMNS]
        if unknown:
            raise CsvError(UNKNOWN_COLUMN.format(column=", ".join(unknown[:5])))
        missing = [c for c in COLUMNS if c not in names and c not in OPTIONAL]
        if missing:
            raise CsvError(MISSING_COLUMNS.format(columns=", ".join(missing)))
        rows = []
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            if len(rows) >= MAX_ROWS:
                raise CsvError(TOO_MANY_ROWS.format(n=MAX_ROWS))
            row = {
                name: (values[i].strip() if i < len(values) else "")
                for i, name in enumerate(names)
                if name
            }
            rows.append((reader.line_num, row))
    except csv.Error as exc:
        raise CsvError(BAD_CSV.format(error=exc)) from exc
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
            group.errors.setdefault(number, []).append(DIFFERENT_TICKET.format(row=group.rows[0]))
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

        def put(row: int, status: str, message: str, branch=branch, number=number) -> None:
            rows_out[row] = RowReport(row, branch, number, status, message)

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
                    errors.setdefault(row, []).append(f"{column}: {error.message}")
            else:
                result = ingest_ticket(session, parsed.ticket)
                if result.outcome is Outcome.CONFLICT:
                    errors[group.rows[0]] = [e.message for e in result.errors]
        if errors:
            report.rejected += 1
            first = min(errors)
            for row in group.rows:
                put(row, "rejected", " ".join(errors.get(row, [])) or SEE_ROW.format(row=first))
        elif result is not None and result.outcome is Outcome.EXISTING:
            report.existing += 1
            for row in group.rows:
                put(row, "existing", EXISTED)
        else:
            report.accepted += 1
            for row in group.rows:
                put(row, "accepted", ACCEPTED)
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
