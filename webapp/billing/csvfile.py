"""The provider's data from CSV files, with a row-by-row report (created, updated,
unchanged, or rejected with the reason), stored through webapp.billing.catalog.

Three layouts, one per upload (the back office asks which one a file is): the columns of
accounts, charges and payments have little in common, and a file with all of them side by
side would be mostly empty cells.

- accounts: one row per line, the account's columns repeated on each of its rows (like the
  tickets' CSV); an account without lines is one row with the line's columns empty. Rows of
  one account need not be consecutive, but must agree on the account's columns. Lines not in
  the file stay as they are.
- charges: one row per charge (external_id is the provider's id).
- payments: one row per payment.

UTF-8 with or without BOM; comma or semicolon separated (the header row tells which). Empty
cells are left out: the field takes its default (a charge's IVA: the country's general rate,
16 % in Mexico, 15 % in Ecuador; write "exento" for exempt). Uploading a file again changes
nothing ("sin cambios").

The columns are the same in both countries; what they hold follows the issuer's country
(webapp.billing.catalog). `layout.for_country(country)` is the layout with that country's
help text and sample rows (KINDS are Mexico's): an Ecuadorian file has the holder's cédula or
passport, the RUC and razón social as fiscal data (the SAT columns fiscal_cp, fiscal_regimen
and fiscal_uso empty), SRI's IVA rates and formas de pago.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy.orm import Session

from webapp.billing import catalog
from webapp.billing.catalog import Outcome
from webapp.fiscal.rfc import normalize_rfc
from webapp.i18n_marker import N_
from webapp.models import Issuer
from webapp.tickets import csvfile as tickets_csv
from webapp.tickets.csvfile import (
    CsvError,
    Note,
)

__all__ = [
    "KINDS",
    "CsvError",
    "ImportReport",
    "Layout",
    "RowReport",
    "import_csv",
    "kinds",
    "sample_csv",
]

MAX_ROWS = 20_000

DIFFERENT_ACCOUNT = N_("Los datos de la cuenta no coinciden con los de la fila %(row)s.")
SEE_ROW = N_("Cuenta rechazada; vea la fila %(row)s.")
CREATED = N_("Creado.")
UPDATED = N_("Actualizado.")
UNCHANGED = N_("Ya existía igual; sin cambios.")
NOTES = {Outcome.CREATED: CREATED, Outcome.UPDATED: UPDATED, Outcome.UNCHANGED: UNCHANGED}
EXEMPT = ("exento", "EXENTO", "Exento")


@dataclass(frozen=True)
class Layout:
    """One kind of file: its columns (in order), which may be left empty, what each holds,
    and the rows of its sample."""

    kind: str
    columns: tuple[str, ...]
    optional: frozenset[str]
    docs: dict[str, str]
    sample: tuple[tuple[str, ...], ...]
    key_column: str  # what the report shows for each row
    # Ecuador: the help text that differs from Mexico's, and the sample's rows.
    ec_docs: dict[str, str] = field(default_factory=dict)
    ec_sample: tuple[tuple[str, ...], ...] = ()

    def for_country(self, country: str) -> Layout:
        """This layout with the help text and sample of `country` ("MX" or "EC")."""
        if country != "EC":
            return self
        return dataclasses.replace(
            self, docs={**self.docs, **self.ec_docs}, sample=self.ec_sample or self.sample
        )


ACCOUNT_COLUMNS = (
    "account_number",
    "holder_name",
    "holder_id",
    "fiscal_rfc",
    "fiscal_name",
    "fiscal_cp",
    "fiscal_regimen",
    "fiscal_uso",
    "email",
    "contact_mobile",
    "billing_day",
    "account_status",
)
LINE_COLUMNS = ("line_number", "service_type", "plan", "line_status")
FISCAL_COLUMNS = {f"fiscal_{name}": name for name in catalog.FISCAL_FIELDS}
# Account field → column (the API's names are shorter; the file has both sorts of number).
ACCOUNT_FIELD_COLUMNS = {"number": "account_number", "status": "account_status"}
LINE_FIELD_COLUMNS = {"number": "line_number", "status": "line_status"}
ACCOUNT_COLUMN_FIELDS = {column: name for name, column in ACCOUNT_FIELD_COLUMNS.items()}
LINE_COLUMN_FIELDS = {column: name for name, column in LINE_FIELD_COLUMNS.items()}

ACCOUNTS = Layout(
    kind="cuentas",
    columns=ACCOUNT_COLUMNS + LINE_COLUMNS,
    optional=frozenset(
        {
            *FISCAL_COLUMNS,
            "email",
            "contact_mobile",
            "billing_day",
            "account_status",
            "plan",
            "line_status",
        }
    ),
    docs={
        "account_number": N_("Número de cuenta del proveedor: letras, dígitos, . - _ /."),
        "holder_name": N_("Nombre del titular."),
        "holder_id": N_("RFC del titular; XAXX010101000 si no lo dio."),
        "fiscal_rfc": N_(
            "Datos fiscales (opcionales, los cinco o ninguno): RFC para sus facturas."
        ),
        "fiscal_name": N_("Nombre o razón social como en su Constancia de Situación Fiscal."),
        "fiscal_cp": N_("Código postal de su domicilio fiscal."),
        "fiscal_regimen": N_("Régimen fiscal del SAT, p. ej. 612."),
        "fiscal_uso": N_("Uso del CFDI del SAT, p. ej. G03."),
        "email": N_("Correo al que se envían sus facturas (opcional)."),
        "contact_mobile": N_(
            "Celular de contacto: ahí llegan los códigos de las líneas de contrato (opcional)."
        ),
        "billing_day": N_("Día de corte, del 1 al 28 (1 si se deja vacío)."),
        "account_status": N_("active, suspended o closed (active si se deja vacío)."),
        "line_number": N_(
            "Número de la línea: teléfono de 10 dígitos o número de contrato. Vacío: la "
            "cuenta sin líneas."
        ),
        "service_type": N_("Clave del tipo de servicio, p. ej. MOVIL."),
        "plan": N_("Clave del plan de ese tipo de servicio, p. ej. M-5GB."),
        "line_status": N_("active, suspended o closed (active si se deja vacío)."),
    },
    sample=(
        (
            "100900",
            "KARLA FUENTE NOLASCO",
            "FUNK671228PH6",
            "FUNK671228PH6",
            "KARLA FUENTE NOLASCO",
            "01160",
            "612",
            "G03",
            "karla@example.com",
            "55 8100 0000",
            "15",
            "active",
            "55 8100 0000",
            "MOVIL",
            "M-5GB",
            "active",
        ),
        (
            "100900",
            "KARLA FUENTE NOLASCO",
            "FUNK671228PH6",
            "FUNK671228PH6",
            "KARLA FUENTE NOLASCO",
            "01160",
            "612",
            "G03",
            "karla@example.com",
            "55 8100 0000",
            "15",
            "active",
            "C90000900",
            "HOGAR",
            "H-50",
            "active",
        ),
        (
            "100901",
            "JUAN PEREZ LOPEZ",
            "XAXX010101000",
            "",
            "",
            "",
            "",
            "",
            "",
            "55 8100 0001",
            "1",
            "",
            "55 8100 0001",
            "MOVIL",
            "M-15GB",
            "",
        ),
    ),
    key_column="account_number",
    ec_docs={
        "holder_id": N_("Cédula (10 dígitos) o pasaporte del titular."),
        "fiscal_rfc": N_(
            "Datos fiscales (opcionales, los dos o ninguno): RUC de 13 dígitos, terminado en "
            "001, para sus facturas."
        ),
        "fiscal_name": N_("Razón social como está registrada en el RUC."),
        "fiscal_cp": N_("Vacío en Ecuador (es un dato del SAT de México)."),
        "fiscal_regimen": N_("Vacío en Ecuador (es un dato del SAT de México)."),
        "fiscal_uso": N_("Vacío en Ecuador (es un dato del SAT de México)."),
        "line_number": N_(
            "Número de la línea: celular (099 800 0000 o +593 99 800 0000) o número de "
            "contrato. Vacío: la cuenta sin líneas."
        ),
    },
    ec_sample=(
        (
            "200900",
            "ANDRADE VERA MARÍA",
            "1712345675",
            "1712345675001",
            "ANDRADE VERA MARÍA",
            "",
            "",
            "",
            "maria@example.com",
            "099 800 0900",
            "15",
            "active",
            "099 800 0900",
            "MOVIL",
            "M-8GB",
            "active",
        ),
        (
            "200900",
            "ANDRADE VERA MARÍA",
            "1712345675",
            "1712345675001",
            "ANDRADE VERA MARÍA",
            "",
            "",
            "",
            "maria@example.com",
            "099 800 0900",
            "15",
            "active",
            "EC90000900",
            "HOGAR",
            "H-100",
            "active",
        ),
        (
            "200901",
            "ZAMBRANO MORA JOSÉ",
            "0912345675",
            "1792653185001",
            "COMERCIAL PICHINCHA DEMO CIA. LTDA.",
            "",
            "",
            "",
            "",
            "099 800 0901",
            "1",
            "",
            "099 800 0901",
            "MOVIL",
            "M-20GB",
            "",
        ),
        (
            "200902",
            "TORRES PAREDES ANA",
            "A1234567",
            "",
            "",
            "",
            "",
            "",
            "",
            "099 800 0902",
            "8",
            "",
            "099 800 0902",
            "MOVIL",
            "M-8GB",
            "",
        ),
    ),
)

CHARGES = Layout(
    kind="cargos",
    columns=catalog.CHARGE_FIELDS,
    optional=frozenset({"line", "quantity", "tax_rate", "clave_prod_serv", "clave_unidad"}),
    docs={
        "external_id": N_(
            "Identificador del cargo en su sistema: volver a enviarlo no lo duplica."
        ),
        "account": N_("Número de cuenta."),
        "line": N_("Número de la línea de la cuenta a la que corresponde (opcional)."),
        "period": N_("Periodo de facturación AAAA-MM, p. ej. 2026-05."),
        "description": N_("Descripción que aparece en la factura."),
        "quantity": N_("Cantidad, hasta seis decimales (1 si se deja vacío)."),
        "unit_price": N_("Precio unitario ANTES de impuestos, hasta seis decimales."),
        "tax_rate": N_("IVA: 0.160000 (si se deja vacío), 0.080000, 0.000000 o «exento»."),
        "clave_prod_serv": N_("Clave del SAT de 8 dígitos (81161700 si se deja vacío)."),
        "clave_unidad": N_("Clave de unidad del SAT (E48 si se deja vacío)."),
    },
    sample=(
        (
            "CARGO-0001",
            "100900",
            "55 8100 0000",
            "2026-05",
            "Datos adicionales 2 GB",
            "1",
            "86.21",
            "",
            "",
            "",
        ),
        (
            "CARGO-0002",
            "100900",
            "",
            "2026-05",
            "Cargo por pago tardío",
            "1",
            "50",
            "exento",
            "",
            "",
        ),
    ),
    key_column="external_id",
    ec_docs={
        "tax_rate": N_("IVA: 0.150000 (si se deja vacío), 0.050000, 0.000000 o «exento»."),
        "clave_prod_serv": N_(
            "Código del producto o servicio, hasta 8 letras o dígitos (opcional: la factura "
            "del SRI no lo lleva)."
        ),
        "clave_unidad": N_("Código de unidad, hasta 3 letras o dígitos (opcional)."),
    },
    ec_sample=(
        (
            "CARGO-0001",
            "200900",
            "099 800 0900",
            "2026-05",
            "Datos adicionales 2 GB",
            "1",
            "4.35",
            "",
            "",
            "",
        ),
        (
            "CARGO-0002",
            "200900",
            "",
            "2026-05",
            "Cargo por pago tardío",
            "1",
            "2.00",
            "exento",
            "",
            "",
        ),
    ),
)

PAYMENTS = Layout(
    kind="pagos",
    columns=catalog.PAYMENT_FIELDS,
    optional=frozenset({"forma_pago", "reference"}),
    docs={
        "external_id": N_("Identificador del pago en su sistema: volver a enviarlo no lo duplica."),
        "account": N_("Número de cuenta."),
        "amount": N_("Importe recibido, con punto decimal: 349.00."),
        "received_at": N_(
            "Fecha y hora del pago ISO 8601 con zona horaria: 2026-05-03T10:00:00-06:00."
        ),
        "forma_pago": N_("Forma de pago del SAT (c_FormaPago), p. ej. 03 transferencia."),
        "reference": N_("Referencia del pago (opcional)."),
    },
    sample=(
        ("PAGO-0001", "100900", "349.00", "2026-05-03T10:00:00-06:00", "03", "SPEI 123456"),
        ("PAGO-0002", "100901", "350.00", "2026-05-04T18:30:00-06:00", "01", ""),
    ),
    key_column="external_id",
    ec_docs={
        "received_at": N_(
            "Fecha y hora del pago ISO 8601 con zona horaria: 2026-05-03T10:00:00-05:00."
        ),
        "forma_pago": N_(
            "Forma de pago del SRI, p. ej. 20 (otros con utilización del sistema financiero) o "
            "19 (tarjeta de crédito)."
        ),
    },
    ec_sample=(
        ("PAGO-0001", "200900", "25.00", "2026-05-03T10:00:00-05:00", "20", "TRANSF 123456"),
        ("PAGO-0002", "200901", "25.00", "2026-05-04T18:30:00-05:00", "19", ""),
    ),
)

KINDS = {layout.kind: layout for layout in (ACCOUNTS, CHARGES, PAYMENTS)}


@dataclass
class RowReport:
    row: int
    key: str
    status: str  # created | updated | unchanged | rejected
    notes: list[Note] = field(default_factory=list)

    @property
    def message(self) -> str:
        return " ".join(note.text for note in self.notes)


@dataclass
class ImportReport:
    kind: str
    rows: list[RowReport] = field(default_factory=list)
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    rejected: int = 0

    def count(self, outcome: Outcome) -> None:
        name = "rejected" if outcome in (Outcome.REJECTED, Outcome.CONFLICT) else outcome.value
        setattr(self, name, getattr(self, name) + 1)


def kinds(country: str) -> dict[str, Layout]:
    """The layouts with the help text and samples of `country` ("MX" or "EC")."""
    return {kind: layout.for_country(country) for kind, layout in KINDS.items()}


def sample_csv(layout: Layout, country: str | None = None) -> str:
    """The layout's sample file; `country` chooses its rows (default: the layout's own)."""
    if country is not None:
        layout = layout.for_country(country)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(layout.columns)
    writer.writerows(layout.sample)
    return out.getvalue()


def read_rows(layout: Layout, data: bytes) -> list[tuple[int, dict[str, str]]]:
    """(row number as a spreadsheet shows it, {column: value}) for each non-empty data row,
    read as the tickets' CSV is (encoding, delimiter, limits), with the layout's columns."""
    return tickets_csv.read_rows(data, layout.columns, layout.optional)


def _present(row: dict[str, str], columns) -> dict[str, str]:
    """The row's non-empty cells of `columns`."""
    return {c: row[c] for c in columns if row.get(c)}


def import_csv(
    session: Session, issuer: Issuer, kind: str, data: bytes, *, now: datetime
) -> ImportReport:
    """Read and store the file in the caller's transaction (each item in a savepoint).
    Raises CsvError when the file as a whole is unusable."""
    layout = KINDS[kind]
    rows = read_rows(layout, data)
    report = ImportReport(kind)
    if layout is ACCOUNTS:
        _accounts(session, issuer, rows, report)
    else:
        put = catalog.put_charge if layout is CHARGES else _payment_putter(now)
        for number, row in rows:
            payload = _present(row, layout.columns)
            if layout is CHARGES and payload.get("tax_rate") in EXEMPT:
                payload["tax_rate"] = None
            result = put(session, issuer, payload)
            report.count(result.outcome)
            report.rows.append(_row_report(number, row.get(layout.key_column, ""), result))
    report.rows.sort(key=lambda r: r.row)
    return report


def _payment_putter(now: datetime) -> Callable:
    def put(session, issuer, payload):
        return catalog.put_payment(session, issuer, payload, now=now)

    return put


def _row_report(number: int, key: str, result: catalog.Result, columns=None) -> RowReport:
    if result.ok:
        return RowReport(number, key, result.outcome.value, [Note(NOTES[result.outcome])])
    notes = [
        Note(e.message, dict(e.params), (columns or {}).get(e.field, e.field))
        for e in result.errors
    ]
    return RowReport(number, key, "rejected", notes)


@dataclass
class _Account:
    rows: list[int]
    account: dict[str, str]
    lines: list[tuple[int, dict[str, str]]]
    errors: dict[int, list[Note]] = field(default_factory=dict)


def _accounts(session: Session, issuer: Issuer, rows, report: ImportReport) -> None:
    groups: dict[str, _Account] = {}
    for number, row in rows:
        account = {c: row.get(c, "") for c in ACCOUNT_COLUMNS}
        line = _present(row, LINE_COLUMNS)
        group = groups.get(account["account_number"])
        if group is None:
            group = groups[account["account_number"]] = _Account([number], account, [])
        else:
            group.rows.append(number)
            if account != group.account:
                note = Note(DIFFERENT_ACCOUNT, {"row": str(group.rows[0])})
                group.errors.setdefault(number, []).append(note)
        if line:
            group.lines.append((number, line))

    for group in groups.values():
        key = group.account["account_number"]
        errors = dict(group.errors)
        result = None
        if not errors:
            result = catalog.put_account(session, issuer, _account_payload(issuer, group))
            if not result.ok:
                for error in result.errors:
                    row, column = _locate(error.field, group)
                    errors.setdefault(row, []).append(
                        Note(error.message, dict(error.params), column)
                    )
        if errors:
            report.rejected += 1
            first = min(errors)
            for row in group.rows:
                notes = errors.get(row) or [Note(SEE_ROW, {"row": str(first)})]
                report.rows.append(RowReport(row, key, "rejected", notes))
            continue
        report.count(result.outcome)
        for row in group.rows:
            report.rows.append(
                RowReport(row, key, result.outcome.value, [Note(NOTES[result.outcome])])
            )


def _account_payload(issuer: Issuer, group: _Account) -> dict:
    cells = _present(group.account, ACCOUNT_COLUMNS)
    payload: dict = {
        ACCOUNT_COLUMN_FIELDS.get(name, name): value
        for name, value in cells.items()
        if name not in FISCAL_COLUMNS
    }
    payload["number"] = group.account["account_number"]
    if issuer.country == "MX" and "holder_id" in payload:
        payload["holder_id"] = normalize_rfc(payload["holder_id"])
    fiscal = {FISCAL_COLUMNS[c]: v for c, v in cells.items() if c in FISCAL_COLUMNS}
    if fiscal:
        if "rfc" in fiscal and issuer.country == "MX":
            fiscal["rfc"] = normalize_rfc(fiscal["rfc"])
        payload["fiscal"] = fiscal
    day = cells.get("billing_day")
    if day is not None and day.isascii() and day.isdigit() and len(day) <= 2:
        payload["billing_day"] = int(day)
    payload["lines"] = [
        {LINE_COLUMN_FIELDS.get(name, name): value for name, value in line.items()}
        for _number, line in group.lines
    ]
    return {name: value for name, value in payload.items() if value is not None}


def _locate(path: str, group: _Account) -> tuple[int, str]:
    """ "lines[2].plan" → (the row of line 2, "plan"); "fiscal.cp" → (first row, fiscal_cp)."""
    if path.startswith("lines["):
        index, _, name = path[len("lines[") :].partition("]")
        name = name.lstrip(".")
        if index.isdigit() and int(index) < len(group.lines):
            return group.lines[int(index)][0], LINE_FIELD_COLUMNS.get(name, name)
    if path.startswith("fiscal."):
        return group.rows[0], "fiscal_" + path[len("fiscal.") :]
    return group.rows[0], ACCOUNT_FIELD_COLUMNS.get(path, path)
