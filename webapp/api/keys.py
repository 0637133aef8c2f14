"""API keys: made with 32 random bytes, shown once, stored as SHA-256 with a short prefix."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from webapp.models import ApiKey, Issuer

KEY_PREFIX = "af_live_"
PREFIX_LENGTH = len(KEY_PREFIX) + 6  # "af_live_" and 6 characters of the secret part
TOUCH_EVERY = timedelta(seconds=60)  # last_used_at is written at most once a minute


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def make_key(session: Session, issuer: Issuer, name: str) -> tuple[ApiKey, str]:
    """A new key of `issuer`: the row (added to the session) and the key, to show once."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(issuer_id=issuer.id, name=name, prefix=key[:PREFIX_LENGTH], key_hash=hash_key(key))
    session.add(row)
    return row, key


def authenticate(session: Session, key: str, now: datetime | None = None) -> ApiKey | None:
    """The live key for `key` (its last use updated, not committed), or None."""
    if not key.startswith(KEY_PREFIX) or len(key) > 200:
        return None
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(key)))
    if row is None or row.revoked_at is not None:
        return None
    now = now or datetime.now(UTC)
    if row.last_used_at is None or now - row.last_used_at >= TOUCH_EVERY:
        row.last_used_at = now
    return row
