"""`flask data-key ...`: which key seals the stored secrets, and re-encrypting them all under
the current DATA_KEY.

Stored secrets are the model columns named ``*_encrypted`` (today the issuer's CSD .key, its
password and its PAC credentials), found through the models' mappings, so a new such column is
covered without touching this module.

    flask --app webapp.app data-key status                # how many under which key; no writes
    flask --app webapp.app data-key rotate                # reseal legacy (SECRET_KEY) data
    flask --app webapp.app data-key rotate --old-key OLD  # move from a previous DATA_KEY

`rotate` runs in one transaction, holding the rows it rewrites (FOR UPDATE on PostgreSQL, the
write lock on SQLite): either every secret is resealed or, when one opens under no key given,
nothing is, and the command names the row.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field

import click
from cryptography.fernet import Fernet, InvalidToken
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from webapp import crypto
from webapp.db import lock_for_write

SUFFIX = "_encrypted"

# Labels of the keys a stored secret may open under, in the order they are tried.
CURRENT = "DATA_KEY"
OLD = "--old-key"
LEGACY = "SECRET_KEY (legacy)"
OLD_LEGACY = "--old-secret-key (legacy)"


def sealed_columns() -> list[tuple[type, list[str]]]:
    """Every mapped class with columns named *_encrypted, and those columns' attribute names."""
    from webapp.models import Base

    found = []
    for mapper in sorted(Base.registry.mappers, key=lambda m: m.class_.__name__):
        names = [c.key for c in mapper.column_attrs if c.key.endswith(SUFFIX)]
        if names:
            found.append((mapper.class_, names))
    return found


@dataclass
class Unreadable:
    model: str
    row_id: object
    column: str

    def __str__(self) -> str:
        return f"{self.model} #{self.row_id}: {self.column}"


@dataclass
class Report:
    """How many stored secrets opened under each key; the ones no key opens."""

    opened: Counter = field(default_factory=Counter)
    resealed: int = 0
    unreadable: list[Unreadable] = field(default_factory=list)

    def lines(self) -> list[str]:
        total = sum(self.opened.values()) + len(self.unreadable)
        out = [f"stored secrets: {total}"]
        out += [f"  under {label}: {count}" for label, count in self.opened.items()]
        if self.unreadable:
            out.append(f"  under no key given: {len(self.unreadable)}")
            out += [f"    {u}" for u in self.unreadable]
        return out


def _keys(
    config, old_keys: tuple[str, ...], old_secret_keys: tuple[str, ...]
) -> list[tuple[str, Fernet]]:
    """The keys to try, labelled, the current DATA_KEY first."""
    data_key = config.get("DATA_KEY")
    if not data_key:
        raise click.ClickException("DATA_KEY is not set")
    keys = [(CURRENT, crypto.cipher(data_key))]
    keys += [(OLD, crypto.cipher(k)) for k in old_keys if k and k != data_key]
    if secret_key := config.get("SECRET_KEY"):
        keys.append((LEGACY, crypto.cipher(secret_key, from_secret_key=True)))
    keys += [(OLD_LEGACY, crypto.cipher(k, from_secret_key=True)) for k in old_secret_keys if k]
    return keys


def _open(token: bytes, keys: list[tuple[str, Fernet]]) -> tuple[str, bytes] | None:
    for label, fernet in keys:
        try:
            return label, fernet.decrypt(token)
        except InvalidToken:
            continue
    return None


def reseal(
    session: Session,
    config,
    *,
    old_keys: tuple[str, ...] = (),
    old_secret_keys: tuple[str, ...] = (),
    write: bool = True,
) -> Report:
    """Re-encrypt under the current DATA_KEY every stored secret another key of `keys` opens.

    Secrets already under DATA_KEY are left as they are. With `write` False, only count.
    Commits when every secret opened; otherwise rolls back and returns the unreadable ones.
    """
    keys = _keys(config, old_keys, old_secret_keys)
    current = keys[0][1]
    report = Report()
    if write:
        lock_for_write(session)
    for model, names in sealed_columns():
        query = select(model).where(or_(*(getattr(model, n).is_not(None) for n in names)))
        if write:
            query = query.with_for_update()
        for row in session.scalars(query.order_by(*model.__mapper__.primary_key)):
            for name in names:
                token = getattr(row, name)
                if token is None:
                    continue
                opened = _open(bytes(token), keys)
                if opened is None:
                    row_id = model.__mapper__.primary_key_from_instance(row)
                    row_id = row_id[0] if len(row_id) == 1 else tuple(row_id)
                    report.unreadable.append(Unreadable(model.__name__, row_id, name))
                    continue
                label, plain = opened
                report.opened[label] += 1
                if write and label != CURRENT:
                    setattr(row, name, crypto.encrypt_with(current, plain))
                    report.resealed += 1
    if write and not report.unreadable:
        session.commit()
    else:
        session.rollback()
        if write:
            report.resealed = 0
    return report


data_key_cli = AppGroup("data-key", help="The key that encrypts stored CSDs and PAC credentials.")

_old_key = click.option(
    "--old-key",
    "old_keys",
    multiple=True,
    help="A previous DATA_KEY to read with (repeatable). The environment variable "
    "OLD_DATA_KEY adds one more and keeps it out of the process list.",
)
_old_secret_key = click.option(
    "--old-secret-key",
    "old_secret_keys",
    multiple=True,
    help="A previous SECRET_KEY, for data sealed before DATA_KEY was a setting of its own "
    "and SECRET_KEY changed since (repeatable; or the environment variable OLD_SECRET_KEY).",
)


def _with_environment(given: tuple[str, ...], name: str) -> tuple[str, ...]:
    """The keys given as options, and the one in the environment variable `name` (whole)."""
    from_environment = os.environ.get(name, "")
    return (*given, from_environment) if from_environment else given


def _session() -> Session:
    from webapp.extensions import db

    return db.session


@data_key_cli.command("status")
@_old_key
@_old_secret_key
def status_command(old_keys: tuple[str, ...], old_secret_keys: tuple[str, ...]) -> None:
    """Count the stored secrets under each key; change nothing."""
    report = reseal(
        _session(),
        current_app.config,
        old_keys=_with_environment(old_keys, "OLD_DATA_KEY"),
        old_secret_keys=_with_environment(old_secret_keys, "OLD_SECRET_KEY"),
        write=False,
    )
    for line in report.lines():
        click.echo(line)
    pending = sum(n for label, n in report.opened.items() if label != CURRENT)
    if pending:
        click.echo(f"{pending} to reseal: run `flask --app webapp.app data-key rotate`.")
    if report.unreadable:
        raise click.ClickException(
            f"{len(report.unreadable)} stored secret(s) open under no key given"
        )


@data_key_cli.command("rotate")
@_old_key
@_old_secret_key
def rotate_command(old_keys: tuple[str, ...], old_secret_keys: tuple[str, ...]) -> None:
    """Re-encrypt every stored secret under the current DATA_KEY.

    Reads each under DATA_KEY, the --old-key(s), then the SECRET_KEY derivation of
    installations older than DATA_KEY; writes what is not under DATA_KEY yet. All or nothing.
    """
    report = reseal(
        _session(),
        current_app.config,
        old_keys=_with_environment(old_keys, "OLD_DATA_KEY"),
        old_secret_keys=_with_environment(old_secret_keys, "OLD_SECRET_KEY"),
    )
    for line in report.lines():
        click.echo(line)
    if report.unreadable:
        raise click.ClickException(
            f"nothing changed: {len(report.unreadable)} stored secret(s) open under no key "
            "given. Pass the key they were sealed under (--old-key, --old-secret-key), or "
            "upload that CSD or those PAC credentials again."
        )
    click.echo(f"resealed under the current DATA_KEY: {report.resealed}")
