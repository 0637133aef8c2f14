"""Captcha tokens: signed, expiring, single use; the answer is in no token and in no table.

A token is an itsdangerous URLSafeTimedSerializer (salt "captcha") of a random nonce and the
number of digits. The challenge's seed is HMAC(pepper, nonce), the pepper being derived from
SECRET_KEY, so the server can render the image and the audio again from the token alone
(nothing stored at issue time), while the token does not reveal the answer to its holder.

Each token is good for one attempt, right or wrong: `verify` records the nonce in captcha_use
in a transaction of its own, so the record stays even when the caller's request rolls back.
Call it before the request writes anything else (on SQLite a second writer would wait).
Records older than RETENTION are purged as new ones come, the tokens having expired long before.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import unicodedata
from datetime import timedelta

from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer
from sqlalchemy import delete, insert
from sqlalchemy.exc import IntegrityError

from webapp.extensions import db
from webapp.models.base import utcnow
from webapp.models.captcha import CaptchaUse
from webapp.security.captcha.challenge import DEFAULT_LENGTH, MAX_LENGTH, Challenge, new_challenge

SALT = "captcha"
MAX_AGE = 600  # seconds a token is good for
RETENTION = timedelta(days=1)  # how long a used nonce is remembered; longer than any max_age
FORM_FIELD = "captcha"  # names of the form's inputs, as the macro writes them
TOKEN_FIELD = "captcha_token"  # noqa: S105 (a form field name)


def enabled() -> bool:
    return str(current_app.config.get("CAPTCHA", "on")).strip().lower() != "off"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=SALT)


def _seed(nonce: str) -> bytes:
    """The challenge seed: known to the server only, fixed by the nonce."""
    secret = current_app.secret_key
    key = secret if isinstance(secret, bytes) else str(secret).encode()
    pepper = hmac.new(key, b"autofactura captcha pepper", hashlib.sha256).digest()
    return hmac.new(pepper, nonce.encode(), hashlib.sha256).digest()


def issue(length: int | None = None) -> tuple[str, Challenge]:
    """A new token and its challenge (CAPTCHA_LENGTH digits, 5 unless configured)."""
    length = length or int(current_app.config.get("CAPTCHA_LENGTH", DEFAULT_LENGTH))
    nonce = secrets.token_urlsafe(16)
    token = _serializer().dumps([nonce, length])
    return token, new_challenge(length, seed=_seed(nonce))


def _load(token: str, max_age: int) -> tuple[str, int] | None:
    try:
        payload = _serializer().loads(token, max_age=max_age)
    except BadSignature:  # SignatureExpired included
        return None
    match payload:
        case [str(nonce), int(length)] if len(nonce) <= 32 and 1 <= length <= MAX_LENGTH:
            return nonce, length
    return None


def challenge_for(token: str, max_age: int = MAX_AGE) -> Challenge | None:
    """The challenge a valid, unexpired token stands for; None for any other string."""
    loaded = _load(token, max_age)
    if loaded is None:
        return None
    nonce, length = loaded
    return new_challenge(length, seed=_seed(nonce))


def normalise(answer: str | None) -> str:
    """What the person typed, as ASCII digits: spaces and dashes dropped, other scripts'
    digits (full-width, Arabic-Indic) read as digits. Anything else stays and fails."""
    out = []
    for ch in answer or "":
        if ch.isspace() or ch in "-.\u00ad":
            continue
        out.append(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch)
    return "".join(out)


def _consume(nonce: str) -> bool:
    """Record the nonce; False when it was recorded before (the token was used)."""
    now = utcnow()
    try:
        with db.engine.begin() as conn:
            conn.execute(delete(CaptchaUse).where(CaptchaUse.used_at < now - RETENTION))
            conn.execute(insert(CaptchaUse).values(nonce=nonce, used_at=now))
    except IntegrityError:
        return False
    return True


def verify(token: str | None, answer: str | None, max_age: int = MAX_AGE) -> bool:
    """True once for a valid, unexpired token and its answer; always True with CAPTCHA=off.

    Any attempt with a valid token spends it, right or wrong: the form shows a new one.
    """
    if not enabled():
        return True
    if max_age > RETENTION.total_seconds():
        raise ValueError("max_age longer than the used-token retention")
    loaded = _load(token or "", max_age)
    if loaded is None:
        return False
    nonce, length = loaded
    if not _consume(nonce):
        return False
    expected = new_challenge(length, seed=_seed(nonce)).answer
    return hmac.compare_digest(normalise(answer).encode(), expected.encode())
