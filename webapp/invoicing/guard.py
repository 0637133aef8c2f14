"""Limits on guessing tickets and on sending invoices by email.

Ticket checks (the inline checks of the ticket fields, "Agregar otro ticket", "Generar
factura" and "Reenviar la factura") count against RATELIMIT_TICKET_IP per client (the kiosk
terminal on a kiosk: `webapp.ratelimits.client_key`) and RATELIMIT_TICKET_BRANCH per branch
looked in, together. After TICKET_CAPTCHA_AFTER_MISSES answers "not there" (number not found,
order number or total not matching; the same ticket typed the same way counts once) in this
browser session, every lookup needs the captcha first: the inline checks stop answering whether
the ticket exists and the submits are refused until it is solved; a ticket typed whole and right
clears the count. A lookup is refused before anything is looked up, so a refusal takes the same
time whatever the ticket. The count is kept in the rate limiter's storage under the session's
random name, not in the session cookie: an inline check then never writes the cookie (its answer
could land after a submit's and undo it), and an old cookie played again does not bring back
an old count.

Invoice emails ("Enviar por correo", and "Reenviar" in the ticket flow and in Mis facturas)
count each address against RATELIMIT_INVOICE_MAIL per invoice, RATELIMIT_INVOICE_MAIL_SESSION
per browser session (per account when signed in) and RATELIMIT_INVOICE_MAIL_IP per client.
"""

from __future__ import annotations

import hashlib

from flask import current_app, request
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from webapp import ratelimits
from webapp.extensions import limiter
from webapp.invoicing import flow
from webapp.invoicing.forms import TICKET_FIELDS, TicketOutcome
from webapp.kiosk_context import current as on_kiosk
from webapp.models import Invoice
from webapp.ratelimits import Limit
from webapp.security.captcha import store as captcha

MISS_MEMORY_SECONDS = 3600  # a session's answers "not there" count this long after the first
_MISSES = "autofactura.ticket_misses"  # in the request's environ: (session, count) read

CAPTCHA_MESSAGE = _l("Escriba los números de la imagen o del audio tal como aparecen.")
INVOICE_FULL = _l(
    "Esta factura ya se envió por correo muchas veces en poco tiempo. Intente de nuevo más tarde."
)
SENDER_FULL = _l(
    "Se han enviado muchos correos desde aquí en poco tiempo. Espere un rato e intente de nuevo."
)


def _branch_key() -> str:
    """The branch a ticket check looks in: the kiosk's, or the one chosen in this session."""
    kiosk = on_kiosk()
    if kiosk is not None:
        return f"branch:{kiosk.branch_id}"
    slug = (request.view_args or {}).get("slug") or ""
    return f"branch:{flow.get(slug).get('branch_id') or '-'}"


def _no_lookup() -> bool:
    """Inline checks of the other fields tell nothing about the ticket: they do not count."""
    return (
        request.endpoint == "invoicing.field"
        and (request.view_args or {}).get("name") not in TICKET_FIELDS
    )


ticket_ip_limit = limiter.shared_limit(
    lambda: current_app.config["RATELIMIT_TICKET_IP"],
    scope="ticket-ip",
    key_func=ratelimits.client_key,
    methods=["POST"],
    exempt_when=_no_lookup,
)
ticket_branch_limit = limiter.shared_limit(
    lambda: current_app.config["RATELIMIT_TICKET_BRANCH"],
    scope="ticket-branch",
    key_func=_branch_key,
    methods=["POST"],
    exempt_when=_no_lookup,
)


def _misses(who: str) -> int:
    """The session `who`'s answers "not there", read from the storage once per request (a
    round trip to Redis in production); note() keeps it current."""
    known = request.environ.get(_MISSES)
    if known is None or known[0] != who:
        known = request.environ[_MISSES] = (who, ratelimits.peek("ticket-misses", who))
    return known[1]


def captcha_due() -> bool:
    """Whether a lookup needs the captcha in this browser session."""
    after = current_app.config["TICKET_CAPTCHA_AFTER_MISSES"]
    if not after or not captcha.enabled():
        return False
    return _misses(ratelimits.session_key()) >= after


def captcha_token() -> str | None:
    """A captcha for the ticket form when one is due."""
    return captcha.issue()[0] if captcha_due() else None


def captcha_solved() -> bool:
    """The form's captcha answered right (a token is good for one try). Call it before the
    request writes anything."""
    return captcha.verify(
        request.form.get(captcha.TOKEN_FIELD), request.form.get(captcha.FORM_FIELD)
    )


def note(outcome: TicketOutcome) -> None:
    """Count an answer "not there" (once for the same ticket typed the same way); a ticket
    typed whole and right clears the count."""
    if not current_app.config["TICKET_CAPTCHA_AFTER_MISSES"]:
        return
    who = ratelimits.session_key()
    if outcome.missed:
        typed = hashlib.sha256("|".join(outcome.typed or ()).encode()).hexdigest()[:20]
        if ratelimits.bump("ticket-miss-seen", f"{who}:{typed}", MISS_MEMORY_SECONDS) == 1:
            count = ratelimits.bump("ticket-misses", who, MISS_MEMORY_SECONDS)
            request.environ[_MISSES] = (who, count)
    elif outcome.matched and _misses(who):  # nothing to clear otherwise
        ratelimits.forget("ticket-misses", who)
        request.environ[_MISSES] = (who, 0)


def mail_refusal(invoice: Invoice, recipients: int):
    """None when `recipients` more emails of `invoice` fit the limits (they are counted
    then); else the message to show next to the address field."""
    sender = (
        f"account:{current_user.account.id}"
        if current_user.is_authenticated
        else ratelimits.session_key()
    )
    full = ratelimits.take(
        Limit("RATELIMIT_INVOICE_MAIL", "invoice-mail", invoice.public_id),
        Limit("RATELIMIT_INVOICE_MAIL_SESSION", "invoice-mail-session", sender),
        Limit("RATELIMIT_INVOICE_MAIL_IP", "invoice-mail-ip", ratelimits.client_key()),
        cost=recipients,
    )
    if full is None:
        return None
    return INVOICE_FULL if full.setting == "RATELIMIT_INVOICE_MAIL" else SENDER_FULL
