"""The signed-in customer's invoices: one URL for the page, the results and "Cargar más";
downloads, exports and resending, every query scoped to the account."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import (
    Response,
    abort,
    current_app,
    redirect,
    render_template,
    request,
    stream_with_context,
    url_for,
)
from flask_babel import gettext as _
from flask_login import current_user, login_required
from sqlalchemy import select

from webapp.billing.statement import visible_account_ids
from webapp.extensions import db
from webapp.htmx import is_htmx, render
from webapp.invoicing import guard
from webapp.invoicing.forms import EmailForm
from webapp.issuing import retention
from webapp.models import Invoice
from webapp.panel import bp, exports, query
from webapp.panel.forms import FilterForm
from webapp.panel.listing import list_response, state_of
from webapp.security.web import local_path
from webapp.services.stamping import filename, files_with_pdf
from webapp.wiring import queue_invoice_mail

MAX_SELECTED = 200
FILTERS = ("q", "desde", "hasta", "emisor", "sucursal", "estado", "total_min", "total_max")

COLUMNS = (
    "Fecha",
    "RFC emisor",
    "Emisor",
    "Serie",
    "Folio",
    "UUID",
    "Sucursal",
    "Subtotal",
    "Impuestos",
    "Total",
    "Estado",
)


def _account_id() -> int:
    return current_user.account.id


def _scope() -> query.Scope:
    """The account's invoices and the bills of the service accounts whose lines it holds
    (LineHolder: one probe of its index led by account_id)."""
    account_id = _account_id()
    return query.Scope.account(account_id, visible_account_ids(db.session, account_id))


def _visible() -> list:
    scope = _scope()
    return query.visible(scope.account_id, scope.service_account_ids)


def _filter_form(scope: query.Scope) -> FilterForm:
    session = db.session
    return FilterForm(
        query.used_issuers(session, scope.account_id, scope.service_account_ids),
        query.used_branches(session, scope.account_id, scope.service_account_ids),
        formdata=request.args,
    )


@bp.get("/")
@login_required
def index():
    """The list: the full page, its results (filters changed) or the next rows (Cargar más)."""
    scope = _scope()
    form = _filter_form(scope)
    valid = form.validate()
    page = None
    if valid:
        page = query.page(db.session, scope, form.filters(), form.cursor())
    return _list(form, page, 200 if valid or is_htmx() else 400)


def _list(form: FilterForm, page: query.Page | None, status: int):
    return list_response(
        "panel/index.html",
        "panel.index",
        FILTERS,
        form,
        page,
        status,
        notice=request.args.get("aviso"),
        export_args={k: v for k, v in request.args.items() if k in FILTERS + ("orden",)},
    )


def _own(public_id: str) -> Invoice:
    """The account's invoice with this opaque id, or 404 (whoever else's it may be)."""
    invoice = db.session.scalar(select(Invoice).where(Invoice.public_id == public_id, *_visible()))
    if invoice is None:
        abort(404)
    return invoice


def _attachment(body, mimetype: str, filename: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/<public_id>.<any(xml, pdf):ext>")
@login_required
def download(public_id: str, ext: str):
    invoice = _own(public_id)
    if ext == "xml":
        body = retention.files_of(db.session, invoice).xml
    else:  # rendered on the first download, then kept
        body = files_with_pdf(db.session, invoice).pdf
    if body is None:
        abort(404, description=_("Esta factura no tiene archivos (es un dato de demostración)."))
    mimetype = "application/xml" if ext == "xml" else "application/pdf"
    return _attachment(body, mimetype, filename(invoice, ext))


def _zip_entries(invoices):
    for invoice in invoices:
        files = files_with_pdf(db.session, invoice)  # a PDF never rendered is rendered now
        for ext, body in (("xml", files.xml), ("pdf", files.pdf)):
            if body is not None:
                yield filename(invoice, ext), body


def _zip(invoices) -> Response:
    chunks = exports.zip_stream(_zip_entries(invoices))
    return _attachment(stream_with_context(chunks), "application/zip", "facturas.zip")


@bp.post("/zip")
@login_required
def zip_selected():
    """A ZIP of the rows ticked in the table."""
    chosen = request.form.getlist("f")[:MAX_SELECTED]
    if not chosen:
        return redirect(_back_to_list(aviso="ninguna"), 303)
    ids = db.session.scalars(
        select(Invoice.id)
        .where(Invoice.public_id.in_(chosen), *_visible())
        .order_by(Invoice.fecha.desc(), Invoice.id.desc())
    ).all()
    if not ids:
        abort(404)
    # Loaded while the response streams (what was loaded before is gone with the request).
    return _zip(db.session.get(Invoice, i) for i in ids)


def _volver() -> str:
    """The `volver` parameter when it is a page of Mis facturas, else ''."""
    back = local_path(request.values.get("volver")) or ""
    return back if back.startswith(url_for(".index")) else ""


def _back_to_list(**args) -> str:
    """The list the customer came from (its filters), with `args` added."""
    base = _volver() or url_for(".index")
    joiner = "&" if "?" in base else "?"
    return base + joiner + "&".join(f"{k}={v}" for k, v in args.items())


@bp.get("/exportar.<any(csv, xlsx, zip):fmt>")
@login_required
def export(fmt: str):
    """The whole filtered list as CSV or XLSX, or its files as a ZIP, streamed."""
    scope = _scope()
    form = _filter_form(scope)
    if not form.validate():
        return _list(form, None, 400)
    session, filters = db.session, form.filters()
    if fmt == "zip":
        limit = current_app.config["PANEL_ZIP_MAX"]
        if query.count_up_to(session, scope, filters, limit + 1) > limit:
            return render_template("panel/too_many.html", limit=limit), 422
        return _zip(row.invoice for row in query.all_rows(session, scope, filters))
    rows = (_export_row(row) for row in query.all_rows(session, scope, filters))
    if fmt == "csv":
        body = exports.csv_stream(COLUMNS, rows)
        return _attachment(stream_with_context(body), "text/csv; charset=utf-8", "facturas.csv")
    body = exports.xlsx_stream(COLUMNS, rows)
    return _attachment(
        stream_with_context(body),
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "facturas.xlsx",
    )


def _export_row(row: query.Row) -> tuple:
    invoice = row.invoice
    return (
        invoice.fecha,
        row.issuer.rfc,
        row.issuer.legal_name,
        invoice.serie,
        invoice.folio,
        invoice.uuid,
        row.branch.name,
        invoice.subtotal,
        invoice.taxes,
        invoice.total,
        state_of(invoice),
    )


@bp.route("/<public_id>/reenviar", methods=["GET", "POST"])
@login_required
def resend(public_id: str):
    """Send the invoice again, to one or more addresses, through the outbox (within the
    limits of webapp.invoicing.guard: a refusal is a 429 with its message on the field)."""
    invoice = _own(public_id)
    form = EmailForm(email=current_user.account.email if request.method == "GET" else None)
    sent = False
    refusal = None
    if retention.files_of(db.session, invoice).xml is None:
        form.email.errors = [_("Esta factura no tiene archivos (es un dato de demostración).")]
    elif form.validate_on_submit():
        refusal = guard.mail_refusal(invoice, len(form.addresses))
        if refusal:
            form.email.errors = [refusal]
        else:
            queue_invoice_mail(db.session, invoice, form.addresses)
            invoice.last_sent_at = datetime.now(UTC)
            db.session.commit()
            if not is_htmx():
                return redirect(_back_to_list(aviso="enviada"), 303)
            sent = True
    status = 429 if refusal else 422 if form.errors and not is_htmx() else 200
    return render(
        "panel/resend.html",
        "dialog",
        status,
        form=form,
        invoice=invoice,
        sent=sent,
        in_dialog=is_htmx(),
        volver=_volver(),
    )
