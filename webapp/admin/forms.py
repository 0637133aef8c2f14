"""Forms of the back office's sign-in and password pages."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, PasswordField

from webapp.accounts.forms import PasswordForm, RfcEmailForm, _strip


class StaffSignInForm(FlaskForm):
    email = EmailField(
        _l("Correo electrónico"),
        filters=[_strip],
        render_kw={"autocomplete": "username", "maxlength": 254, "autocapitalize": "none"},
    )
    password = PasswordField(
        _l("Contraseña"), render_kw={"autocomplete": "current-password", "maxlength": 1024}
    )


class StaffRecoverForm(FlaskForm):
    email = RfcEmailForm.email
    validate_email = RfcEmailForm.validate_email


StaffPasswordForm = PasswordForm
