"""Mis servicios: a services issuer's page, its registration form and its terms (seed 002).

    GET       /servicios/<slug>/                      Bienvenido a …: Entrar, or register
    GET/POST  /servicios/<slug>/registro              the seed's form → CONTINUAR
    GET       /servicios/<slug>/registro/enviado      "revisa tu correo" (whatever the address)
    GET/POST  /servicios/<slug>/activar/<token>       the emailed Activar Cuenta link
    GET       /servicios/<slug>/terminos/texto        the current terms, to read
    GET/POST  /servicios/<slug>/terminos?next=…       accept the current terms (signed in)

The registration makes the same kind of Account as /cuenta/registro, through the same code
(webapp.accounts.registration: single-use signed links, the resend and notice throttles, the
same answer for a new and a known address), plus the seed's Nombres and Apellidos, the RFC
(Mexico) or Cédula/Pasaporte (Ecuador), the password (argon2id, the security policy's rules)
and the acceptance of the issuer's current terms. The emailed link only activates: the
password was chosen in the form. A GET of the link shows the Activar Cuenta button and the
POST activates, so a mail scanner that opens links does not spend it.
"""

from __future__ import annotations

import re

from flask import current_app, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from stdnum.ec import ci as ec_ci
from stdnum.exceptions import ValidationError as StdnumError
from wtforms import BooleanField, EmailField, HiddenField, PasswordField, StringField
from wtforms.validators import ValidationError

from webapp.accounts import registration
from webapp.accounts.forms import RfcEmailForm
from webapp.billing import terms
from webapp.extensions import db, limiter
from webapp.fiscal.rfc import check_rfc
from webapp.htmx import render
from webapp.invoicing.messages import fiscal_message
from webapp.models import Account, Issuer, ServiceTerms
from webapp.myservices import bp
from webapp.myservices.context import services_issuer
from webapp.security import gate, passwords
from webapp.security.captcha import store as captcha
from webapp.security.messages import password_messages
from webapp.security.web import local_path

# Account.rfc is required; an Ecuadorian holder has no RFC. SAT's generic RFC of a foreign
# resident stands in for it (it signs in by email, as several such accounts share it; the
# panel's invoices follow the RFC, and no invoice of another person is issued to it).
FOREIGN_RFC = "XEXX010101000"
NAME = re.compile(r"[^\W\d_]+\.?(?:[ '’-]+[^\W\d_]+\.?)*")  # words of letters: "Ma. José"
PASSPORT = re.compile(r"[A-Z0-9]{5,20}")
NAME_MAX = 80
INLINE_FIELDS = ("email", "given_names", "surnames", "rfc", "id_document")


def _strip(value):
    return " ".join(value.split()) if isinstance(value, str) else value


def _upper(value):
    return re.sub(r"[\s-]", "", value).upper() if isinstance(value, str) else value


class RegisterForm(FlaskForm):
    """The seed's form: Correo electrónico, Nombres, Apellidos, RFC (Mexico) or
    Cédula/Pasaporte (Ecuador), Contraseña, Confirmar contraseña, the terms; the captcha is
    checked by the view, once everything else is right (each captcha is good for one try)."""

    email = EmailField(
        _l("Correo electrónico"),
        filters=[_strip],
        render_kw={"autocomplete": "email", "maxlength": 254, "placeholder": "ejemplo@correo.com"},
    )
    given_names = StringField(
        _l("Nombres"),
        filters=[_strip],
        render_kw={"autocomplete": "given-name", "maxlength": NAME_MAX},
    )
    surnames = StringField(
        _l("Apellidos"),
        filters=[_strip],
        render_kw={"autocomplete": "family-name", "maxlength": NAME_MAX},
    )
    rfc = StringField(
        _l("RFC"),
        filters=[_strip],
        render_kw={
            "autocapitalize": "characters",
            "maxlength": 20,
            "autocomplete": "off",
            "spellcheck": "false",
        },
    )
    id_document = StringField(
        _l("Cédula/Pasaporte"),
        filters=[_upper],
        render_kw={
            "autocapitalize": "characters",
            "maxlength": 20,
            "autocomplete": "off",
            "spellcheck": "false",
        },
    )
    password = PasswordField(
        _l("Contraseña"), render_kw={"autocomplete": "new-password", "maxlength": 1024}
    )
    password_confirm = PasswordField(
        _l("Confirmar contraseña"), render_kw={"autocomplete": "new-password", "maxlength": 1024}
    )
    accept_terms = BooleanField(_l("He leído y acepto los Términos y Condiciones del Servicio"))
    validate_email = RfcEmailForm.validate_email

    def __init__(self, issuer: Issuer, current_terms: ServiceTerms | None, **kwargs):
        super().__init__(**kwargs)
        self.issuer = issuer
        self.policy = current_app.config["SECURITY_POLICY"]
        if issuer.country == "EC":
            del self.rfc
        else:
            del self.id_document
        if current_terms is None:  # nothing published, nothing to accept
            del self.accept_terms

    @property
    def document(self):
        """The identity field of the issuer's country: RFC or Cédula/Pasaporte."""
        return self.id_document if self.issuer.country == "EC" else self.rfc

    def validate_given_names(self, field) -> None:
        _check_name(field.data, _l("Escriba sus nombres."))

    def validate_surnames(self, field) -> None:
        _check_name(field.data, _l("Escriba sus apellidos."))

    def validate_rfc(self, field) -> None:
        value, problem = check_rfc(field.data or "")
        if problem is not None:
            raise ValidationError(fiscal_message("rfc", problem))
        field.data = value

    def validate_id_document(self, field) -> None:
        value = field.data or ""
        if not value:
            raise ValidationError(_l("Escriba su número de cédula o de pasaporte."))
        if value.isdigit() and len(value) == 10:
            try:
                field.data = ec_ci.validate(value)
            except StdnumError:
                raise ValidationError(
                    _l("Ese número de cédula no es válido: revise los 10 dígitos.")
                ) from None
            return
        if not PASSPORT.fullmatch(value):
            raise ValidationError(
                _l(
                    "Escriba su cédula (10 dígitos) o su pasaporte (de 5 a 20 letras y números, "
                    "sin espacios)."
                )
            )

    def validate_password(self, field) -> None:
        if not field.data:
            raise ValidationError(_l("Escriba una contraseña."))
        context = (self.document.data or "", self.email.data or "")
        problems = passwords.check_password(field.data, None, self.policy, context)
        if problems:
            raise ValidationError(
                " ".join(str(m) for m in password_messages(problems, self.policy))
            )

    def validate_password_confirm(self, field) -> None:
        if not field.data:
            raise ValidationError(_l("Escriba de nuevo su contraseña."))
        if field.data != (self.password.data or ""):
            raise ValidationError(_l("Las contraseñas no coinciden."))

    def validate_accept_terms(self, field) -> None:
        if not field.data:
            raise ValidationError(
                _l("Para continuar, acepte los Términos y Condiciones del Servicio.")
            )


def _check_name(value: str | None, required) -> None:
    if not value:
        raise ValidationError(required)
    if len(value) > NAME_MAX or not NAME.fullmatch(value):
        raise ValidationError(_l("Escriba solo letras, sin números ni símbolos."))


class TermsForm(FlaskForm):
    terms = HiddenField()  # the id of the version shown: a newer one is shown before accepted


def _limit(name: str):
    return lambda: current_app.config[name]


def _home(slug: str) -> str:
    return url_for("myservices.home", slug=slug)


@bp.get("/<slug>/")
def landing(slug: str):
    """Bienvenido a …: Entrar, or ¿Nuevo? Regístrate aquí; signed in, straight on."""
    issuer = services_issuer(slug)
    if current_user.is_authenticated:
        return redirect(_home(slug), 303)
    return render_template("myservices/landing.html", issuer=issuer, home=_home(slug))


@bp.route("/<slug>/registro", methods=["GET", "POST"])
@limiter.limit(
    _limit("RATELIMIT_EMAIL_IP"), methods=["POST"], exempt_when=registration.inline_check
)
def register(slug: str):
    """The seed's registration: the person's data, the password and the terms → CONTINUAR →
    the activation email. A new address, one being registered and one with a complete account
    get the same page; only the address's owner learns which (by email)."""
    issuer = services_issuer(slug)
    current_terms = terms.current(db.session, issuer.id)
    form = RegisterForm(issuer, current_terms)
    inline = registration.inline_check()
    if inline:
        name = registration.inline_field(INLINE_FIELDS)
        if name is None or name not in form:
            return "", 404
        form.validate()
        if not form[name].data:
            form[name].errors = []
        return render("myservices/register.html", f"field_{name}", **_page(issuer, form))
    captcha_errors = []
    if request.method == "POST" and form.validate():
        if gate.captcha_solved():
            return _register(issuer, form, current_terms)
        captcha_errors = [_("El código no coincide con la imagen. Escriba el código nuevo.")]
    status = 422 if request.method == "POST" else 200
    return render_template(
        "myservices/register.html", **_page(issuer, form, captcha_errors=captcha_errors)
    ), status


def _page(issuer: Issuer, form: RegisterForm, captcha_errors=()) -> dict:
    token = captcha.issue()[0] if captcha.enabled() and not registration.inline_check() else None
    return {
        "issuer": issuer,
        "form": form,
        "check": url_for(".register", slug=issuer.slug),
        "captcha_token": token,
        "captcha_errors": list(captcha_errors),
    }


def _register(issuer: Issuer, form: RegisterForm, current_terms: ServiceTerms | None):
    email = form.email.data
    document = form.document.data
    # Hashed whatever the address: a known one answers as slowly as a new one.
    password_hash = passwords.hash_password(form.password.data)

    def new() -> Account:
        moment = registration.now()
        return Account(
            email=email,
            rfc=FOREIGN_RFC if issuer.country == "EC" else document,
            id_document=document if issuer.country == "EC" else None,
            given_names=form.given_names.data,
            surnames=form.surnames.data,
            password_hash=password_hash,
            password_changed_at=moment,
        )

    def deliver(account: Account) -> None:
        if account.password_hash is None:  # begun at /cuenta/registro: its own link
            registration.send_account_verification(account)
        else:
            _send_activation(account, issuer)

    def tell_owner(account: Account) -> None:
        registration.send(
            account,
            "already_registered",
            folder="myservices/email",
            issuer=issuer,
            landing=url_for(".landing", slug=issuer.slug),
        )

    done = registration.register(email, new, deliver, tell_owner)
    if done.answer is registration.Answer.NEW and current_terms is not None:
        terms.accept(db.session, done.account.id, current_terms, registration.now())
    db.session.commit()
    return redirect(url_for(".registered", slug=issuer.slug, correo=email), 303)


def _send_activation(account: Account, issuer: Issuer) -> None:
    """Activa tu cuenta de …: the data entered (never the password) and Activar Cuenta."""
    registration.send(
        account,
        "activate",
        folder="myservices/email",
        html=True,
        issuer=issuer,
        link=registration.link(account, "myservices.activate", slug=issuer.slug),
        hours=current_app.config["SECURITY_POLICY"].verification_link_hours,
        document_label=_("Cédula/Pasaporte") if issuer.country == "EC" else _("RFC"),
        document=account.id_document if issuer.country == "EC" else account.rfc,
    )


@bp.get("/<slug>/registro/enviado")
def registered(slug: str):
    issuer = services_issuer(slug)
    return render_template(
        "myservices/registered.html", issuer=issuer, email=request.args.get("correo", "")
    )


@bp.route("/<slug>/activar/<token>", methods=["GET", "POST"])
def activate(slug: str, token: str):
    """The emailed Activar Cuenta link: good once, for an account that chose its password
    in the form; afterwards the customer signs in from the issuer's page."""
    issuer = services_issuer(slug)
    account = registration.account_from_token("verify", token, registration.verification_max_age())
    if account is None or account.verified or account.password_hash is None:
        return render_template("accounts/link_invalid.html"), 410
    form = FlaskForm()
    if request.method == "POST" and form.validate():
        registration.mark_verified(account, registration.now())
        db.session.commit()
        flash(_("Su cuenta está activa. Entre con su correo electrónico y su contraseña."))
        return redirect(url_for(".landing", slug=slug), 303)
    return render_template("myservices/activate.html", issuer=issuer, account=account, form=form)


@bp.get("/<slug>/terminos/texto")
def terms_text(slug: str):
    issuer = services_issuer(slug)
    return render_template(
        "myservices/terms_text.html", issuer=issuer, terms=terms.current(db.session, issuer.id)
    )


@bp.route("/<slug>/terminos", methods=["GET", "POST"], endpoint="terms")
def accept_terms(slug: str):
    """A newer version of the terms than the account accepted (or none accepted yet): read and
    accept it to go on (holder_required leads here)."""
    issuer = services_issuer(slug)
    if not current_user.is_authenticated:
        return redirect(url_for("accounts.sign_in", next=request.full_path.rstrip("?")), 303)
    account = current_user.account
    target = local_path(request.args.get("next"))
    if target is None or target.startswith("/admin"):
        target = _home(slug)
    pending = terms.pending(db.session, account.id, issuer.id)
    if pending is None:
        return redirect(target, 303)
    form = TermsForm()
    status = 200
    if request.method == "POST" and form.validate():
        if form.terms.data == str(pending.id):
            terms.accept(db.session, account.id, pending, registration.now())
            db.session.commit()
            return redirect(target, 303)
        status = 409  # a newer version came out meanwhile: this one is shown to accept
    form.terms.data = str(pending.id)
    return render_template(
        "myservices/terms.html", issuer=issuer, terms=pending, form=form, changed=status == 409
    ), status
