"""The merchant's own account with the platform (seed 003, PASO 3–8): the renewal quote
(a <dialog> over the back office when the licence expires within 30 days, a page without
JavaScript), the confirmation step, the constancias de pago (page and PDF) with their unique
reference, the proof of payment upload, the top bar (Consultar Constancia de Pago, VERSION
SAT 4.0, Timbres disponibles) and the message of a confirmed payment. Domain logic in
webapp.platform (quote, slips, proofs, reference, words, announcements)."""

from __future__ import annotations

import hashlib
import io
from datetime import UTC, datetime
from pathlib import Path

from flask import (
    Response,
    abort,
    current_app,
    g,
    has_request_context,
    make_response,
    render_template,
    request,
    send_file,
    session,
    url_for,
)
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from flask_wtf.file import FileField

from webapp.admin import auth, bp, privacy, scope
from webapp.admin.auth import current_staff, staff_required
from webapp.extensions import db
from webapp.htmx import is_htmx, redirect_any, render
from webapp.models import Issuer, PaymentSlip, StaffRole
from webapp.models.platform import SlipStatus
from webapp.platform import announcements, proofs, quote, reference, slips, words
from webapp.security.web import local_path

ADMIN = StaffRole.ISSUER_ADMIN
DISMISSED = "renewal_dismissed"  # session: the staff session's hash when "No deseo…" was pressed

STATUS_LABELS = {
    SlipStatus.PENDING: _l("Pendiente de pago"),
    SlipStatus.PROOF: _l("Comprobante recibido, en revisión"),
    SlipStatus.CONFIRMED: _l("Pago confirmado"),
    SlipStatus.CANCELLED: _l("Cancelada"),
}

PROOF_MESSAGES = {
    "empty": _l("Elija el archivo del comprobante de pago."),
    "too_big": _l("El archivo pesa más de %(mb)s MB. Suba uno más ligero."),
    "type": _l("El comprobante debe ser un PDF, JPG o PNG."),
    "closed": _l("Esta constancia ya no recibe comprobantes."),
}

# The quote does not open itself over these pages.
QUIET = {
    "admin.renewal",
    "admin.renewal_total",
    "admin.renewal_later",
    "admin.slip_new",
    "admin.privacy_gate",
    "admin.privacy_text",
}


# Files, not pages: they do not show the message of a confirmed payment.
DOWNLOADS = {
    "admin.slip_pdf",
    "admin.slip_proof_file",
    "admin.payment_manual",
    "admin.version_manual",
}


def _now() -> datetime:
    return datetime.now(UTC)


def _proofs_dir() -> Path:
    """Outside the web root: the PROOFS_DIR setting."""
    return Path(current_app.config["PROOFS_DIR"])


def _proof_limit() -> int:
    return int(current_app.config.get("PROOF_MAX_BYTES", proofs.MAX_BYTES))


def _session_hash() -> str:
    staff = str(session.get(auth.SESSION_KEY, ""))
    return hashlib.sha256(staff.encode()).hexdigest()[:16]


def _dismissed() -> bool:
    """Whether "No deseo generar en este momento…" was pressed in this sign-in (a new sign-in has a
    new staff session, so the quote is offered again)."""
    return session.get(DISMISSED) == _session_hash()


def _may_pay(member) -> bool:
    return member.role in (StaffRole.OPERATOR, ADMIN)


# --- The top bar and the quote's dialog, on every back-office page -------------------------


@bp.before_request
def _announce():
    """PASO 8: a confirmed payment's message, once, on the next whole page a staff member of
    the issuer opens (not over the privacy gate; the operator does not consume it)."""
    if request.method != "GET" or is_htmx() or request.endpoint in privacy.OPEN | DOWNLOADS:
        return None
    member = current_staff()
    if member is None or member.role is StaffRole.OPERATOR or member.issuer is None:
        return None
    if privacy.blocked():
        return None
    slip = announcements.pending_announcement(db.session, member.issuer)
    if slip is not None:
        announcements.announce(db.session, slip, _now())
        db.session.commit()
        g.announcement = slip
    return None


@bp.app_context_processor
def _account_context():
    if not has_request_context() or request.blueprint != "admin":
        return {}
    member = current_staff()
    if member is None:
        return {}
    issuer = scope.issuer_or_none()
    if issuer is None:
        return {}
    now = _now()
    may_pay = _may_pay(member)
    due = (
        may_pay
        and member.role is not StaffRole.OPERATOR  # the operator opens it from the top bar
        and quote.is_due(issuer, now)
        and request.endpoint not in QUIET
        and not _dismissed()
        and slips.open_slip(db.session, issuer.id) is None
    )
    return {
        "account_bar": {
            "issuer": issuer,
            "sat_version": issuer.country == "MX",
            "credits": issuer.stamp_credits,
            "may_pay": may_pay,
            "renewal_due": due,
            "days_left": quote.days_left(issuer, now),
            "expires": issuer.licence_expires_at,
        },
        "announcement": g.get("announcement"),
    }


# --- PASO 3: the quote ----------------------------------------------------------------------


def _chosen() -> set[int]:
    """The product ids ticked in the quote's form."""
    return quote.parse_chosen(request.form.getlist("producto"))


def _quote_page(
    issuer: Issuer, chosen: set[int] | None, block: str = "dialog", status=200, error=None
):
    lines = quote.lines(db.session, issuer, chosen)
    return render(
        "admin/account_quote.html",
        block,
        status=status,
        issuer=issuer,
        lines=lines,
        totals=quote.totals(lines),
        days_left=quote.days_left(issuer, _now()),
        error=error,
        in_dialog=is_htmx(),
    )


@bp.route("/renovar", methods=["GET", "POST"])
@staff_required(ADMIN)
def renewal():
    """The renewal quote; its form's "Generar constancia de pago" leads to the confirmation
    (PASO 4), which generates the slip."""
    issuer = scope.issuer()
    if request.method == "GET":
        return _quote_page(issuer, None)
    chosen = _chosen()
    lines = quote.lines(db.session, issuer, chosen)
    if not any(line.included for line in lines):
        return _quote_page(
            issuer, chosen, status=422, error=_("Marque al menos un producto para renovar.")
        )
    return render(
        "admin/account_confirm.html",
        "dialog",
        issuer=issuer,
        lines=[line for line in lines if line.included],
        totals=quote.totals(lines),
        in_dialog=is_htmx(),
    )


@bp.post("/renovar/total")
@staff_required(ADMIN)
def renewal_total():
    """The total as products are ticked (htmx swaps the total alone); without JavaScript,
    "Actualizar total" shows the whole quote again."""
    issuer = scope.issuer()
    return _quote_page(issuer, _chosen(), block="total")


@bp.post("/renovar/despues")
@staff_required(ADMIN)
def renewal_later():
    """No deseo generar en este momento la constancia de pago: not offered again until the
    next sign-in."""
    session[DISMISSED] = _session_hash()
    back = local_path(request.form.get("next"))
    if not back or not back.startswith("/admin") or back.startswith("/admin/renovar"):
        back = url_for("admin.home")
    return redirect_any(back)


# --- PASO 5: the slip -----------------------------------------------------------------------


@bp.post("/constancias")
@staff_required(ADMIN)
def slip_new():
    """Aceptar (PASO 4): the slip of the ticked products, with its unique reference."""
    issuer = scope.issuer()
    chosen = quote.parse_chosen(request.form.getlist("producto"))
    try:
        slip = slips.generate(db.session, issuer, current_staff(), chosen, _now())
    except slips.NothingChosen:
        db.session.rollback()
        return _quote_page(
            issuer, chosen, status=422, error=_("Marque al menos un producto para renovar.")
        )
    db.session.commit()
    return redirect_any(url_for("admin.slip", public_id=slip.public_id))


@bp.get("/constancias")
@staff_required(ADMIN)
def slips_list():
    """Consultar Constancia de Pago (PASO 7): the issuer's slips and their state."""
    issuer = scope.issuer()
    return render_template(
        "admin/account_slips.html",
        issuer=issuer,
        slips=slips.of_issuer(db.session, issuer.id),
        labels=STATUS_LABELS,
    )


def _slip_or_404(public_id: str) -> PaymentSlip:
    found = slips.find(db.session, scope.issuer().id, public_id)
    if found is None:
        abort(404)
    return found


class ProofForm(FlaskForm):
    proof = FileField(
        _l("Comprobante de pago (PDF, JPG o PNG)"),
        id="comprobante",
        render_kw={"accept": ".pdf,.jpg,.jpeg,.png,application/pdf,image/jpeg,image/png"},
    )


def _slip_context(slip: PaymentSlip) -> dict:
    config = slips.settings(db.session)
    return {
        "slip": slip,
        "issuer": slip.issuer,
        "platform": config,
        "banks": slips.banks(config),
        "in_words": words.amount_in_words(slip.total),
        "algorithm": reference.ALGORITHM,
        "reference_ok": reference.is_valid(slip.reference),
        "labels": STATUS_LABELS,
    }


def _slip_page(slip: PaymentSlip, form: ProofForm, status: int = 200):
    return render_template(
        "admin/account_slip.html",
        form=form,
        may_upload=slips.can_upload(slip),
        max_mb=_proof_limit() // (1024 * 1024),
        uploaded=bool(request.args.get("recibido")),
        **_slip_context(slip),
    ), status


@bp.get("/constancias/<public_id>")
@staff_required(ADMIN)
def slip(public_id: str):
    return _slip_page(_slip_or_404(public_id), ProofForm())


def _pdf(template: str, **context) -> bytes:
    """An HTML template printed by xhtml2pdf (imported here: only these downloads need it)."""
    from xhtml2pdf import pisa

    out = io.BytesIO()
    status = pisa.CreatePDF(render_template(template, **context), dest=out, encoding="utf-8")
    if status.err:
        raise RuntimeError(f"xhtml2pdf failed with {status.err} errors")
    return out.getvalue()


def _pdf_response(data: bytes, name: str) -> Response:
    response = make_response(data)
    response.headers["Content-Type"] = "application/pdf"
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    response.headers["Cache-Control"] = "private, no-store"
    return response


@bp.get("/constancias/<public_id>.pdf")
@staff_required(ADMIN)
def slip_pdf(public_id: str):
    slip = _slip_or_404(public_id)
    data = _pdf("admin/pdf/slip.html", **_slip_context(slip))
    return _pdf_response(data, f"constancia-{slip.reference}.pdf")


# --- PASO 6: the proof of payment -----------------------------------------------------------


@bp.post("/constancias/<public_id>/comprobante")
@staff_required(ADMIN)
def slip_proof(public_id: str):
    """The proof (PDF, JPG or PNG, judged by its content), stored outside the web root."""
    slip = _slip_or_404(public_id)
    form = ProofForm()
    upload = request.files.get("proof")
    data = upload.read(_proof_limit() + 1) if upload is not None else b""
    if form.validate_on_submit():
        try:
            slips.attach_proof(slip, data, _proofs_dir(), _now(), max_bytes=_proof_limit())
        except proofs.ProofError as error:
            db.session.rollback()
            message = PROOF_MESSAGES[error.code]
            form.proof.errors = [str(message) % {"mb": _proof_limit() // (1024 * 1024)}]
            return _slip_page(slip, form, 422)
        db.session.commit()
        return redirect_any(url_for("admin.slip", public_id=slip.public_id, recibido=1))
    return _slip_page(slip, form, 422)


@bp.get("/constancias/<public_id>/comprobante")
@staff_required(ADMIN)
def slip_proof_file(public_id: str):
    slip = _slip_or_404(public_id)
    path = proofs.path_of(_proofs_dir(), slip.proof_name or "")
    if path is None:
        abort(404)
    response = send_file(
        path,
        mimetype=slip.proof_type or "application/octet-stream",
        as_attachment=True,
        download_name=f"comprobante-{slip.reference}.{path.suffix.lstrip('.')}",
    )
    response.headers["Cache-Control"] = "private, no-store"
    return response


# --- The manuals ----------------------------------------------------------------------------


@bp.get("/renovar/manual.pdf")
@staff_required()
def payment_manual():
    """Descargar manual para realizar el pago (the seed's steps)."""
    return _pdf_response(_pdf("admin/pdf/manual.html", kind="payment"), "manual-de-pago.pdf")


@bp.get("/manual-cambio-de-version.pdf")
@staff_required()
def version_manual():
    """Manual para cambio de versión (PASO 8's link)."""
    return _pdf_response(
        _pdf("admin/pdf/manual.html", kind="version"), "manual-cambio-de-version.pdf"
    )
