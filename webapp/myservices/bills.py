"""Mis servicios: Facturación → Ver Factura and Estado de cuenta (seed 002, 3.x).

The customer picks a line (or account) they hold and sees its cycles ("cortes") by month;
Ver Factura opens a bill: its amounts and conceptos, its invoice's PDF and XML (the same
files and headers as every invoice download), or, for a receipt, the receipt's PDF and
"Solicitar factura" within the issuer's window. Estado de cuenta is the newest cycle's figures
and the history of the last 12, as a page and as a PDF. Everything goes through
webapp.billing.statement, which answers only about the service accounts of lines the
signed-in account holds: anyone else's bill is a 404, like one that does not exist.
"""

from __future__ import annotations

import io
import re
import secrets
from datetime import UTC, datetime

from flask import Response, abort, make_response, render_template, request, url_for
from flask_wtf import FlaskForm
from wtforms import HiddenField

from webapp.billing import statement as domain
from webapp.cfdi.amounts import totals
from webapp.extensions import db
from webapp.htmx import is_htmx, redirect_any, render
from webapp.issuing import credits, issue, retention
from webapp.models import BillKind, Issuer
from webapp.myservices import bp
from webapp.myservices.context import holder, holder_required, services_issuer
from webapp.services.stamping import Result, filename, files_with_pdf
from webapp.wiring import stamping

CYCLES = "ciclos"  # the id of the cycles' block, the htmx target of the line picker
KEY = re.compile(r"[A-Za-z0-9_-]{16,64}")


def _now() -> datetime:
    return datetime.now(UTC)


class AskInvoiceForm(FlaskForm):
    """Solicitar factura: the idempotency key of the invoice it asks for, made with the page
    (a second press of the same page's button answers the same invoice)."""

    key = HiddenField()


def _page(template: str, block: str, status: int = 200, **context) -> Response:
    """The page, or (htmx, aimed at `block`'s element) only that block."""
    if is_htmx() and request.headers.get("HX-Target") == block:
        return render(template, block, status, **context)
    response = make_response(render_template(template, **context), status)
    response.vary.add("HX-Request")
    return response


def _attachment(body: bytes, mimetype: str, name: str) -> Response:
    response = Response(body, mimetype=mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


def _safe(text: str) -> str:
    """A piece of a file name: letters, digits, - and _ only."""
    return re.sub(r"[^A-Za-z0-9_-]", "", text)[:40]


def _pdf(template: str, **context) -> bytes:
    """An HTML template printed by xhtml2pdf (imported here: half a second of imports that
    only these downloads need)."""
    from xhtml2pdf import pisa

    out = io.BytesIO()
    status = pisa.CreatePDF(render_template(template, **context), dest=out, encoding="utf-8")
    if status.err:
        raise RuntimeError(f"xhtml2pdf failed with {status.err} errors")
    return out.getvalue()


def _accent(issuer: Issuer) -> str:
    color = issuer.brand_color or ""
    return color.lower() if re.fullmatch(r"#[0-9a-fA-F]{6}", color) else "#333333"


# --- Facturación → Ver Factura ------------------------------------------------------------------


@bp.get("/<slug>/facturacion")
@holder_required
def bills(slug: str):
    """The lines held (a picker) and the cycles of the one picked."""
    issuer = services_issuer(slug)
    session, me = db.session, holder().id
    lines = domain.held_lines(session, me, issuer.id)
    asked = request.args.get("linea", "")
    choice = domain.choose(session, me, issuer.id, asked, lines) if lines else None
    cycles = domain.cycles(session, choice.account.id) if choice else []
    status = 404 if lines and choice is None else 200  # not held, or no such line: the same
    picked = None  # the line selected in the picker (the account's first, when by number)
    if choice is not None:
        picked = (
            choice.line.id
            if choice.line
            else next(line.id for line in lines if line.service_account_id == choice.account.id)
        )
    return _page(
        "myservices/bills.html",
        CYCLES,
        status,
        issuer=issuer,
        lines=lines,
        choice=choice,
        picked=picked,
        cycles=cycles,
    )


def _cycle_or_404(issuer: Issuer, public_id: str) -> domain.Cycle:
    cycle = domain.bill_for(db.session, holder().id, issuer.id, public_id)
    if cycle is None:  # not a bill of a service account this account holds a line of
        abort(404)
    return cycle


def _bill_page(issuer: Issuer, cycle: domain.Cycle, status: int = 200, **extra) -> Response:
    session, me = db.session, holder().id
    refusal = domain.refusal(session, cycle, issuer, me, _now())
    # A fresh key with every page: a press after a failure asks for a new invoice.
    form = AskInvoiceForm(formdata=None, key=secrets.token_urlsafe(24))
    return _page(
        "myservices/bill.html",
        "content",
        status,
        issuer=issuer,
        cycle=cycle,
        bill=cycle.bill,
        invoice=cycle.invoice,
        amounts=totals(issue.ticket_lines(cycle.bill.ticket)),
        refusal=refusal,
        last_day=domain.last_day_to_ask(cycle, issuer),
        profile=domain.profile_of(session, me) if refusal is None else None,
        form=form,
        notice=request.args.get("aviso"),
        **extra,
    )


@bp.get("/<slug>/facturacion/<public_id>")
@holder_required
def bill(slug: str, public_id: str):
    issuer = services_issuer(slug)
    cycle = _cycle_or_404(issuer, public_id)
    if cycle.invoice_pending:  # its process may be gone: settle it now
        stamping().settle_if_left(db.session, cycle.invoice, _now())
    return _bill_page(issuer, cycle)


@bp.get("/<slug>/facturacion/<public_id>.<any(xml, pdf):ext>")
@holder_required
def bill_file(slug: str, public_id: str, ext: str):
    """The bill's invoice, XML or PDF: the files every invoice download answers."""
    issuer = services_issuer(slug)
    cycle = _cycle_or_404(issuer, public_id)
    if not cycle.has_files:
        abort(404)
    invoice = cycle.invoice
    if ext == "xml":
        body = retention.files_of(db.session, invoice).xml
    else:  # rendered on the first download, then kept
        body = files_with_pdf(db.session, invoice).pdf
    if body is None:
        abort(404)
    mimetype = "application/xml" if ext == "xml" else "application/pdf"
    return _attachment(body, mimetype, filename(invoice, ext))


@bp.get("/<slug>/facturacion/<public_id>/recibo.pdf")
@holder_required
def bill_receipt(slug: str, public_id: str):
    """A receipt's PDF: the bill as the provider's document, not a CFDI."""
    issuer = services_issuer(slug)
    cycle = _cycle_or_404(issuer, public_id)
    if cycle.bill.kind is not BillKind.RECEIPT:
        abort(404)
    bill = cycle.bill
    body = _pdf(
        "myservices/pdf/receipt.html",
        issuer=issuer,
        bill=bill,
        cycle=cycle,
        amounts=totals(issue.ticket_lines(bill.ticket)),
        accent=_accent(issuer),
    )
    name = f"recibo_{_safe(issuer.rfc)}_{_safe(bill.account.number)}_{bill.period}.pdf"
    return _attachment(body, "application/pdf", name)


@bp.post("/<slug>/facturacion/<public_id>/factura")
@holder_required
def bill_invoice(slug: str, public_id: str):
    """Solicitar factura: the receipt's sale invoiced to the account's saved fiscal data."""
    issuer = services_issuer(slug)
    cycle = _cycle_or_404(issuer, public_id)
    form = AskInvoiceForm()
    if not form.validate_on_submit() or not KEY.fullmatch(form.key.data or ""):
        abort(400)
    me = holder().id
    refusal = domain.refusal(db.session, cycle, issuer, me, _now())
    if refusal is domain.Refusal.INVOICED:  # a second press: the first one's invoice
        return redirect_any(url_for(".bill", slug=slug, public_id=public_id))
    if refusal is not None:
        return _bill_page(issuer, cycle, 422)
    outcome = domain.ask_invoice(db.session, stamping(), cycle, issuer, me, form.key.data, _now())
    if outcome.result in (Result.STAMPED, Result.PENDING):
        url = url_for(".bill", slug=slug, public_id=public_id, aviso="solicitada")
        return redirect_any(url)
    cycle = _cycle_or_404(issuer, public_id)  # as the stamping left it
    status = {Result.TAKEN: 409, Result.UNAVAILABLE: 503}.get(outcome.result, 502)
    if outcome.code in credits.CODES:  # the provider has no stamps or licence: not an outage
        status = 409
    return _bill_page(issuer, cycle, status, failure=outcome.result.value)


# --- Estado de cuenta -----------------------------------------------------------------------------


def _statement_context(issuer: Issuer):
    """The account picked by ?cuenta= (or the first one held) and its statement; the status
    404 when the number is not one this account may see."""
    session, me = db.session, holder().id
    accounts = domain.visible_accounts(session, me, issuer.id)
    asked = request.args.get("cuenta", "")
    if asked:
        account = domain.account_by_number(session, me, issuer.id, asked)
    else:
        account = accounts[0] if accounts else None
    found = domain.statement(session, account) if account is not None else None
    status = 404 if asked and account is None else 200
    context = dict(issuer=issuer, accounts=accounts, account=account, asked=asked, st=found)
    return context, status


@bp.get("/<slug>/estado-de-cuenta")
@holder_required
def statement(slug: str):
    issuer = services_issuer(slug)
    context, status = _statement_context(issuer)
    return _page("myservices/statement.html", "estado", status, **context)


@bp.get("/<slug>/estado-de-cuenta.pdf")
@holder_required
def statement_pdf(slug: str):
    issuer = services_issuer(slug)
    context, _status = _statement_context(issuer)
    if context["st"] is None:
        abort(404)
    st = context["st"]
    body = _pdf("myservices/pdf/statement.html", accent=_accent(issuer), **context)
    period = st.latest.bill.period if st.latest else "sin-cortes"
    name = f"estado-de-cuenta_{_safe(st.account.number)}_{period}.pdf"
    return _attachment(body, "application/pdf", name)
