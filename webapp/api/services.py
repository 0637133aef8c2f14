"""The provider's data of a services issuer through /api/v1: service types, plans, service
accounts (with their lines), lines, charges and payments, one object or a batch; and a
service account by its number. Thin: validation and storage are webapp.billing.catalog's.

The values follow the issuer's country (catalog.CountryRules): Mexico's SAT (RFC, IVA 16 %,
c_FormaPago) or Ecuador's SRI (cédula or passport, RUC and razón social, IVA 15 %, SRI's
formas de pago); one code path, the rules chosen by `Issuer.country`.

Same API keys, rate limit, Idempotency-Key and error JSON as the tickets (webapp.api.routes).
A key of a retail issuer (kind "retail") is answered 403: these are a service provider's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from flask import Response, g, url_for
from sqlalchemy.orm import Session

from webapp.api import bp
from webapp.api.openapi import MAX_BATCH
from webapp.api.routes import (
    BAD_BATCH,
    UNKNOWN_FIELD,
    api_limit,
    error_dicts,
    errors_response,
    json_response,
    push_once,
)
from webapp.billing import catalog
from webapp.billing.catalog import Outcome
from webapp.extensions import db
from webapp.i18n_marker import N_
from webapp.models import Issuer
from webapp.tickets.validate import FieldError

NOT_SERVICES = N_(
    "Estas operaciones son de los proveedores de servicios; la clave de API es de un emisor "
    "de tickets (comercio)."
)
NOT_ITEM = N_('Envíe un objeto JSON o {"%(key)s": [...]}.')
NO_ACCOUNT = N_("No hay una cuenta de servicio con ese número.")


@dataclass(frozen=True)
class Kind:
    """One collection: the batch's key, how one item is stored and how it is answered."""

    key: str
    put: Callable
    as_json: Callable[[Session, object], dict]
    location: Callable[[object], str] | None = None


KINDS = {
    "service_types": Kind(
        "service_types", catalog.put_service_type, lambda s, r: catalog.service_type_json(r)
    ),
    "plans": Kind("plans", catalog.put_plan, lambda s, r: catalog.plan_json(r)),
    "service_accounts": Kind(
        "service_accounts",
        catalog.put_account,
        lambda s, r: catalog.account_json(r),
        lambda r: url_for("api.get_service_account", number=r.number),
    ),
    "lines": Kind("lines", catalog.put_line, lambda s, r: catalog.line_json(r)),
    "charges": Kind("charges", catalog.put_charge, catalog.charge_json),
    "payments": Kind("payments", catalog.put_payment, catalog.payment_json),
}


def _services_issuer() -> Issuer | Response:
    issuer = db.session.get(Issuer, g.api_key.issuer_id)
    if not catalog.is_services(issuer):
        return errors_response([FieldError("Authorization", NOT_SERVICES)], 403)
    return issuer


def _handle(kind: Kind) -> Response:
    issuer = _services_issuer()
    if isinstance(issuer, Response):
        return issuer
    return push_once(issuer.id, lambda payload: _push(kind, issuer, payload))


def _push(kind: Kind, issuer: Issuer, payload: object) -> Response:
    if isinstance(payload, dict) and kind.key in payload:
        return _push_batch(kind, issuer, payload)
    if not isinstance(payload, dict):
        return errors_response([FieldError("body", NOT_ITEM, {"key": kind.key})], 422)
    result = kind.put(db.session, issuer, payload)
    if result.outcome is Outcome.REJECTED:
        return errors_response(result.errors, 422)
    if result.outcome is Outcome.CONFLICT:
        return errors_response(result.errors, 409)
    body = kind.as_json(db.session, result.row)
    if result.outcome is Outcome.CREATED:
        headers = {"Location": kind.location(result.row)} if kind.location else None
        return json_response(body, 201, headers=headers)
    return json_response(body, 200)


def _push_batch(kind: Kind, issuer: Issuer, payload: dict) -> Response:
    errors = [FieldError(str(name)[:60], UNKNOWN_FIELD) for name in payload if name != kind.key]
    items = payload[kind.key]
    if not isinstance(items, list) or not 1 <= len(items) <= MAX_BATCH:
        errors.append(FieldError(kind.key, BAD_BATCH, {"n": str(MAX_BATCH)}))
    if errors:
        return errors_response(errors, 422)
    counts = {"created": 0, "updated": 0, "unchanged": 0, "rejected": 0}
    results, all_errors = [], []
    for index, item in enumerate(items):
        result = kind.put(db.session, issuer, item, f"{kind.key}[{index}]")
        entry = {"index": index, "outcome": result.outcome.value}
        if result.ok:
            entry["item"] = kind.as_json(db.session, result.row)
            counts[result.outcome.value] += 1
        else:
            entry["errors"] = error_dicts(result.errors)
            all_errors.extend(result.errors)
            counts["rejected"] += 1
        results.append(entry)
    status = 422 if counts["rejected"] == len(items) else 201 if counts["created"] else 200
    body = {**counts, "results": results}
    if all_errors:
        body["errors"] = error_dicts(all_errors)
    return json_response(body, status)


@bp.put("/service-types")
@api_limit
def put_service_types():
    return _handle(KINDS["service_types"])


@bp.put("/plans")
@api_limit
def put_plans():
    return _handle(KINDS["plans"])


@bp.put("/service-accounts")
@api_limit
def put_service_accounts():
    return _handle(KINDS["service_accounts"])


@bp.put("/lines")
@api_limit
def put_lines():
    return _handle(KINDS["lines"])


@bp.post("/charges")
@api_limit
def post_charges():
    return _handle(KINDS["charges"])


@bp.post("/payments")
@api_limit
def post_payments():
    return _handle(KINDS["payments"])


@bp.get("/service-accounts/<path:number>")
@api_limit
def get_service_account(number: str):
    issuer = _services_issuer()
    if isinstance(issuer, Response):
        return issuer
    account = catalog.find_account(db.session, issuer.id, number) if len(number) <= 40 else None
    if account is None:
        return errors_response([FieldError("number", NO_ACCOUNT)], 404)
    return json_response(catalog.account_json(account), 200)
