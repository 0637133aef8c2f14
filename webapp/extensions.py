"""Extensions, created here once and bound to the app with init_app."""

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Flask, current_app, g, request
from flask_babel import Babel
from flask_compress import Compress as _Compress
from flask_limiter import Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_wtf.csrf import CSRFProtect
from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from webapp.db import make_engine


@dataclass
class _State:
    engine: Engine
    sessions: sessionmaker[Session]


class Database:
    """Flask extension: one engine per app, `db.session` the current app context's session.

    `info` goes into every session's `Session.info`: settings the Flask-free domain reads
    from the session it is handed (e.g. the Message-ID domain of `webapp.mail.outbox`).
    """

    def init_app(self, app: Flask, info: Mapping[str, Any] | None = None) -> None:
        engine = make_engine(app.config["DATABASE_URL"])
        sessions = sessionmaker(engine, expire_on_commit=False, info=dict(info or {}))
        app.extensions["db"] = _State(engine, sessions)
        app.teardown_appcontext(self._close)

    @staticmethod
    def _state() -> _State:
        return current_app.extensions["db"]

    @property
    def engine(self) -> Engine:
        return self._state().engine

    @property
    def session(self) -> Session:
        if "db_session" not in g:
            g.db_session = self._state().sessions()
        return g.db_session

    @staticmethod
    def _close(_exc: BaseException | None) -> None:
        session = g.pop("db_session", None)
        if session is not None:
            session.close()


class Compress(_Compress):
    """flask-compress (br, gzip) for pages, fragments and static files, nothing else.

    Streamed answers pass through as they are, except static files (which Flask serves as
    file streams): the panel's ZIP, CSV and XLSX exports must leave chunk by chunk, and a
    compressor would hold them back. Partial content (a Range request) passes through too:
    its Content-Range counts the file's own bytes.
    """

    def after_request(self, response):
        if response.status_code == 206 or (response.is_streamed and request.endpoint != "static"):
            return response
        return super().after_request(response)


# Text the app writes; never downloads (application/zip, pdf, xml, text/csv, xlsx, images).
COMPRESS_DEFAULTS = {
    "COMPRESS_MIMETYPES": [
        "text/html",
        "text/css",
        "text/javascript",
        "application/javascript",
        "image/svg+xml",
        "application/json",
    ],
    "COMPRESS_ALGORITHM": ["br", "gzip"],
    "COMPRESS_ALGORITHM_STREAMING": ["br", "gzip"],  # static files
    "COMPRESS_BR_LEVEL": 5,
}

babel = Babel()
csrf = CSRFProtect()
compress = Compress()
db = Database()
login_manager = LoginManager()
# Storage from RATELIMIT_STORAGE_URI: memory by default, Redis when REDIS_URL is set.
limiter = Limiter(key_func=get_remote_address)
