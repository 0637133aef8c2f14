"""POST /api/v1/tickets (one ticket or a batch), GET /api/v1/tickets/<branch>/<number>, and the
OpenAPI document. Thin: validation and storage are webapp.tickets'."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from flask import Response, current_app, g, request, url_for
from flask_babel import gettext
from sqlalchemy.exc import IntegrityError

from webapp.api import bp, idempotency, keys
from webapp.api.openapi import MAX_BATCH, document
from webapp.extensions import db, limiter
from webapp.i18n_marker import N_
from webapp.tickets.ingest import Outcome, branch_finder, find_ticket, ingest_ticket, ticket_json
from webapp.tickets.validate import FieldError, parse_ticket

PREFIX = "/api/"

# Messages: msgids (es-MX), translated into the request's language when answered.
NO_KEY = N_("Envíe la clave de API en el encabezado Authorization: Bearer <clave>.")
BAD_KEY = N_("La clave de API no es válida o fue revocada.")
BAD_JSON = N_("El cuerpo no es JSON válido: %(error)s.")
NOT_UTF8 = N_("no es UTF-8")
NOT_OBJECT = N_('Envíe un ticket (objeto JSON) o {"tickets": [...]}.')
BAD_BATCH = N_("Envíe una lista de 1 a %(n)s tickets.")
UNKNOWN_FIELD = N_("Campo desconocido.")
NOT_FOUND = N_("No hay un ticket con ese número en esa sucursal.")
SERVER_ERROR = N_("Error del servidor; intente de nuevo.")
GENERIC = {
    400: N_("Solicitud no válida."),
    404: N_("La dirección no existe."),
    405: N_("Esta dirección no acepta ese método."),
    413: N_("El cuerpo excede el tamaño permitido."),
    429: N_("Demasiadas solicitudes; espere un momento."),
}


def json_response(body: dict, status: int, headers: dict | None = None) -> Response:
    text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
    return Response(text, status, headers=headers, mimetype="application/json")


def errors_response(errors: list[FieldError], status: int, **extra) -> Response:
    """`{"errors": [...]}` with the messages in the request's language (Spanish by default)."""
    return json_response({"errors": error_dicts(errors), **extra}, status)


def _unauthorized(message: str, invalid: bool) -> Response:
    challenge = 'Bearer realm="api"' + (', error="invalid_token"' if invalid else "")
    response = errors_response([FieldError("Authorization", message)], 401)
    response.headers["WWW-Authenticate"] = challenge
    return response


def _authenticate() -> Response | None:
    """Sets g.api_key, or answers 401."""
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _unauthorized(NO_KEY, invalid=False)
    key = keys.authenticate(db.session, token.strip())
    if key is None:
        return _unauthorized(BAD_KEY, invalid=True)
    db.session.commit()  # the key's last use
    g.api_key = key
    return None


@bp.before_request
def _require_key():
    if request.endpoint == "api.openapi":
        return None
    return _authenticate()


@bp.after_app_request
def _json_errors(response: Response) -> Response:
    """Errors under /api/ are JSON even when raised outside these views (404, 405, 413...)."""
    if (
        request.path.startswith(PREFIX)
        and response.status_code >= 400
        and response.mimetype != "application/json"
    ):
        code = response.status_code
        message = GENERIC.get(code, SERVER_ERROR if code >= 500 else "")
        replacement = errors_response([FieldError("", message or response.status)], code)
        for name in ("Allow", "Retry-After", "WWW-Authenticate"):
            if name in response.headers:
                replacement.headers[name] = response.headers[name]
        return replacement
    return response


@bp.get("/openapi.json")
def openapi():
    return json_response(document(), 200)


def _parse_body(raw: bytes) -> tuple[object, str] | Response:
    """(payload, hash of its canonical form), or a 400."""
    try:
        payload = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        error = FieldError("body", BAD_JSON, {"error": gettext(NOT_UTF8)})
        return errors_response([error], 400)
    except (ValueError, RecursionError) as exc:
        return errors_response([FieldError("body", BAD_JSON, {"error": str(exc)})], 400)
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return payload, hashlib.sha256(canonical.encode()).hexdigest()


def _key_of_request() -> str:
    """Rate limits count per API key (a digest of the Authorization header)."""
    digest = hashlib.sha256(request.headers.get("Authorization", "").encode()).hexdigest()
    return "api:" + digest[:24]


api_limit = limiter.shared_limit(
    lambda: current_app.config["RATELIMIT_API"], scope="api", key_func=_key_of_request
)


@bp.post("/tickets")
@api_limit
def push_tickets():
    issuer_id = g.api_key.issuer_id
    return push_once(issuer_id, lambda payload: _push(issuer_id, payload))


def push_once(issuer_id: int, push: Callable[[object], Response]) -> Response:
    """Parse the JSON body and answer `push(payload)`, with the Idempotency-Key rules of
    every write of the API: a key seen before replays its first answer (or is a 422 with
    another body); two requests with one key at the same moment get the same answer."""
    key = request.headers.get(idempotency.HEADER)
    if key is not None and (problem := idempotency.check_key(key)):
        return errors_response([FieldError(idempotency.HEADER, problem)], 400)
    raw = request.get_data(cache=False)
    parsed = _parse_body(raw)
    if isinstance(parsed, Response):
        payload, body_hash = None, hashlib.sha256(raw).hexdigest()
    else:
        payload, body_hash = parsed
    method_path = f"{request.method} {request.path}"
    if key is not None:
        hours = current_app.config["API_IDEMPOTENCY_HOURS"]
        idempotency.forget_before(db.session, datetime.now(UTC) - timedelta(hours=hours))
        stored = idempotency.find(db.session, issuer_id, key)
        if stored is not None:
            return idempotency.replay(stored, method_path, body_hash)

    response = parsed if isinstance(parsed, Response) else push(payload)
    if key is None:
        db.session.commit()
        return response
    try:
        idempotency.store(db.session, issuer_id, key, method_path, body_hash, response)
        db.session.commit()
    except IntegrityError:  # the same key, sent at the same moment: the first one won
        db.session.rollback()
        stored = idempotency.find(db.session, issuer_id, key)
        if stored is None:  # pragma: no cover (the constraint that failed names it)
            raise
        return idempotency.replay(stored, method_path, body_hash)
    return response


def _push(issuer_id: int, payload: object) -> Response:
    now = datetime.now(UTC)
    find = branch_finder(db.session, issuer_id)
    if isinstance(payload, dict) and "tickets" in payload:
        return _push_batch(payload, find, now)
    if not isinstance(payload, dict):
        return errors_response([FieldError("body", NOT_OBJECT)], 422)
    parsed = parse_ticket(payload, find, now=now)
    if parsed.ticket is None:
        return errors_response(parsed.errors, 422)
    result = ingest_ticket(db.session, parsed.ticket)
    if result.outcome is Outcome.CONFLICT:
        return errors_response(result.errors, 409)
    body = ticket_json(result.ticket)
    if result.outcome is Outcome.EXISTING:
        return json_response(body, 200)
    location = url_for(
        "api.get_ticket",
        branch=result.ticket.branch.code,
        ticket_number=result.ticket.ticket_number,
    )
    return json_response(body, 201, headers={"Location": location})


def _push_batch(payload: dict, find, now: datetime) -> Response:
    errors = [FieldError(str(name), UNKNOWN_FIELD) for name in payload if name != "tickets"]
    items = payload["tickets"]
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        errors.append(FieldError("tickets", BAD_BATCH, {"n": str(MAX_BATCH)}))
    if errors:
        return errors_response(errors, 422)
    results, all_errors = [], []
    counts = {"created": 0, "existing": 0, "rejected": 0}
    for index, item in enumerate(items):
        prefix = f"tickets[{index}]"
        parsed = parse_ticket(item, find, now=now, prefix=prefix)
        if parsed.ticket is None:
            results.append(
                {"index": index, "outcome": "rejected", "errors": error_dicts(parsed.errors)}
            )
            all_errors.extend(parsed.errors)
            counts["rejected"] += 1
            continue
        result = ingest_ticket(db.session, parsed.ticket, prefix=prefix)
        entry = {"index": index, "outcome": result.outcome.value}
        if result.outcome is Outcome.CONFLICT:
            entry["errors"] = error_dicts(result.errors)
            all_errors.extend(result.errors)
            counts["rejected"] += 1
        else:
            entry["ticket"] = ticket_json(result.ticket)
            counts[result.outcome.value] += 1
        results.append(entry)
    status = 201 if counts["created"] else 200 if not counts["rejected"] else 422
    body = {**counts, "results": results}
    if all_errors:
        body["errors"] = error_dicts(all_errors)
    return json_response(body, status)


def error_dicts(errors: list[FieldError]) -> list[dict]:
    return [e.as_dict(translate=gettext) for e in errors]


@bp.get("/tickets/<branch>/<ticket_number>")
@api_limit
def get_ticket(branch: str, ticket_number: str):
    found = branch_finder(db.session, g.api_key.issuer_id)(branch)
    ticket = find_ticket(db.session, found.id, ticket_number) if found is not None else None
    if ticket is None:
        return errors_response([FieldError("", NOT_FOUND)], 404)
    return json_response(ticket_json(ticket), 200)
