"""Forms of the profile pages: the ticket flow's fields, rules and messages, reused."""

from __future__ import annotations

import re

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import EmailField, TextAreaField

from webapp.accounts.forms import ChangePasswordForm, RegisterForm, RfcEmailForm
from webapp.fiscal.receptor import Receptor
from webapp.invoicing import messages
from webapp.invoicing.forms import TicketForm, check_receptor_data
from webapp.mail import validate_address

MAX_EMAILS = 5  # as many as the invoice page's "Enviar a"
FIELDS = ("nombre", "cp", "regimen", "uso_cfdi", "emails")


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class ProfileForm(FlaskForm):
    """The receptor data an account invoices with; there is no RFC field: it cannot change."""

    nombre = TicketForm.nombre
    cp = TicketForm.cp
    regimen = TicketForm.regimen
    uso_cfdi = TicketForm.uso_cfdi
    emails = TextAreaField(
        _l("Correos para enviar sus facturas"),
        render_kw={
            "rows": 3,
            "maxlength": 1300,
            "autocomplete": "email",
            "autocapitalize": "none",
            "spellcheck": "false",
        },
    )


def parse_emails(text: str | None) -> tuple[list[str], str | None]:
    """The addresses typed one per line (commas and semicolons also separate), lowercased and
    without repeats; or the problem, naming the address at fault."""
    found: list[str] = []
    for part in re.split(r"[\s,;]+", text or ""):
        if not part:
            continue
        try:
            address = validate_address(part).lower()
        except ValueError:
            shown = part if len(part) <= 60 else part[:59] + "…"
            return [], _(
                "Revise «%(address)s»: %(message)s", address=shown, message=messages.BAD_EMAIL
            )
        if address not in found:
            found.append(address)
    if len(found) > MAX_EMAILS:
        return [], _("Escriba como máximo %(n)s correos.", n=MAX_EMAILS)
    return found, None


def check_profile(form: ProfileForm, rfc: str) -> tuple[Receptor | None, list[str], dict]:
    """Every rule of the ticket flow: (receptor, delivery emails, messages by field name)."""
    receptor, errors = check_receptor_data(form, rfc)
    emails, problem = parse_emails(form.emails.data)
    if problem is not None:
        errors["emails"] = problem
    return receptor, emails, errors


class EmailChangeForm(FlaskForm):
    """The new address twice, checked as at registration, and the current password."""

    email = EmailField(
        _l("Correo electrónico nuevo"),
        filters=[_strip],
        render_kw={"autocomplete": "email", "maxlength": 254},
    )
    email_confirm = EmailField(
        _l("Confirmar correo electrónico nuevo"),
        filters=[_strip],
        render_kw={"autocomplete": "email", "maxlength": 254},
    )
    current = ChangePasswordForm.current
    validate_email = RfcEmailForm.validate_email
    validate_email_confirm = RegisterForm.validate_email_confirm
