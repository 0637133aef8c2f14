"""`Idempotency-Key`: the first answer to a key is stored (per issuer) and replayed for the same
request; the same key with another body is refused with 422. Answers are kept for
`API_IDEMPOTENCY_HOURS` (24 by default); after that a key may be used again."""

from __future__ import annotations

import json
import re
from datetime import datetime

from flask import Response
from flask_babel import gettext
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from webapp.i18n_marker import N_
from webapp.models import IdempotentRequest

HEADER = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"
_KEY = re.compile(r"[\x21-\x7e]{1,255}")

BAD_KEY = N_("Clave de idempotencia de 1 a 255 caracteres ASCII visibles (p. ej. un UUID).")
REUSED = N_("Esta clave de idempotencia ya se usó con otra solicitud; use una clave nueva.")


def check_key(key: str) -> str | None:
    """The problem with a key as sent (a msgid), or None."""
    return None if _KEY.fullmatch(key) else BAD_KEY


def forget_before(session: Session, cutoff: datetime) -> None:
    """Drop the answers stored before `cutoff` (their keys may be used again)."""
    session.execute(delete(IdempotentRequest).where(IdempotentRequest.created_at < cutoff))


def find(session: Session, issuer_id: int, key: str) -> IdempotentRequest | None:
    return session.scalar(
        select(IdempotentRequest).where(
            IdempotentRequest.issuer_id == issuer_id, IdempotentRequest.key == key
        )
    )


def replay(stored: IdempotentRequest, method_path: str, body_hash: str) -> Response:
    """The stored answer, or 422 when the key came with another request."""
    if stored.method_path != method_path or stored.body_hash != body_hash:
        body = {"errors": [{"field": HEADER, "message": gettext(REUSED)}]}
        return Response(json.dumps(body, ensure_ascii=False), 422, mimetype="application/json")
    response = Response(stored.response_body, stored.status_code, mimetype="application/json")
    response.headers[REPLAYED] = "true"
    if stored.location:
        response.headers["Location"] = stored.location
    return response


def store(
    session: Session,
    issuer_id: int,
    key: str,
    method_path: str,
    body_hash: str,
    response: Response,
) -> None:
    session.add(
        IdempotentRequest(
            issuer_id=issuer_id,
            key=key,
            method_path=method_path,
            body_hash=body_hash,
            status_code=response.status_code,
            response_body=response.get_data(as_text=True),
            location=response.headers.get("Location"),
        )
    )
    session.flush()
