"""The fiscal-profile editor and the account-email change.

Both follow the change-password pattern: one URL serves the full page (without JavaScript)
or, to htmx, the `dialog` block that base.html's <dialog id="modal"> shows. Success inside the
dialog answers 204 with HX-Redirect, on a page 303; errors answer 422 on a page and 200 as a
fragment.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import abort, current_app, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_login import current_user, login_required
from flask_wtf import FlaskForm
from itsdangerous import BadSignature, URLSafeTimedSerializer
from jinja2_fragments.flask import render_block
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from webapp.extensions import db, limiter
from webapp.fiscal import catalogs
from webapp.htmx import is_htmx, render
from webapp.invoicing.forms import fill_receptor_choices, show
from webapp.issuing import ownership
from webapp.mail import queue_mail
from webapp.models import Account, CustomerProfile, DeliveryEmail
from webapp.profile import bp
from webapp.profile.forms import FIELDS, EmailChangeForm, ProfileForm, check_profile
from webapp.security import audit, passwords, tokens

EMAIL_CHANGE_SALT = "autofactura-change-email"


def _profile(account: Account) -> CustomerProfile | None:
    return db.session.scalar(
        select(CustomerProfile).where(CustomerProfile.account_id == account.id)
    )


def _done(url: str):
    """Success: from the dialog the whole page goes on to `url`; without JS, a redirect."""
    if is_htmx():
        return "", 204, {"HX-Redirect": url}
    return redirect(url, 303)


@bp.app_template_global()
def fiscal_summary(account: Account) -> dict | None:
    """What Mi cuenta shows of the saved fiscal profile, or None."""
    profile = _profile(account)
    if profile is None:
        return None
    return {
        "name": profile.name,
        "cp": profile.cp,
        "regimen": f"{profile.regimen_fiscal} · {catalogs.regimen_name(profile.regimen_fiscal)}",
        "uso": f"{profile.uso_cfdi} · {catalogs.uso_name(profile.uso_cfdi)}",
        "emails": [e.email for e in profile.emails],
    }


def _form(account: Account) -> ProfileForm:
    """The editor's form: as posted, or filled with the saved profile."""
    profile = _profile(account) if request.method == "GET" else None
    if profile is not None:
        form = ProfileForm(
            nombre=profile.name,
            cp=profile.cp,
            regimen=profile.regimen_fiscal,
            uso_cfdi=profile.uso_cfdi,
            emails="\n".join(e.email for e in profile.emails),
        )
    else:
        form = ProfileForm()
    fill_receptor_choices(form, account.rfc)  # only the choices this RFC and régimen allow
    return form


def _save(account: Account, receptor, emails: list[str]) -> None:
    profile = _profile(account)
    if profile is None:
        profile = CustomerProfile(account_id=account.id, rfc=account.rfc)
        db.session.add(profile)
    profile.name, profile.cp = receptor.nombre, receptor.cp
    profile.regimen_fiscal, profile.uso_cfdi = receptor.regimen, receptor.uso_cfdi
    if [e.email for e in profile.emails] != emails:
        profile.emails.clear()
        db.session.flush()  # the old rows go before the new ones (one address per profile)
        profile.emails.extend(DeliveryEmail(email=e) for e in emails)


@bp.route("/", methods=["GET", "POST"])
@login_required
def edit():
    """Datos fiscales: the receptor data the ticket flow fills in. The RFC is not editable."""
    account = current_user.account
    form = _form(account)
    if form.validate_on_submit():
        receptor, emails, errors = check_profile(form, account.rfc)
        show(form, errors)
        if not errors:
            _save(account, receptor, emails)
            db.session.commit()
            return _done(url_for("accounts.home", perfil=1))
    invalid = request.method == "POST" and any(f.errors for f in form)
    return render(
        "profile/edit.html",
        "dialog",
        status=422 if invalid and not is_htmx() else 200,
        form=form,
        account=account,
        in_dialog=is_htmx(),
    )


@bp.post("/campo/<name>")
@login_required
def field(name: str):
    """Inline validation: the field's wrapper re-rendered with the full submit's checks."""
    if name not in FIELDS:
        abort(404)
    account = current_user.account
    form = _form(account)
    errors = check_profile(form, account.rfc)[2]
    if form[name].data:
        show(form, errors, (name,))
    context = dict(form=form, account=account, in_dialog=True)
    response = render("profile/edit.html", f"field_{name}", **context)
    if name == "regimen":  # the usos allowed depend on the régimen: refresh that list too
        oob = render_block("profile/edit.html", "field_uso_cfdi", uso_oob=True, **context)
        response.set_data(response.get_data(as_text=True).strip() + "\n" + oob.strip())
    return response


# --- Changing the account's email --------------------------------------------------------


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.config["SECRET_KEY"], salt=EMAIL_CHANGE_SALT)


def _mail(to: str, template: str, **context) -> None:
    """Queue an email of templates/profile/email/ (committed with the caller's change)."""
    context.update(base_url=current_app.config["BASE_URL"].rstrip("/"))
    queue_mail(
        db.session,
        to,
        render_template(f"profile/email/{template}.subject.txt", **context).strip(),
        render_template(f"profile/email/{template}.txt", **context),
    )


def masked(email: str) -> str:
    """n***@dominio.com: enough for the owner to recognise, not to read it whole."""
    local, _at, domain = email.partition("@")
    return f"{local[:1]}***@{domain}"


def _taken(email: str) -> bool:
    return db.session.scalar(select(Account.id).where(Account.email == email)) is not None


@bp.route("/correo", methods=["GET", "POST"])
@limiter.limit(lambda: current_app.config["RATELIMIT_EMAIL_IP"], methods=["POST"])
@login_required
def change_email():
    """Cambiar correo: nothing changes until the link sent to the new address is opened. An
    address of another account gets the same answer (that address is told by email that it
    already has an account), so the form reveals nobody's address."""
    account = current_user.account
    form = EmailChangeForm()
    if form.validate_on_submit():
        ok, _rehash = passwords.verify_password(account.password_hash, form.current.data or "")
        new = form.email.data
        if not ok:
            form.current.errors = [_("La contraseña actual no es correcta.")]
        elif new == account.email:
            form.email.errors = [_("Ese ya es el correo de su cuenta. Escriba el nuevo.")]
        else:
            hours = current_app.config["SECURITY_POLICY"].verification_link_hours
            if _taken(new):
                _mail(new, "email_taken", signin=url_for("accounts.sign_in"))
            else:
                token = _serializer().dumps(
                    {"a": account.id, "e": new, "f": tokens.fingerprint(account)}
                )
                link = current_app.config["BASE_URL"].rstrip("/") + url_for(
                    ".confirm_email", token=token
                )
                _mail(new, "email_verify", account=account, link=link, hours=hours)
            _mail(
                account.email,
                "email_notice",
                account=account,
                new=masked(new),
                recover=url_for("accounts.recover"),
            )
            db.session.commit()
            return _done(url_for("accounts.home", correo=1))
    invalid = request.method == "POST" and any(f.errors for f in form)
    return render(
        "profile/email.html",
        "dialog",
        status=422 if invalid and not is_htmx() else 200,
        form=form,
        account=account,
        in_dialog=is_htmx(),
    )


def _change_from_token(token: str) -> tuple[Account, str] | None:
    """(account, new address) of a valid link: not altered, not expired, not used (the
    fingerprint includes the email, so it dies once the email changes)."""
    hours = current_app.config["SECURITY_POLICY"].verification_link_hours
    try:
        data = _serializer().loads(token, max_age=hours * 3600)
    except BadSignature:  # SignatureExpired is one too
        return None
    if not isinstance(data, dict) or not isinstance(data.get("a"), int):
        return None
    account = db.session.get(Account, data["a"])
    if account is None or not account.verified or tokens.fingerprint(account) != data.get("f"):
        return None
    return account, str(data.get("e"))


@bp.route("/correo/<token>", methods=["GET", "POST"])
def confirm_email(token: str):
    """The link sent to the new address: a button applies the change (a GET changes nothing,
    so mail scanners that open links do not apply it)."""
    found = _change_from_token(token)
    if found is None:
        return render_template("accounts/link_invalid.html"), 410
    account, new = found
    form = FlaskForm()  # the CSRF token only
    page = dict(form=form, email=new, token=token)
    if _taken(new):
        return render_template("profile/confirm_email.html", taken=True, **page), 409
    if form.validate_on_submit():
        account.email = new
        account.email_verified_at = datetime.now(UTC)
        audit.record("email_changed", account)
        ownership.claim_delivered(db.session, account)
        try:
            db.session.commit()
        except IntegrityError:  # taken between the check and the commit
            db.session.rollback()
            return render_template("profile/confirm_email.html", taken=True, **page), 409
        return render_template("profile/confirm_email.html", done=True, **page)
    return render_template("profile/confirm_email.html", **page)
