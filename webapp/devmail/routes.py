"""The development mailbox: the .eml files of the file:// transport, listed and shown as text.

Everything in a message is untrusted: it is escaped, the HTML part is never rendered, and
only http(s) URLs of the text part become links.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from flask import abort, current_app, render_template
from flask_babel import format_datetime
from markupsafe import Markup, escape

from webapp.devmail import bp
from webapp.mail.transport import mail_directory

# Names written by FileTransport (see transport.eml_name); anything else is not served.
EML_NAME = re.compile(r"\d{8}T\d{6}\.\d{6}Z-\d{1,18}\.eml")
URL = re.compile(r"https?://[^\s<>\"'`]+")
TRAILING = ".,;:!?)]}"
LIST_LIMIT = 200


@dataclass(frozen=True)
class Entry:
    name: str
    date: str
    to: str
    subject: str


@bp.before_request
def only_in_development() -> None:
    if not (current_app.config.get("DEBUG") or current_app.config.get("DEV_MAILBOX")):
        abort(404)


def _directory() -> Path | None:
    return mail_directory(current_app.config["MAIL_URL"])


def _parse(path: Path, headers_only: bool = False) -> EmailMessage:
    parser = BytesParser(policy=policy.default)
    with path.open("rb") as f:
        return parser.parse(f, headersonly=headers_only)  # type: ignore[return-value]


def _date(message: EmailMessage) -> str:
    header = message.get("Date")
    when: datetime | None = getattr(header, "datetime", None)
    return format_datetime(when, "medium") if when else str(header or "")


def linkify(text: str) -> Markup:
    """`text` escaped, with its http(s) URLs as links (trailing punctuation left outside)."""
    parts: list[Markup] = []
    position = 0
    for match in URL.finditer(text):
        url = match.group(0).rstrip(TRAILING)
        parts.append(escape(text[position : match.start()]))
        parts.append(Markup('<a href="{0}" rel="noreferrer">{0}</a>').format(url))
        position = match.start() + len(url)
    parts.append(escape(text[position:]))
    return Markup("").join(parts)


@bp.get("")
def index():
    directory = _directory()
    entries: list[Entry] = []
    if directory is not None and directory.is_dir():
        names = sorted(p.name for p in directory.iterdir() if EML_NAME.fullmatch(p.name))
        for name in reversed(names[-LIST_LIMIT:]):
            message = _parse(directory / name, headers_only=True)
            entries.append(
                Entry(name, _date(message), str(message["To"] or ""), str(message["Subject"] or ""))
            )
    return render_template("devmail/index.html", entries=entries, directory=directory)


@bp.get("/<name>")
def show(name: str):
    directory = _directory()
    if directory is None or not EML_NAME.fullmatch(name):
        abort(404)
    path = directory / name
    if not path.is_file():
        abort(404)
    message = _parse(path)
    text_part = message.get_body(preferencelist=("plain",))
    body = text_part.get_content() if text_part is not None else ""
    return render_template(
        "devmail/message.html",
        sender=str(message["From"] or ""),
        to=str(message["To"] or ""),
        subject=str(message["Subject"] or ""),
        date=_date(message),
        message_id=str(message["Message-ID"] or ""),
        body=linkify(body),
        attachments=[part.get_filename() or "" for part in message.iter_attachments()],
        has_html=message.get_body(preferencelist=("html",)) is not None,
    )
