"""Back-office sign-in, recovery, the operator's issuer picker and the dashboard."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import (
    current_app,
    has_request_context,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask_babel import gettext as _
from sqlalchemy import select

from webapp.admin import auth, bp, dashboard, nav, scope
from webapp.admin.auth import current_staff, staff_required
from webapp.admin.forms import StaffPasswordForm, StaffRecoverForm, StaffSignInForm
from webapp.extensions import db, limiter
from webapp.mail import queue_mail
from webapp.models import Issuer, StaffMember, StaffRole
from webapp.security import audit, lockout, passwords, tokens
from webapp.security.captcha import store as captcha
from webapp.security.messages import password_messages
from webapp.security.web import local_path
from webapp.wiring import signing_problem, stamping

FAILURES = "staff_signin_failures"


@bp.app_context_processor
def _admin_context():
    if not has_request_context() or request.blueprint != "admin":
        return {}
    if (member := current_staff()) is None:
        return {}
    return {"staff": member, "admin_nav": nav.entries(member), "acting_on": scope.issuer_or_none()}


def _policy():
    return current_app.config["SECURITY_POLICY"]


def _limit(name: str):
    return lambda: current_app.config[name]


def _email_key() -> str:
    return "staff-signin:" + lockout.normalize_identifier(request.form.get("email"))


def _send(member: StaffMember, template: str, **context) -> None:
    context.update(member=member, base_url=current_app.config["BASE_URL"])
    queue_mail(
        db.session,
        member.email,
        render_template(f"admin/email/{template}.subject.txt", **context).strip(),
        render_template(f"admin/email/{template}.txt", **context),
    )


def password_link(member: StaffMember) -> str:
    """A single-use link to choose a password: an invitation or a recovery."""
    token = tokens.make_token(current_app.config["SECRET_KEY"], "staff-password", member)
    return current_app.config["BASE_URL"].rstrip("/") + url_for("admin.set_password", token=token)


def _safe_next(target: str | None) -> str:
    path = local_path(target)
    return path if path and path.startswith("/admin") else url_for("admin.home")


@bp.route("/entrar", methods=["GET", "POST"])
@limiter.limit(_limit("RATELIMIT_SIGNIN_IP"), methods=["POST"])
@limiter.limit(_limit("RATELIMIT_SIGNIN_ACCOUNT"), methods=["POST"], key_func=_email_key)
def sign_in():
    """Staff sign-in by email, under the same preset as customers: captcha after the first
    failure, lock or throttle, and one answer whatever was wrong."""
    form = StaffSignInForm()
    policy = _policy()
    error = None
    threshold = policy.captcha_after_failures
    failures = session.get(FAILURES, 0)
    shown = bool(threshold) and failures >= threshold
    if form.validate_on_submit():
        now = datetime.now(UTC)
        email = lockout.normalize_identifier(form.email.data)
        member = db.session.scalar(select(StaffMember).where(StaffMember.email == email))
        if lockout.is_locked(member, now):
            return render_template("admin/locked.html"), 423
        solved = shown and captcha.verify(
            request.form.get(captcha.TOKEN_FIELD), request.form.get(captcha.FORM_FIELD)
        )
        needs = bool(threshold) and member is not None and member.failed_logins >= threshold
        if shown and not solved:
            error = _("Escriba los números de la imagen o del audio tal como aparecen.")
        elif not (needs and not solved):
            ok, rehashed = passwords.verify_password(
                member.password_hash if member else None, form.password.data or ""
            )
            if ok and member.verified:
                if rehashed:
                    member.password_hash = rehashed
                lockout.clear(member)
                audit.record("signin", None, audit.device_id(), staff=member)
                auth.sign_in(member)
                session.pop(FAILURES, None)
                db.session.commit()
                return redirect(_safe_next(request.args.get("next")), 303)
        if error is None:  # wrong password, or an account that may not sign in
            if member is not None and member.verified:
                audit.record("signin_failed", None, staff=member)
                if lockout.count_failure(member, policy, now):
                    audit.record("locked", None, staff=member)
                    _send(
                        member,
                        "locked",
                        temporary=policy.lock_after_failures == 0,
                        minutes=policy.throttle_minutes,
                    )
                db.session.commit()
            error = _("El correo o la contraseña no son correctos.")
        session[FAILURES] = failures + 1
        shown = bool(threshold) and failures + 1 >= threshold
        form.password.data = ""
    token = captcha.issue()[0] if shown and captcha.enabled() else None
    return render_template(
        "admin/sign_in.html",
        form=form,
        error=error,
        captcha_token=token,
        expired=bool(request.args.get("caducada")),
    ), (401 if error else 200)


@bp.post("/salir")
def sign_out():
    auth.sign_out()
    return redirect(url_for("admin.sign_in"), 303)


@bp.route("/recuperar", methods=["GET", "POST"])
@limiter.limit(_limit("RATELIMIT_EMAIL_IP"), methods=["POST"])
def recover():
    """The same answer whatever the email; a link only to an active staff member."""
    form = StaffRecoverForm()
    if form.validate_on_submit():
        member = db.session.scalar(select(StaffMember).where(StaffMember.email == form.email.data))
        if member is not None and member.active:
            _send(
                member, "password", link=password_link(member), minutes=_policy().reset_link_minutes
            )
            audit.record("reset_requested", None, staff=member)
            db.session.commit()
        return render_template("admin/recover_sent.html", email=form.email.data)
    status = 422 if form.errors else 200
    return render_template("admin/recover.html", form=form), status


@bp.route("/clave/<token>", methods=["GET", "POST"])
def set_password(token: str):
    """Choose a password from an invitation or recovery link (dies once used)."""
    policy = _policy()
    found = tokens.read_token(
        current_app.config["SECRET_KEY"],
        "staff-password",
        token,
        max(policy.reset_link_minutes * 60, 7 * 86400),
    )
    member = db.session.get(StaffMember, found[0]) if found else None
    if member is None or not member.active or tokens.fingerprint(member) != found[1]:
        return render_template("admin/link_invalid.html"), 410
    form = StaffPasswordForm()
    if form.validate_on_submit():
        problems = passwords.check_password(
            form.password.data or "", form.password_confirm.data or "", policy, (member.email,)
        )
        if not problems:
            member.password_hash = passwords.hash_password(form.password.data)
            member.password_changed_at = datetime.now(UTC)
            member.session_version += 1
            lockout.clear(member)
            audit.record("password_changed", None, staff=member)
            auth.sign_in(member)
            db.session.commit()
            return redirect(url_for("admin.home"), 303)
        form.password.errors = password_messages(problems, policy)
    status = 422 if form.errors or form.password.errors else 200
    return render_template(
        "admin/set_password.html", form=form, member=member, policy=policy
    ), status


@bp.get("/")
@staff_required()
def home():
    member = current_staff()
    if member.role is StaffRole.OPERATOR and scope.issuer_or_none() is None:
        return redirect(url_for("admin.issuers"), 303)
    issuer = scope.issuer()
    figures = dashboard.figures(db.session, issuer, scope.branch_ids(), datetime.now(UTC))
    return render_template(
        "admin/home.html",
        issuer=issuer,
        figures=figures,
        pac=stamping().providers.status(),
        signing_problem=signing_problem(issuer),
    )


@bp.route("/emisores", methods=["GET", "POST"])
@staff_required(StaffRole.OPERATOR)
def issuers():
    """The operator's list of issuers; choosing one scopes every other page to it."""
    if request.method == "POST":
        try:
            issuer_id = int(request.form.get("issuer", ""))
        except ValueError:
            issuer_id = 0
        scope.choose_issuer(issuer_id)
        return redirect(url_for("admin.home"), 303)
    rows = db.session.scalars(select(Issuer).order_by(Issuer.legal_name)).all()
    return render_template("admin/issuers.html", issuers=rows)
