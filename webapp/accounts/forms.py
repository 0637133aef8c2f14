"""Forms of the account pages; rule checks live in passwords.py and webapp.fiscal."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, SelectField, StringField
from wtforms.validators import ValidationError

from webapp.fiscal.rfc import check_rfc
from webapp.invoicing.messages import BAD_EMAIL, REQUIRED, fiscal_message
from webapp.mail import validate_address


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class RfcEmailForm(FlaskForm):
    """RFC and email, checked as everywhere in the portal."""

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
    email = EmailField(
        _l("Correo electrónico"),
        filters=[_strip],
        render_kw={"autocomplete": "email", "maxlength": 254},
    )

    def validate_rfc(self, field) -> None:
        value, problem = check_rfc(field.data or "")
        if problem is not None:
            raise ValidationError(fiscal_message("rfc", problem))
        field.data = value

    def validate_email(self, field) -> None:
        if not field.data:
            raise ValidationError(REQUIRED["email"])
        try:
            field.data = validate_address(field.data).lower()
        except ValueError:
            raise ValidationError(BAD_EMAIL) from None


class RegisterForm(RfcEmailForm):
    email_confirm = EmailField(
        _l("Confirmar correo electrónico"),
        filters=[_strip],
        render_kw={"autocomplete": "email", "maxlength": 254},
    )

    def validate_email_confirm(self, field) -> None:
        if not field.data:
            raise ValidationError(_l("Escriba de nuevo su correo electrónico."))
        if field.data.strip().lower() != (self.email.data or "").strip().lower():
            raise ValidationError(_l("Los correos no coinciden."))


class PasswordForm(FlaskForm):
    password = PasswordField(
        _l("Contraseña"), render_kw={"autocomplete": "new-password", "maxlength": 1024}
    )
    password_confirm = PasswordField(
        _l("Confirmar contraseña"), render_kw={"autocomplete": "new-password", "maxlength": 1024}
    )


class SignInForm(FlaskForm):
    identifier = StringField(
        _l("RFC o correo electrónico"),
        filters=[_strip],
        render_kw={
            "autocomplete": "username",
            "maxlength": 254,
            "autocapitalize": "none",
            "spellcheck": "false",
        },
    )
    password = PasswordField(
        _l("Contraseña"), render_kw={"autocomplete": "current-password", "maxlength": 1024}
    )


class RecoverForm(RfcEmailForm):
    """RFC + the registered email (password recovery, forgotten secret question)."""


class ChangePasswordForm(PasswordForm):
    current = PasswordField(
        _l("Contraseña actual"), render_kw={"autocomplete": "current-password", "maxlength": 1024}
    )


class ForgotUserForm(FlaskForm):
    email = RfcEmailForm.email
    validate_email = RfcEmailForm.validate_email


class SecretQuestionForm(FlaskForm):
    """Choose a secret question and its answer (seed preset)."""

    question = SelectField(_l("Pregunta secreta"), choices=[], validate_choice=False)
    answer = StringField(
        _l("Respuesta"), filters=[_strip], render_kw={"autocomplete": "off", "maxlength": 100}
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        from webapp.security.questions import QUESTIONS

        self.question.choices = [("", _l("Elija…"))] + list(QUESTIONS.items())

    def validate_question(self, field) -> None:
        from webapp.security.questions import QUESTIONS

        if field.data not in QUESTIONS:
            raise ValidationError(_l("Elija una pregunta de la lista."))

    def validate_answer(self, field) -> None:
        from webapp.security.questions import normalize_answer

        if len(normalize_answer(field.data or "")) < 2:
            raise ValidationError(_l("Escriba una respuesta que pueda recordar."))


class AnswerForm(FlaskForm):
    """Answer the secret question during recovery (seed preset)."""

    step = HiddenField()
    answer = StringField(
        _l("Respuesta"), filters=[_strip], render_kw={"autocomplete": "off", "maxlength": 100}
    )
