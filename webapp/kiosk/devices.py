"""Kiosk devices, Flask-free: enrol, claim, look up, revoke, and the hand-off to a phone.

Enrolment: staff create a pending kiosk and get a signed link (`enrol_token`). The link
carries the kiosk id and a fingerprint of its state; claiming it (`claim`) stores the hash of
a new device secret and the enrolment time, which changes the fingerprint: the link dies once
used, and it dies anyway after its max age (checked by `read_enrol_token`).

The device cookie is "public_id.secret". Only SHA-256 of the secret is stored (the secret is
random, 256 bits: a slow hash would add nothing), so a copy of the database enrols nothing.

The hand-off ("Continuar en mi teléfono") is a signed token with the branch, the RFC (for an
Ecuadorian issuer, the buyer's identificación and its tipo) and the ticket fields typed so
far, plus a nonce stored on the kiosk: redeeming it clears the nonce (single use), and the
kiosk's next hand-off replaces it (one live link per kiosk). It is not cleared when the
customer taps "Terminar": they may well do that before opening the link.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from webapp.models import Branch, Kiosk

ENROL_SALT = "autofactura-kiosk-enrol"
HANDOFF_SALT = "autofactura-kiosk-handoff"
# last_seen_at is written at most this often; it also tells how long the kiosk has been idle
# (webapp.kiosk.web), so it is kept in the database, not in the cookie session: concurrent
# requests (htmx's inline checks beside a submit) would overwrite each other's cookie.
SEEN_EVERY = timedelta(seconds=5)
HANDOFF_FIELDS = {"order_number": 40, "ticket_number": 40, "total": 20}  # name → max length


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def fingerprint(kiosk: Kiosk) -> str:
    state = "|".join(
        str(v or "")
        for v in (kiosk.public_id, kiosk.secret_hash, kiosk.enrolled_at, kiosk.revoked_at)
    )
    return hashlib.sha256(state.encode()).hexdigest()[:24]


def create(session: Session, branch: Branch, name: str = "") -> Kiosk:
    """A pending kiosk of `branch` (flushed; committed by the caller)."""
    kiosk = Kiosk(branch=branch, name=name.strip()[:80])
    session.add(kiosk)
    session.flush()
    return kiosk


def enrol_token(secret_key: str, kiosk: Kiosk) -> str:
    return URLSafeTimedSerializer(secret_key, salt=ENROL_SALT).dumps(
        {"k": kiosk.id, "f": fingerprint(kiosk)}
    )


def read_enrol_token(session: Session, secret_key: str, token: str, max_age: int) -> Kiosk | None:
    """The pending kiosk of a valid enrolment token; None when the token is altered, expired,
    already used, or its kiosk was revoked."""
    try:
        data = URLSafeTimedSerializer(secret_key, salt=ENROL_SALT).loads(token, max_age=max_age)
    except (BadSignature, SignatureExpired):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("k"), int):
        return None
    kiosk = session.get(Kiosk, data["k"])
    if kiosk is None or kiosk.state != "pending":
        return None
    if not hmac.compare_digest(fingerprint(kiosk), str(data.get("f"))):
        return None
    return kiosk


def claim(kiosk: Kiosk, now: datetime) -> str:
    """Enrol this device: the device cookie's value (committed by the caller)."""
    secret = secrets.token_urlsafe(32)
    kiosk.secret_hash = _hash(secret)
    kiosk.enrolled_at = kiosk.last_seen_at = now
    return f"{kiosk.public_id}.{secret}"


def lookup(session: Session, cookie: str) -> Kiosk | None:
    """The active kiosk a device cookie belongs to, or None (unknown, altered, revoked)."""
    public_id, _, secret = cookie.partition(".")
    if not public_id or not secret or len(cookie) > 200:
        return None
    kiosk = session.scalar(select(Kiosk).where(Kiosk.public_id == public_id))
    if kiosk is None or kiosk.state != "active" or kiosk.secret_hash is None:
        return None
    if not hmac.compare_digest(kiosk.secret_hash, _hash(secret)):
        return None
    return kiosk


def idle_seconds(kiosk: Kiosk, now: datetime) -> float:
    """Seconds since the kiosk's last request, give or take SEEN_EVERY."""
    return 0.0 if kiosk.last_seen_at is None else (now - kiosk.last_seen_at).total_seconds()


def note_seen(kiosk: Kiosk, now: datetime) -> bool:
    """Record that the kiosk is in use, at most every SEEN_EVERY: whether it changed
    (committed by the caller)."""
    if kiosk.last_seen_at is not None and now - kiosk.last_seen_at < SEEN_EVERY:
        return False
    kiosk.last_seen_at = now
    return True


def revoke(kiosk: Kiosk, now: datetime) -> None:
    """The device cookie stops working on its next request (committed by the caller)."""
    if kiosk.revoked_at is None:
        kiosk.revoked_at = now
    kiosk.handoff_nonce = None


def all_kiosks(session: Session) -> list[Kiosk]:
    return list(session.scalars(select(Kiosk).order_by(Kiosk.id)))


# --- "Continuar en mi teléfono" ----------------------------------------------------------


@dataclass
class Handoff:
    """What a phone receives from a kiosk: where, who, and the ticket typed so far. `rfc` is
    the RFC, or for an Ecuadorian issuer the identificación, whose SRI tipo is `id_type` (""
    for a Mexican RFC)."""

    kiosk_id: int
    branch_id: int
    rfc: str
    fields: dict[str, str] = field(default_factory=dict)
    tickets: list[int] = field(default_factory=list)  # tickets already added on the kiosk
    id_type: str = ""


def handoff_token(secret_key: str, kiosk: Kiosk, handoff: Handoff) -> str:
    """A new hand-off link's token; it replaces the kiosk's previous one (committed by the
    caller). Only the ticket fields travel, trimmed; no fiscal data beyond the RFC (or the
    identificación and its tipo)."""
    kiosk.handoff_nonce = secrets.token_urlsafe(12)
    fields = {
        name: str(handoff.fields.get(name) or "").strip()[:size]
        for name, size in HANDOFF_FIELDS.items()
    }
    return URLSafeTimedSerializer(secret_key, salt=HANDOFF_SALT).dumps(
        {
            "k": kiosk.id,
            "n": kiosk.handoff_nonce,
            "b": handoff.branch_id,
            "r": handoff.rfc,
            "i": handoff.id_type,
            "f": fields,
            "t": handoff.tickets[:20],
        }
    )


def redeem_handoff(session: Session, secret_key: str, token: str, max_age: int) -> Handoff | None:
    """The hand-off of a valid token, used up; None when altered, expired or used already
    (flushed; committed by the caller)."""
    try:
        data = URLSafeTimedSerializer(secret_key, salt=HANDOFF_SALT).loads(token, max_age=max_age)
    except (BadSignature, SignatureExpired):
        return None
    try:
        kiosk_id, nonce, branch_id, rfc = data["k"], data["n"], data["b"], data["r"]
        fields, tickets = dict(data["f"]), [int(t) for t in data["t"]]
        id_type = str(data.get("i") or "")  # links made before Ecuador carry none
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    used = session.execute(
        update(Kiosk)
        .where(Kiosk.id == kiosk_id, Kiosk.handoff_nonce == nonce, Kiosk.revoked_at.is_(None))
        .values(handoff_nonce=None)
        .execution_options(synchronize_session=False)
    ).rowcount
    if used != 1:  # used already, replaced by a newer one, wiped, or the kiosk was revoked
        return None
    return Handoff(kiosk_id, branch_id, rfc, fields, tickets, id_type)
