"""The engine settings and locking every process of the app shares (no Flask: the domain
packages use it; the Flask extension binding a session to each app context is
`webapp.extensions.Database`)."""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.orm import Session


def make_engine(url: str, **kwargs) -> Engine:
    """An engine with the settings every process of the app uses (web, worker, CLI)."""
    if url.startswith("sqlite"):
        kwargs.setdefault("connect_args", {"timeout": 30})
        engine = create_engine(url, **kwargs)
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def lock_for_write(session: Session) -> None:
    """Start the session's transaction holding the database's write lock on SQLite.

    SQLite has no row locks: BEGIN IMMEDIATE serialises writers, so a read-then-update
    cannot interleave with another one. On PostgreSQL, callers lock rows with FOR UPDATE.
    """
    if session.get_bind().dialect.name == "sqlite":
        session.execute(text("BEGIN IMMEDIATE"))
