"""Back-office sign-in, recovery, the operator's issuer picker and the dashboard."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import (
    current_app,
    has_request_context,
    redirect,
    render_template,
    request,
    url_for,
)
from sqlalchemy import select

from webapp.admin import auth, bp, dashboard, nav, scope
from webapp.admin.auth import current_staff, staff_required
from webapp.admin.forms import StaffPasswordForm, StaffRecoverForm, StaffSignInForm
from webapp.extensions import db, limiter
from webapp.mail import queue_mail
from webapp.models import Issuer, StaffMember, StaffRole
from webapp.security import audit, gate, lockout, passwords, tokens
from webapp.security.doors import STAFF
from webapp.security.messages import password_messages
from webapp.security.signin import Outcome
from webapp.security.web import local_path
from webapp.wiring import signing_problem, stamping

FAILURES = "staff_signin_failures"


@bp.app_context_processor
def _admin_context():
    if not has_request_context() or request.blueprint != "admin":
        return {}
    if (member := current_staff()) is None:
        return {}
    acting_on = scope.issuer_or_none()
    return {"staff": member, "admin_nav": nav.entries(member, acting_on), "acting_on": acting_on}


def _policy():
    return current_app.config["SECURITY_POLICY"]


def _limit(name: str):
    return lambda: current_app.config[name]


def _send(member: StaffMember, template: str, **context) -> None:
    context.update(member=member, base_url=current_app.config["BASE_URL"])
    queue_mail(
        db.session,
        member.email,
        render_template(f"admin/email/{template}.subject.txt", **context).strip(),
        render_template(f"admin/email/{template}.txt", **context),
    )


RECOVERY, INVITATION = "staff-password", "staff-invitation"  # token purposes


def password_link(member: StaffMember, purpose: str = INVITATION) -> str:
    """A single-use link to choose a password: an invitation (valid STAFF_INVITATION_HOURS)
    or, with `purpose` RECOVERY, a recovery (valid SECURITY_RESET_LINK_MINUTES)."""
    token = tokens.make_token(current_app.config["SECRET_KEY"], purpose, member)
    return current_app.config["BASE_URL"].rstrip("/") + url_for("admin.set_password", token=token)


def _read_password_link(token: str) -> tuple[int, str] | None:
    """(member id, fingerprint) of a recovery link younger than its minutes or of an
    invitation younger than its hours; None for anything else."""
    secret = current_app.config["SECRET_KEY"]
    return tokens.read_token(
        secret, RECOVERY, token, _policy().reset_link_minutes * 60
    ) or tokens.read_token(
        secret, INVITATION, token, current_app.config["STAFF_INVITATION_HOURS"] * 3600
    )


def _safe_next(target: str | None) -> str:
    path = local_path(target)
    staff_pages = ("/admin", "/operador")  # the back office and the operator's console
    return path if path and path.startswith(staff_pages) else url_for("admin.home")


@bp.route("/entrar", methods=["GET", "POST"])
@limiter.limit(_limit("RATELIMIT_SIGNIN_IP"), methods=["POST"])
@limiter.limit(
    _limit("RATELIMIT_SIGNIN_ACCOUNT"),
    methods=["POST"],
    key_func=gate.per_subject_key(STAFF, "email"),
)
def sign_in():
    """Staff sign-in by email, through the one sign-in (webapp.security.signin): the same
    checks in the same order as customers', and one answer whatever was wrong."""
    form = StaffSignInForm()
    door = gate.Gate(STAFF, FAILURES)
    if form.validate_on_submit():
        result = door.attempt(form.email.data, form.password.data)
        if result.outcome is Outcome.LOCKED:
            return render_template("admin/locked.html"), 423
        if result.outcome is Outcome.SIGNED_IN:
            member = result.subject
            audit.record("signin", None, audit.device_id(), staff=member)
            auth.sign_in(member)
            db.session.commit()
            return redirect(_safe_next(request.args.get("next")), 303)
        if result.locked_now:
            policy = _policy()
            _send(
                result.subject,
                "locked",
                temporary=policy.lock_after_failures == 0,
                minutes=policy.throttle_minutes,
            )
        db.session.commit()
        form.password.data = ""
    return render_template(
        "admin/sign_in.html",
        form=form,
        error=door.error,
        captcha_token=door.captcha_token(),
        captcha_errors=door.captcha_errors,
        expired=bool(request.args.get("caducada")),
    ), door.status


@bp.post("/salir")
def sign_out():
    """Ends the session on the server: a copy of the cookie is anonymous afterwards."""
    auth.sign_out()
    db.session.commit()
    return redirect(url_for("admin.sign_in"), 303)


@bp.route("/recuperar", methods=["GET", "POST"])
@limiter.limit(_limit("RATELIMIT_EMAIL_IP"), methods=["POST"])
def recover():
    """The same answer whatever the email; a link only to an active staff member."""
    form = StaffRecoverForm()
    if form.validate_on_submit():
        member = db.session.scalar(select(StaffMember).where(StaffMember.email == form.email.data))
        if member is not None and member.active:
            link = password_link(member, RECOVERY)
            _send(member, "password", link=link, minutes=_policy().reset_link_minutes)
            audit.record("reset_requested", None, staff=member)
            db.session.commit()
        return render_template("admin/recover_sent.html", email=form.email.data)
    status = 422 if form.errors else 200
    return render_template("admin/recover.html", form=form), status


@bp.route("/clave/<token>", methods=["GET", "POST"])
def set_password(token: str):
    """Choose a password from an invitation or recovery link (dies once used)."""
    policy = _policy()
    found = _read_password_link(token)
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
