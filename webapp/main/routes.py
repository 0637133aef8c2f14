"""Home page, language choice and health check."""

from __future__ import annotations

from flask import Response, abort, jsonify, redirect, render_template, request, url_for
from sqlalchemy import select, text

from webapp.extensions import db
from webapp.i18n import COOKIE, LANGUAGES
from webapp.main import bp
from webapp.models import Issuer
from webapp.security.web import cookie_options, local_path

HOME_ISSUERS = 12  # merchants listed on the home page; more are chosen on /facturar/


@bp.get("/")
def index():
    """The home page's way to invoice goes straight to a merchant's branch step: one
    merchant's button, or each merchant's when there are a few (no hop through /facturar/).
    Below, "Mis servicios": each services issuer's page (its customers' lines and bills)."""
    issuers = db.session.scalars(
        select(Issuer)
        .where(Issuer.kind == "retail", Issuer.onboarding_pending.is_(False))
        .order_by(Issuer.legal_name)
        .limit(HOME_ISSUERS + 1)
    ).all()
    providers = db.session.scalars(
        select(Issuer)
        .where(Issuer.kind == "services", Issuer.onboarding_pending.is_(False))
        .order_by(Issuer.legal_name)
        .limit(HOME_ISSUERS)
    ).all()
    return render_template(
        "main/index.html",
        issuers=issuers if len(issuers) <= HOME_ISSUERS else None,
        providers=providers,
    )


@bp.post("/idioma")
def language():
    """Remember the chosen language in a cookie and go back where the visitor was."""
    choice = request.form.get("lang", "")
    target = local_path(request.form.get("next")) or url_for("main.index")
    response = redirect(target, 303)
    if choice in LANGUAGES:
        response.set_cookie(
            COOKIE,
            choice,
            max_age=365 * 24 * 3600,
            **cookie_options(),
        )
    return response


@bp.get("/healthz")
def healthz():
    try:
        db.session.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any database failure means unhealthy
        return jsonify(status="error", database=type(exc).__name__), 503
    return jsonify(status="ok", database="ok")


@bp.get("/sandbox/pac.cer")
def sandbox_certificate():
    """The sandbox PAC's certificate (DER), so anyone can verify a sandbox SelloSAT."""
    from webapp.cfdi.pac.sandbox import SandboxPac
    from webapp.wiring import stamping

    pac = stamping().providers.deployment()
    if not isinstance(pac, SandboxPac):
        abort(404)
    response = Response(pac.certificate_der(), mimetype="application/pkix-cert")
    response.headers["Content-Disposition"] = 'attachment; filename="sandbox-pac.cer"'
    return response
