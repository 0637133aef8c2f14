"""Registration with email verification, sign-in and sign-out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from flask import abort, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required, logout_user
from sqlalchemy import select

from webapp.accounts import bp, registration
from webapp.accounts.forms import (
    AnswerForm,
    ChangePasswordForm,
    ForgotUserForm,
    PasswordForm,
    RecoverForm,
    RegisterForm,
    SecretQuestionForm,
    SignInForm,
)
from webapp.accounts.session import sign_in
from webapp.accounts.session import sign_out as end_session
from webapp.extensions import db, limiter
from webapp.htmx import is_htmx, render
from webapp.models import Account
from webapp.security import audit, gate, lockout, passwords, questions, sessions, tokens
from webapp.security.captcha import store as captcha
from webapp.security.doors import CUSTOMERS, TEMPORARY_PASSWORD_HOURS, must_change
from webapp.security.messages import password_messages
from webapp.security.signin import Outcome
from webapp.security.web import cookie_options, local_path


def _policy():
    return current_app.config["SECURITY_POLICY"]


def _now() -> datetime:
    return datetime.now(UTC)


def _send(account: Account, template: str, **context) -> None:
    """Queue an account email (committed with the caller's change)."""
    registration.send(account, template, **context)


def _limit(name: str):
    """A rate limit whose value is the setting `name` (see README, Configuration)."""
    return lambda: current_app.config[name]


@bp.route("/registro", methods=["GET", "POST"])
@limiter.limit(
    _limit("RATELIMIT_EMAIL_IP"), methods=["POST"], exempt_when=registration.inline_check
)
def register():
    """Seed 000: RFC, email twice, Aceptar; then an email with the link to finish.

    What the answers reveal: a new address and an address whose account is complete get the
    same "Casi hemos terminado" page (the owner of a complete account is told by email that
    someone tried to register it). Only an address whose registration is incomplete gets
    "Usuario registrado — su registro ha quedado incompleto", as the seed requires; the link
    still goes only to that address.
    """
    form = RegisterForm()
    inline = registration.inline_check()
    if request.method == "POST" and form.validate() and not inline:
        done = registration.register(
            form.email.data,
            new=lambda: Account(rfc=form.rfc.data, email=form.email.data),
            deliver=registration.send_account_verification,
            tell_owner=lambda account: _send(
                account, "already_registered", signin=url_for(".sign_in", _external=False)
            ),
        )
        db.session.commit()
        if done.answer is registration.Answer.INCOMPLETE:
            return render_template("accounts/incomplete.html", email=done.account.email)
        return redirect(url_for(".registered", correo=done.account.email), 303)
    if inline:
        name = registration.inline_field(("rfc", "email", "email_confirm"))
        if name is None:
            abort(404)
        if not form[name].data:
            form[name].errors = []
        return render("accounts/register.html", f"field_{name}", form=form)
    status = 422 if request.method == "POST" else 200
    return render_template("accounts/register.html", form=form), status


@bp.get("/registro/enviado")
def registered():
    return render_template("accounts/registered.html", email=request.args.get("correo", ""))


def _account_from_token(purpose: str, token: str, max_age: int) -> Account | None:
    return registration.account_from_token(purpose, token, max_age)


@bp.route("/verificar/<token>", methods=["GET", "POST"])
def verify(token: str):
    """The emailed link: choose a password (and, in the seed preset, a secret question) and
    the registration is complete."""
    policy = _policy()
    account = _account_from_token("verify", token, registration.verification_max_age())
    if account is None or account.verified:
        return render_template("accounts/link_invalid.html"), 410
    form = PasswordForm()
    qform = SecretQuestionForm(prefix="q") if policy.secret_question else None
    if form.validate_on_submit():
        question_ok = qform is None or qform.validate()
        problems = passwords.check_password(
            form.password.data or "",
            form.password_confirm.data or "",
            policy,
            (account.rfc, account.email),
        )
        if not problems and question_ok:
            now = _now()
            account.password_hash = passwords.hash_password(form.password.data)
            account.password_changed_at = now
            registration.mark_verified(account, now)
            if qform is not None:
                _set_question(account, qform)
            return _signed_in(account)
        form.password.errors = password_messages(problems, policy)
    status = 422 if form.errors or form.password.errors or (qform and qform.errors) else 200
    return render_template(
        "accounts/choose_password.html", form=form, qform=qform, account=account, policy=policy
    ), status


def _set_question(account: Account, qform: SecretQuestionForm) -> None:
    account.secret_question = qform.question.data
    account.secret_answer_hash = passwords.hash_password(
        questions.normalize_answer(qform.answer.data)
    )


def _captcha_solved() -> bool:
    return gate.captcha_solved()


def _captcha_message():
    return str(gate.CAPTCHA_WRONG)


@bp.route("/entrar", methods=["GET", "POST"], endpoint="sign_in")
@limiter.limit(_limit("RATELIMIT_SIGNIN_IP"), methods=["POST"])
@limiter.limit(
    _limit("RATELIMIT_SIGNIN_ACCOUNT"),
    methods=["POST"],
    key_func=gate.per_subject_key(CUSTOMERS, "identifier"),
)
def sign_in_page():
    """Sign-in with RFC or email, through the one sign-in (webapp.security.signin): the
    lock, then the captcha (after SECURITY_CAPTCHA_AFTER_FAILURES failures in this browser
    or on the account), then the password; one answer whatever was wrong."""
    form = SignInForm()
    door = gate.Gate(CUSTOMERS, "signin_failures")
    if form.validate_on_submit():
        result = door.attempt(form.identifier.data, form.password.data)
        if result.outcome is Outcome.LOCKED:
            return render_template("accounts/locked.html"), 423
        if result.outcome is Outcome.SIGNED_IN:
            account = result.subject
            if must_change(account, _policy(), _now()):
                return _signed_in(account, ".change_password")
            return _signed_in(account, next_url=_safe_next(request.args.get("next")))
        if result.locked_now:
            _send_locked(result.subject)
        db.session.commit()
        form.identifier.data = ""
        form.password.data = ""
    return render_template(
        "accounts/sign_in.html",
        form=form,
        error=door.error,
        captcha_token=door.captcha_token(),
        captcha_errors=door.captcha_errors,
    ), door.status


def _send_locked(account: Account) -> None:
    policy = _policy()
    _send(
        account,
        "locked",
        temporary=policy.lock_after_failures == 0,
        minutes=policy.throttle_minutes,
    )


def _safe_next(target: str | None) -> str | None:
    """`target` when it is a path of the customer's side of this site, else None."""
    path = local_path(target)
    return None if path is None or path.startswith("/admin") else path


def _signed_in(account: Account, target: str = ".home", next_url: str | None = None):
    """Sign in, record it with this browser's device, tell the owner about a new device;
    then go to `next_url` if given, else to the view `target`."""
    device = audit.device_id()
    if (
        _policy().new_device_notice
        and account.last_login_at is not None
        and not audit.known_device(account, device)
    ):
        _send(account, "new_device", user_agent=request.user_agent.string[:200])
    audit.record("signin", account, device)
    sign_in(account)
    db.session.commit()
    response = redirect(next_url or url_for(target), 303)
    response.set_cookie(audit.DEVICE_COOKIE, device, max_age=2 * 365 * 86400, **cookie_options())
    return response


@bp.post("/salir")
def sign_out():
    """Ends the session on the server: a copy of the cookie is anonymous afterwards."""
    end_session()
    return redirect(url_for("main.index"), 303)


@bp.post("/salir-de-todo")
@login_required
def sign_out_everywhere():
    account = current_user.account
    account.session_version += 1
    audit.record("signed_out_everywhere", account)
    sessions.end_all(db.session, account)
    db.session.commit()
    logout_user()
    return redirect(url_for(".sign_in"), 303)


@bp.get("/")
@login_required
def home():
    account = current_user.account
    return render_template(
        "accounts/home.html", account=account, events=audit.recent(account), labels=audit.LABELS
    )


def _set_password(account: Account, password: str, *, temporary: bool = False) -> None:
    """Store a new password: other sessions end, the lock lifts, old links die."""
    if account.locked_until is not None and account.locked_until > _now():
        audit.record("unlocked", account)
    account.password_hash = passwords.hash_password(password)
    account.password_changed_at = _now()
    account.must_change_password = temporary
    account.session_version += 1
    sessions.end_all(db.session, account)
    account.failed_logins = 0
    account.locked_until = None


@bp.route("/recuperar", methods=["GET", "POST"])
@limiter.limit(_limit("RATELIMIT_EMAIL_IP"), methods=["POST"])
def recover():
    """¿Olvidó su contraseña?: RFC + registered email. The answer is the same whether or not
    they match an account; the email (reset link, or a temporary password in the seed preset)
    goes only to the registered address."""
    form = RecoverForm()
    captcha_errors = []
    if form.validate_on_submit() and not _captcha_solved():
        captcha_errors = [_captcha_message()]
    elif form.validate_on_submit():
        account = db.session.scalar(
            select(Account).where(Account.email == form.email.data, Account.rfc == form.rfc.data)
        )
        policy = _policy()
        if policy.secret_question:
            return _question_step(form.rfc.data, form.email.data, account)
        if account is not None and account.verified:
            _send_recovery(account, policy, _now())
        return render_template("accounts/recover_sent.html")
    status = 422 if request.method == "POST" else 200
    token = captcha.issue()[0] if captcha.enabled() else None
    return render_template(
        "accounts/rfc_email_request.html",
        form=form,
        captcha_token=token,
        captcha_errors=captcha_errors,
        title=_("¿Olvidó su contraseña?"),
        intro=_(
            "Escriba su RFC y el correo electrónico con que se registró. Le enviaremos a ese "
            "correo cómo entrar de nuevo."
        ),
    ), status


@bp.route("/restablecer/<token>", methods=["GET", "POST"])
def reset(token: str):
    """The emailed reset link: works once, dies when the password changes by any means."""
    policy = _policy()
    account = _account_from_token("reset", token, policy.reset_link_minutes * 60)
    if account is None or not account.verified:
        return render_template("accounts/link_invalid.html"), 410
    form = PasswordForm()
    if form.validate_on_submit():
        problems = passwords.check_password(
            form.password.data or "",
            form.password_confirm.data or "",
            policy,
            (account.rfc, account.email),
        )
        if not problems:
            _set_password(account, form.password.data)
            _send(account, "password_changed")
            audit.record("reset_used", account)
            return _signed_in(account)
        form.password.errors = password_messages(problems, policy)
    status = 422 if form.password.errors else 200
    return render_template(
        "accounts/choose_password.html", form=form, account=account, policy=policy
    ), status


@bp.route("/contrasena", methods=["GET", "POST"])
@login_required
def change_password():
    """Change password (also where a temporary or expired password leads)."""
    account = current_user.account
    policy = _policy()
    form = ChangePasswordForm()
    if form.validate_on_submit():
        ok, _rehash = passwords.verify_password(account.password_hash, form.current.data or "")
        problems = passwords.check_password(
            form.password.data or "",
            form.password_confirm.data or "",
            policy,
            (account.rfc, account.email),
        )
        if not ok:
            form.current.errors = [_("La contraseña actual no es correcta.")]
        elif form.password.data == form.current.data:
            form.password.errors = [_("La nueva contraseña debe ser distinta de la actual.")]
        elif problems:
            form.password.errors = password_messages(problems, policy)
        else:
            _set_password(account, form.password.data)
            _send(account, "password_changed")
            audit.record("password_changed", account)
            sign_in(account)  # this session goes on with the new version; the others end
            db.session.commit()
            done = url_for(".home", cambiada=1)
            if is_htmx():  # from the dialog: the whole page goes on to the account
                return "", 204, {"HX-Redirect": done}
            return redirect(done, 303)
    status = 422 if form.current.errors or form.password.errors else 200
    forced = must_change(account, policy, _now())
    if is_htmx():  # the dialog's fragment answers with its errors; 4xx is for full pages
        status = 200
    return render(
        "accounts/change_password.html",
        "dialog",
        status=status,
        form=form,
        policy=policy,
        forced=forced,
        in_dialog=is_htmx(),
    )


@bp.before_app_request
def _force_password_change():
    """A temporary or expired password leads to the change screen before anything else."""
    if request.endpoint in ("accounts.change_password", "accounts.sign_out", "static"):
        return None  # checked first: static files must not load the user (nor touch the session)
    if not current_user.is_authenticated:
        return None
    if must_change(current_user.account, _policy(), _now()):
        return redirect(url_for("accounts.change_password"), 303)
    return None


@bp.route("/usuario", methods=["GET", "POST"])
@limiter.limit(_limit("RATELIMIT_EMAIL_IP"), methods=["POST"])
def forgot_user():
    """¿Olvidó su usuario?: the user is the RFC; optionally emailed to the registered address
    (the same answer whether or not the address has an account)."""
    form = ForgotUserForm()
    captcha_errors = []
    sent = False
    if form.validate_on_submit():
        if not _captcha_solved():
            captcha_errors = [_captcha_message()]
        else:
            account = db.session.scalar(select(Account).where(Account.email == form.email.data))
            now = _now()
            wait = timedelta(minutes=_policy().resend_verification_minutes)
            if (
                account is not None
                and account.verified
                and not (
                    account.last_recovery_sent_at and now - account.last_recovery_sent_at < wait
                )
            ):
                account.last_recovery_sent_at = now
                _send(account, "username", signin=url_for(".sign_in"))
                db.session.commit()
            sent = True
    token = captcha.issue()[0] if captcha.enabled() and not sent else None
    status = 422 if request.method == "POST" and not sent else 200
    return render_template(
        "accounts/forgot_user.html",
        form=form,
        sent=sent,
        captcha_token=token,
        captcha_errors=captcha_errors,
        support=current_app.config["SUPPORT_CONTACT"],
    ), status


def _send_recovery(account: Account, policy, now: datetime) -> None:
    """The recovery email of the preset: a reset link, or a temporary password; at most one
    per SECURITY_RESEND_VERIFICATION_MINUTES."""
    wait = timedelta(minutes=policy.resend_verification_minutes)
    if account.last_recovery_sent_at and now - account.last_recovery_sent_at < wait:
        return
    account.last_recovery_sent_at = now
    if policy.recovery == "temporary_password":
        audit.record("temporary_password", account)
        temporary = passwords.temporary_password(policy)
        _set_password(account, temporary, temporary=True)
        _send(
            account,
            "temporary_password",
            password=temporary,
            hours=TEMPORARY_PASSWORD_HOURS,
            signin=url_for(".sign_in"),
        )
    else:
        audit.record("reset_requested", account)
        token = tokens.make_token(current_app.config["SECRET_KEY"], "reset", account)
        link = current_app.config["BASE_URL"].rstrip("/") + url_for(".reset", token=token)
        _send(account, "reset", link=link, minutes=policy.reset_link_minutes)
    db.session.commit()


def _question_step(rfc: str, email: str, account: Account | None):
    """Seed 004: the secret question comes next. Data that match no account get a decoy
    question (always the same for the same data), so this step reveals nothing."""
    secret = current_app.config["SECRET_KEY"]
    key = (
        account.secret_question
        if account is not None and account.secret_question
        else questions.decoy_question(secret, rfc, email)
    )
    form = AnswerForm(step=tokens.sign_data(secret, "recover-step", {"r": rfc, "e": email}))
    return render_template(
        "accounts/recover_question.html", form=form, question=questions.QUESTIONS[key]
    )


@bp.post("/recuperar/pregunta")
@limiter.limit(_limit("RATELIMIT_EMAIL_IP"))
def recover_answer():
    """The answer to the secret question: right → the recovery email (to the registered
    address only; it also lifts a lock); wrong → a failure that counts toward the lock. The
    page is the same either way."""
    form = AnswerForm()
    if not form.validate_on_submit():
        abort(400)
    data = tokens.read_data(
        current_app.config["SECRET_KEY"], "recover-step", form.step.data or "", 600
    )
    if data is None:
        return redirect(url_for(".recover"), 303)
    account = db.session.scalar(
        select(Account).where(Account.email == data.get("e"), Account.rfc == data.get("r"))
    )
    policy, now = _policy(), _now()
    if account is not None and account.verified:
        right = (
            account.secret_answer_hash is None
            or passwords.verify_password(
                account.secret_answer_hash, questions.normalize_answer(form.answer.data or "")
            )[0]
        )
        if right:
            _send_recovery(account, policy, now)
        else:
            audit.record("signin_failed", account)
            if lockout.count_failure(account, policy, now):
                audit.record("locked", account)
                _send_locked(account)
            db.session.commit()
    return render_template("accounts/recover_sent.html")


@bp.route("/pregunta/olvide", methods=["GET", "POST"])
@limiter.limit(_limit("RATELIMIT_EMAIL_IP"), methods=["POST"])
def forgot_question():
    """Olvidé mi pregunta secreta: an emailed link to choose a new one."""
    form = RecoverForm()
    captcha_errors = []
    if form.validate_on_submit():
        if not _captcha_solved():
            captcha_errors = [_captcha_message()]
        else:
            account = db.session.scalar(
                select(Account).where(
                    Account.email == form.email.data, Account.rfc == form.rfc.data
                )
            )
            if account is not None and account.verified:
                token = tokens.make_token(current_app.config["SECRET_KEY"], "question", account)
                link = current_app.config["BASE_URL"].rstrip("/") + url_for(
                    ".new_question", token=token
                )
                _send(account, "question", link=link, minutes=_policy().reset_link_minutes)
                db.session.commit()
            return render_template("accounts/recover_sent.html")
    token = captcha.issue()[0] if captcha.enabled() else None
    status = 422 if request.method == "POST" else 200
    return render_template(
        "accounts/rfc_email_request.html",
        title=_("Olvidé mi pregunta secreta"),
        intro=_(
            "Escriba su RFC y el correo con que se registró. Le enviaremos un enlace para elegir "
            "una nueva pregunta secreta; el enlace deja de servir en cuanto la cambie."
        ),
        form=form,
        captcha_token=token,
        captcha_errors=captcha_errors,
    ), status


@bp.route("/pregunta/<token>", methods=["GET", "POST"])
def new_question(token: str):
    """The emailed link: a new secret question; the link dies once it is set."""
    account = _account_from_token("question", token, _policy().reset_link_minutes * 60)
    if account is None or not account.verified:
        return render_template("accounts/link_invalid.html"), 410
    qform = SecretQuestionForm()
    if qform.validate_on_submit():
        _set_question(account, qform)
        db.session.commit()
        return render_template("accounts/question_saved.html")
    status = 422 if qform.errors else 200
    return render_template("accounts/question.html", qform=qform), status


@bp.route("/pregunta", methods=["GET", "POST"])
@login_required
def question():
    """Set or change the secret question from the profile (current password required)."""
    account = current_user.account
    qform = SecretQuestionForm()
    if qform.validate_on_submit():
        ok, _rehash = passwords.verify_password(
            account.password_hash, request.form.get("current", "")
        )
        if ok:
            _set_question(account, qform)
            db.session.commit()
            return redirect(url_for(".home"), 303)
        qform.answer.errors = [_("La contraseña actual no es correcta.")]
    status = 422 if qform.errors or qform.answer.errors else 200
    return render_template("accounts/question.html", qform=qform, ask_password=True), status
