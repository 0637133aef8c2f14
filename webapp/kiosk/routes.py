"""Kiosk pages: enrolment link, start screen, "Terminar", the idle ping, printing, and the
hand-off to a phone."""

from __future__ import annotations

from datetime import UTC, datetime

import segno
from flask import (
    Response,
    abort,
    current_app,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_wtf import FlaskForm
from sqlalchemy import select

from webapp.extensions import db
from webapp.htmx import is_htmx, render
from webapp.invoicing import flow
from webapp.kiosk import bp, devices, web
from webapp.models import Branch, Invoice, InvoiceStatus, Ticket
from webapp.security.web import CSP
from webapp.services.stamping import filename, files_with_pdf

# The PDF printed from a frame of the kiosk's own page (everything else: frame-ancestors 'none').
PRINT_CSP = CSP.replace("frame-ancestors 'none'", "frame-ancestors 'self'")


def _now() -> datetime:
    return datetime.now(UTC)


def _kiosk():
    kiosk = web.current()
    if kiosk is None:
        abort(404)
    return kiosk


@bp.route("/kiosco/alta/<token>", methods=["GET", "POST"])
def enrol(token: str):
    """Staff open the enrolment link on the kiosk; the POST (a button, so that link
    previewers and mail scanners enrol nothing) makes this browser the kiosk."""
    hours = current_app.config["KIOSK_ENROL_HOURS"]
    kiosk = devices.read_enrol_token(
        db.session, current_app.config["SECRET_KEY"], token, hours * 3600
    )
    if kiosk is None:
        return render_template("kiosk/link_invalid.html"), 410
    if kiosk.branch.issuer.onboarding_pending:  # not offered to customers yet
        abort(404)
    form = FlaskForm()
    if form.validate_on_submit():
        previous = web.current()
        if previous is not None and previous.id != kiosk.id:
            devices.revoke(previous, _now())  # this browser was another kiosk: that one ends
        value = devices.claim(kiosk, _now())
        db.session.commit()
        session.clear()
        g.kiosk = kiosk
        response = redirect(url_for(".start"), 303)
        web.set_device_cookie(response, value)
        return response
    response = Response(render_template("kiosk/enrol.html", kiosk=kiosk, form=form, hours=hours))
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.get("/kiosco/")
def start():
    """The kiosk's start screen, between customers: whoever reaches it starts afresh, so it
    wipes the session (it has no idle countdown of its own). `?expirado=1`, where the idle
    wipe without JavaScript leads (a meta refresh), forgets the language too."""
    kiosk = web.current()
    if kiosk is None:
        return redirect(url_for("main.index"), 303)
    expired = bool(request.args.get("expirado"))
    web.wipe(language=expired)
    branch = kiosk.branch
    return render_template("kiosk/start.html", branch=branch, issuer=branch.issuer, expired=expired)


@bp.post("/kiosco/terminar")
def finish():
    """The "Terminar" buttons and the end of the idle countdown: the session is wiped and
    the next customer starts afresh."""
    if web.current() is None:
        return redirect(url_for("main.index"), 303)
    web.wipe()
    return web.redirect_any(url_for(".start"))


@bp.post("/kiosco/sigo-aqui")
def still_here():
    """The customer is active on the page (app.js): the request alone notes it."""
    _kiosk()
    return Response(status=204)


@bp.get("/kiosco/factura/<public_id>.pdf")
def print_pdf(public_id: str):
    """The invoice's PDF shown inline, for "Imprimir" (app.js prints it from a hidden frame;
    without JavaScript the link opens it)."""
    _kiosk()
    if not flow.owns(public_id):
        abort(404)
    invoice = db.session.scalar(select(Invoice).where(Invoice.public_id == public_id))
    if invoice is None or invoice.status is not InvoiceStatus.STAMPED:
        abort(404)
    pdf = files_with_pdf(db.session, invoice).pdf  # rendered on the first print, then kept
    if pdf is None:
        abort(404)
    response = Response(pdf, mimetype="application/pdf")
    name = filename(invoice, "pdf")
    response.headers["Content-Disposition"] = f'inline; filename="{name}"'
    response.headers["Content-Security-Policy"] = PRINT_CSP
    response.headers["X-Frame-Options"] = "SAMEORIGIN"
    return response


def qr_data_uri(url: str) -> str:
    """The QR as a data: URL (img-src allows it): a 1-bit PNG is ~1.5 KB, SVG ~7 KB."""
    return segno.make(url, error="m").png_data_uri(scale=5, border=3)


@bp.post("/kiosco/telefono")
def phone():
    """Continuar en mi teléfono: a QR of a short-lived, single-use link with the branch, the
    RFC (an Ecuadorian issuer's: the identificación and its tipo) and the ticket fields typed
    so far (posted from the ticket form: a POST, so that
    nothing typed lands in the kiosk's browser history)."""
    kiosk = _kiosk()
    issuer = kiosk.branch.issuer
    state = flow.get(issuer.slug)
    if not state.get("rfc"):
        return web.redirect_any(url_for(".start"))
    handoff = devices.Handoff(
        kiosk_id=kiosk.id,
        branch_id=kiosk.branch_id,
        rfc=state["rfc"],
        id_type=state.get("id_type", ""),
        fields={name: request.form.get(name, "") for name in devices.HANDOFF_FIELDS},
        tickets=list(state.get("tickets", [])),
    )
    token = devices.handoff_token(current_app.config["SECRET_KEY"], kiosk, handoff)
    db.session.commit()
    link = current_app.config["BASE_URL"].rstrip("/") + url_for(".continue_here", token=token)
    return render(
        "kiosk/phone.html",
        "dialog",
        qr=qr_data_uri(link),
        minutes=current_app.config["KIOSK_PHONE_LINK_MINUTES"],
        issuer=issuer,
        in_dialog=is_htmx(),
    )


@bp.get("/facturar/continuar/<token>")
def continue_here(token: str):
    """The phone's side: the flow resumes at the ticket step with what the kiosk sent."""
    if web.current() is not None:  # a kiosk cannot take over another's customer
        return redirect(url_for(".start"), 303)
    handoff = devices.redeem_handoff(
        db.session,
        current_app.config["SECRET_KEY"],
        token,
        current_app.config["KIOSK_PHONE_LINK_MINUTES"] * 60,
    )
    db.session.commit()
    branch = db.session.get(Branch, handoff.branch_id) if handoff else None
    if handoff is None or branch is None or not branch.active:
        return render_template("kiosk/link_invalid.html", phone=True), 410
    tickets = [
        t.id
        for t in (db.session.get(Ticket, i) for i in handoff.tickets)
        if t is not None and t.branch_id == branch.id
    ]
    slug = branch.issuer.slug
    flow.save(
        {
            "slug": slug,
            "branch_id": branch.id,
            "rfc": handoff.rfc,
            "id_type": handoff.id_type,
            "tickets": tickets,
            "prefill": handoff.fields,
        }
    )
    return redirect(url_for("invoicing.ticket", slug=slug), 303)
