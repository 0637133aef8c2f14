"""Logs: one handler on the root logger (plain text, or one JSON object per line with
LOG_FORMAT=json), a request id on every request and log record, and one access line per
request on the "webapp.access" logger.

The web app, the mail worker and every `flask` command build the app with create_app, so they
all log the same way. Configuring is idempotent: each call replaces the handler the previous
call installed (tests build many apps) and leaves other handlers (pytest's, gunicorn's) alone.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import time
from datetime import UTC, datetime

from flask import Flask, Response, current_app, g, has_request_context, request
from flask.logging import default_handler

FORMATS = ("text", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
HEADER = "X-Request-ID"
NO_REQUEST = "-"  # the request id of records logged outside a request (CLI, worker)

access_log = logging.getLogger("webapp.access")

_ENVIRON_KEY = "autofactura.request_id"
_SANE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# Attributes every LogRecord has: the rest were passed with `extra=` and go into JSON lines.
_STANDARD = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "request_id"}
_TEXT = "%(asctime)s %(levelname)s [%(request_id)s] %(name)s: %(message)s"


def request_id() -> str:
    """The current request's id (taken from a sane X-Request-ID, else made up once), or "-"
    outside a request."""
    if not has_request_context():
        return NO_REQUEST
    # Kept in the request's environ: `g` outlives a request when an app context was pushed
    # around it (as tests do), and the next request must not inherit the id.
    found = request.environ.get(_ENVIRON_KEY)
    if found is None:
        incoming = request.headers.get(HEADER, "")
        found = incoming if _SANE_ID.fullmatch(incoming) else secrets.token_hex(8)
        request.environ[_ENVIRON_KEY] = found
    g.request_id = found
    return found


class RequestIdFilter(logging.Filter):
    """Stamps `request_id` on every record that reaches the handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id()
        return True


def _extra(record: logging.LogRecord) -> dict:
    """The fields passed with `extra=`."""
    return {
        key: value
        for key, value in record.__dict__.items()
        if key not in _STANDARD and not key.startswith("_")
    }


class TextFormatter(logging.Formatter):
    """Time, level, [request id], logger, message, then the `extra` fields as key=value (the
    access lines' are in their message already)."""

    def __init__(self) -> None:
        super().__init__(_TEXT)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 (logging's name)
        line = super().formatMessage(record)
        if record.name == access_log.name:
            return line
        fields = " ".join(f"{key}={value}" for key, value in _extra(record).items())
        return f"{line} {fields}" if fields else line


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, message, request_id, the `extra` fields,
    and `exc` (the traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        ts = datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
        line = {
            "ts": ts.replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", NO_REQUEST),
        }
        for key, value in _extra(record).items():
            line.setdefault(key, value)
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = self.formatStack(record.stack_info)
        return json.dumps(line, ensure_ascii=False, default=str)


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time (as logging's own last resort does), so a
    stream swapped by a test runner or closed since is never written to."""

    def __init__(self) -> None:
        logging.Handler.__init__(self)

    @property
    def stream(self):  # type: ignore[override]
        return sys.stderr


def configure(log_format: str = "text", level: str = "INFO") -> logging.Handler:
    """Install (or replace) the app's handler on the root logger; return it."""
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, "_autofactura", False)]:
        root.removeHandler(old)
    handler = _StderrHandler()
    handler._autofactura = True  # type: ignore[attr-defined]
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level)
    # Alembic announces each of its plugins at INFO whenever it is imported: not news.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
    return handler


def _start() -> None:
    request.environ["autofactura.request_started"] = time.perf_counter()
    request_id()


def _finish(response: Response) -> Response:
    response.headers[HEADER] = request_id()
    started = request.environ.get("autofactura.request_started")
    duration_ms = round((time.perf_counter() - started) * 1000, 1) if started else None
    static = request.path.startswith(f"{current_app.static_url_path}/")
    access_log.log(
        logging.DEBUG if static else logging.INFO,
        "%s %s %s %sms",
        request.method,
        request.path,  # never the query string: it may carry an RFC or an email
        response.status_code,
        duration_ms,
        extra={
            "method": request.method,
            "path": request.path,
            "status": response.status_code,
            "duration_ms": duration_ms,
        },
    )
    return response


def init_app(app: Flask) -> None:
    configure(app.config.get("LOG_FORMAT", "text"), app.config.get("LOG_LEVEL", "INFO").upper())
    app.logger.removeHandler(default_handler)  # the root handler writes app.logger's records
    # First of the app's before-request hooks, so that a hook refusing the request (a 400)
    # still finds the start time; after_request runs for refused and failed requests too.
    app.before_request_funcs.setdefault(None, []).insert(0, _start)
    app.after_request(_finish)
