"""Queueing an email: a MailMessage row added to the caller's session, never committed here."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Mapping
from email.utils import parseaddr
from urllib.parse import urlsplit

from sqlalchemy.orm import Session

from webapp.mail.deferred import Rendered, is_registered
from webapp.models import MailAttachment, MailMessage

# A plain ASCII addr-spec: dot-atom local part, host name labels. No display names, no
# comments, no quoted local parts, and above all no CR/LF (header injection).
_ATOM = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_ADDRESS = re.compile(rf"{_ATOM}(?:\.{_ATOM})*@{_LABEL}(?:\.{_LABEL})*")
_CONTENT_TYPE = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
SUBJECT_MAX = 255  # MailMessage.subject column

# (filename, content type, data): the bytes, or Rendered(...) for the worker to make them
Attachment = tuple[str, str, bytes | Rendered]
# The Session.info key of the Message-ID domain: the app puts message_domain(config) into
# every session it makes (webapp/app.py); a session without it queues "@localhost" ids.
MESSAGE_DOMAIN = "mail.message_domain"


def validate_address(value: str) -> str:
    """The address without surrounding blanks; ValueError if empty or not a plain address."""
    if not isinstance(value, str):
        raise ValueError("email address must be a string")
    address = value.strip()
    if not address:
        raise ValueError("empty email address")
    if len(address) > 254 or not _ADDRESS.fullmatch(address):
        raise ValueError(f"invalid email address: {address!r}")
    return address


def _header_text(value: str, what: str, limit: int) -> str:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be a string")
    text = value.strip()
    if not text:
        raise ValueError(f"empty {what}")
    if _CONTROL.search(text):
        raise ValueError(f"{what} must not contain control characters (CR, LF, ...)")
    if len(text) > limit:
        raise ValueError(f"{what} longer than {limit} characters")
    return text


def message_domain(config: Mapping) -> str:
    """The domain of Message-IDs: MAIL_FROM's, else BASE_URL's host, else localhost."""
    _name, sender = parseaddr(config.get("MAIL_FROM", ""))
    domain = sender.rpartition("@")[2]
    if domain and _ADDRESS.fullmatch(f"x@{domain}"):
        return domain
    return urlsplit(config.get("BASE_URL", "")).hostname or "localhost"


def queue_mail(
    session: Session,
    to: str | Iterable[str],
    subject: str,
    text: str,
    html: str | None = None,
    attachments: Iterable[Attachment] = (),
) -> MailMessage:
    """Add an email to `session` for the worker to send once the caller commits.

    `to` is one address or several; `attachments` are (filename, content type, data), the
    data bytes or a `Rendered` the worker makes at delivery (webapp.mail.deferred).
    Raises ValueError for an empty or malformed address, a subject with line breaks, or a
    malformed attachment (or one whose renderer is not registered). The Message-ID is fixed
    now, so a re-sent message keeps it; its domain is the session's `info[MESSAGE_DOMAIN]`
    (localhost without one).
    """
    addresses = [validate_address(to)] if isinstance(to, str) else [validate_address(a) for a in to]
    if not addresses:
        raise ValueError("no recipient")
    if not isinstance(text, str):
        raise ValueError("text body must be a string")
    if html is not None and not isinstance(html, str):
        raise ValueError("HTML body must be a string")
    message = MailMessage(
        # random from the OS
        message_id=f"<{secrets.token_hex(16)}@{session.info.get(MESSAGE_DOMAIN, 'localhost')}>",
        to_addrs=", ".join(addresses),
        subject=_header_text(subject, "subject", SUBJECT_MAX),
        body_text=text,
        body_html=html,
    )
    for filename, content_type, data in attachments:
        kind = content_type.strip().lower() if isinstance(content_type, str) else ""
        if not _CONTENT_TYPE.fullmatch(kind):
            raise ValueError(f"invalid attachment content type: {content_type!r}")
        deferred = data if isinstance(data, Rendered) else None
        if deferred is not None:
            if not is_registered(deferred.renderer) or not isinstance(deferred.source_id, int):
                raise ValueError(f"attachment renderer not registered: {deferred!r}")
        elif not isinstance(data, bytes):
            raise ValueError("attachment data must be bytes or Rendered")
        message.attachments.append(
            MailAttachment(
                filename=_header_text(filename, "attachment filename", 255),
                content_type=kind,
                data=None if deferred else data,
                renderer=deferred.renderer if deferred else None,
                source_id=deferred.source_id if deferred else None,
            )
        )
    session.add(message)
    return message
