"""Transports named by MAIL_URL, and composing a MailMessage row into an EmailMessage.

file://instance/mail          .eml files, relative to the project root (netloc + path)
file:///var/mail/autofactura  .eml files, absolute path
smtp://user:pass@host:25      plain SMTP (user and password optional, url-encoded)
smtp+starttls://host:587      SMTP upgraded with STARTTLS
smtp+ssl://host:465           SMTP over TLS
"""

from __future__ import annotations

import functools
import os
import smtplib
import ssl
import tempfile
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

from webapp.models import MailMessage, utcnow

# The project directory (webapp.config.ROOT), which a relative file:// MAIL_URL is under;
# not imported from webapp.config, whose start-up checks reach into the app's blueprints.
ROOT = Path(__file__).resolve().parents[2]

SMTP_PORTS = {"smtp": 25, "smtp+starttls": 587, "smtp+ssl": 465}


class Transport(Protocol):
    def send(self, message: EmailMessage, mail_id: int) -> None:
        """Deliver `message` (the outbox row `mail_id`) or raise."""

    def describe(self) -> str:
        """Where the messages go, without secrets, for logs."""


def compose(row: MailMessage, sender: str) -> EmailMessage:
    """The email for an outbox row: text, optional HTML alternative, attachments."""
    message = EmailMessage()
    message["From"] = sender
    message["To"] = row.to_addrs
    message["Subject"] = row.subject
    message["Date"] = format_datetime(row.created_at or utcnow())
    message["Message-ID"] = row.message_id
    message.set_content(row.body_text)
    if row.body_html:
        message.add_alternative(row.body_html, subtype="html")
    for attachment in row.attachments:
        if attachment.data is None:  # webapp.mail.deferred.fill makes it first
            raise ValueError(f"attachment {attachment.filename!r} is not rendered yet")
        maintype, _, subtype = attachment.content_type.partition("/")
        message.add_attachment(
            attachment.data, maintype=maintype, subtype=subtype, filename=attachment.filename
        )
    return message


def eml_name(mail_id: int, when: datetime) -> str:
    """A file name that sorts by time and names the outbox row: 20250131T235959.123456Z-42.eml"""
    return f"{when:%Y%m%dT%H%M%S.%f}Z-{mail_id}.eml"


@dataclass(frozen=True)
class FileTransport:
    """One .eml file per message, written atomically (temporary file, then rename)."""

    directory: Path

    def send(self, message: EmailMessage, mail_id: int) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".", suffix=".tmp", dir=self.directory)
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(message.as_bytes())
            os.replace(tmp, self.directory / eml_name(mail_id, utcnow()))
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def describe(self) -> str:
        return f"files in {self.directory}"


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """Certificate-verifying TLS settings, built once (loading the CA store is slow)."""
    return ssl.create_default_context()


@dataclass(frozen=True)
class SmtpTransport:
    """A connection per message to an SMTP server; every connection has `timeout`."""

    host: str
    port: int
    security: str  # "plain", "starttls" or "ssl"
    username: str | None
    password: str | None
    timeout: float

    def send(self, message: EmailMessage, mail_id: int) -> None:
        smtp: smtplib.SMTP
        if self.security == "ssl":
            smtp = smtplib.SMTP_SSL(
                self.host, self.port, timeout=self.timeout, context=_tls_context()
            )
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        with smtp:
            if self.security == "starttls":
                smtp.starttls(context=_tls_context())
            if self.username:
                smtp.login(self.username, self.password or "")
            smtp.send_message(message)

    def describe(self) -> str:
        user = f" as {self.username}" if self.username else ""
        return f"SMTP ({self.security}) {self.host}:{self.port}{user}"


def mail_directory(url: str) -> Path | None:
    """The directory of a file:// MAIL_URL, or None for any other scheme."""
    parts = urlsplit(url)
    if parts.scheme != "file":
        return None
    path = unquote(parts.netloc + parts.path)
    if not path:
        raise ValueError(f"MAIL_URL {url!r} names no directory")
    return ROOT / path if parts.netloc else Path(path)


def transport_from_url(url: str, timeout: float = 20.0) -> Transport:
    """The transport for MAIL_URL; ValueError naming the problem for anything else."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "file":
        directory = mail_directory(url)
        assert directory is not None
        return FileTransport(directory)
    if scheme in SMTP_PORTS:
        if not parts.hostname:
            raise ValueError(f"MAIL_URL {scheme}:// needs a host, e.g. {scheme}://mail.example.com")
        try:
            port = parts.port or SMTP_PORTS[scheme]
        except ValueError as exc:
            raise ValueError(f"MAIL_URL has an invalid port: {exc}") from None
        return SmtpTransport(
            host=parts.hostname,
            port=port,
            security={"smtp": "plain", "smtp+starttls": "starttls", "smtp+ssl": "ssl"}[scheme],
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            timeout=timeout,
        )
    raise ValueError(
        f"MAIL_URL scheme {scheme or '(none)'!r} is not supported; use file://, smtp://, "
        "smtp+starttls:// or smtp+ssl://"
    )


def transport_from_config(config: dict) -> Transport:
    """The transport for an app's MAIL_URL and MAIL_TIMEOUT_SECONDS."""
    return transport_from_url(config["MAIL_URL"], float(config["MAIL_TIMEOUT_SECONDS"]))
