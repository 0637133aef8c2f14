"""The development SMS inbox: the .json files of the file:// transport, listed and shown.

Everything in a message is untrusted: it is escaped by the templates, and only files named as
the transport names them, in its directory, are read.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from flask import abort, current_app, render_template
from flask_babel import format_datetime

from webapp.devsms import bp
from webapp.sms.transport import sms_directory

# Names written by FileTransport (see transport.file_name); anything else is not served.
FILE_NAME = re.compile(r"\d{8}T\d{6}\.\d{6}Z-\d{1,18}\.json")
LIST_LIMIT = 200


@dataclass(frozen=True)
class Entry:
    name: str
    date: str
    to: str
    sender: str
    text: str
    encoding: str
    segments: str


@bp.before_request
def only_in_development() -> None:
    if not (current_app.config.get("DEBUG") or current_app.config.get("DEV_MAILBOX")):
        abort(404)


def _directory() -> Path | None:
    return sms_directory(current_app.config["SMS_URL"])


def _date(value: object) -> str:
    try:
        return format_datetime(datetime.fromisoformat(str(value)), "medium")
    except ValueError:
        return str(value or "")


def _read(path: Path) -> Entry | None:
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict):
        return None
    return Entry(
        name=path.name,
        date=_date(record.get("sent_at")),
        to=str(record.get("to", "")),
        sender=str(record.get("from", "")),
        text=str(record.get("text", "")),
        encoding=str(record.get("encoding", "")),
        segments=str(record.get("segments", "")),
    )


@bp.get("")
def index():
    directory = _directory()
    entries: list[Entry] = []
    if directory is not None and directory.is_dir():
        names = sorted(p.name for p in directory.iterdir() if FILE_NAME.fullmatch(p.name))
        for name in reversed(names[-LIST_LIMIT:]):
            entry = _read(directory / name)
            if entry is not None:
                entries.append(entry)
    return render_template("devsms/index.html", entries=entries, directory=directory)


@bp.get("/<name>")
def show(name: str):
    directory = _directory()
    if directory is None or not FILE_NAME.fullmatch(name):
        abort(404)
    path = directory / name
    entry = _read(path) if path.is_file() else None
    if entry is None:
        abort(404)
    return render_template("devsms/message.html", entry=entry)
