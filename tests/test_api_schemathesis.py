"""The API against its own OpenAPI document with schemathesis (through the WSGI app): cases
generated from the schema, valid and invalid, never get a 500, and every answer conforms to the
document (status code, content type, headers, body schema)."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.generation import GenerationMode
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.flows import api_ticket, make_api_key

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
# schemathesis's WSGI client does not undo br/gzip (the app compresses JSON for clients that
# accept it), so these requests ask for the plain body.
PLAIN = {"Accept-Encoding": "identity"}
EXAMPLES = {GenerationMode.POSITIVE: 120, GenerationMode.NEGATIVE: 80}
SERVICE_EXAMPLES = {GenerationMode.POSITIVE: 60, GenerationMode.NEGATIVE: 60}
SERVICE_OPERATIONS = {
    "PUT /api/v1/service-types",
    "PUT /api/v1/plans",
    "PUT /api/v1/service-accounts",
    "PUT /api/v1/lines",
    "POST /api/v1/charges",
    "POST /api/v1/payments",
    "GET /api/v1/service-accounts/{number}",
}


def test_schema_is_valid_openapi_3_1(app):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} == {
        "POST /api/v1/tickets",
        "GET /api/v1/tickets/{branch}/{ticket_number}",
        *SERVICE_OPERATIONS,
    }


def test_known_requests_conform(app, demo):
    """Created, existing, conflict, batch, replay, bad key: each answer matches the document."""
    key = make_api_key(app)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    push = schema["/api/v1/tickets"]["POST"]
    get = schema["/api/v1/tickets/{branch}/{ticket_number}"]["GET"]
    good = {"Authorization": f"Bearer {key}", **PLAIN}
    payload, eight = api_ticket(), api_ticket("8")
    cases = [
        (push.Case(body=payload, headers=good), 201),
        (push.Case(body=payload, headers=good), 200),
        (push.Case(body=api_ticket(order_number="1"), headers=good), 409),
        (
            push.Case(
                body={"tickets": [api_ticket("5"), api_ticket("6", total="1")]}, headers=good
            ),
            201,
        ),
        (push.Case(body={"tickets": [api_ticket("5")]}, headers=good), 200),
        (push.Case(body={"tickets": [api_ticket("7", total="1")]}, headers=good), 422),
        (push.Case(body=eight, headers={**good, "Idempotency-Key": "a"}), 201),
        (push.Case(body=eight, headers={**good, "Idempotency-Key": "a"}), 201),  # replayed
        (push.Case(body=api_ticket("9"), headers={**good, "Idempotency-Key": "a"}), 422),
        (push.Case(body=payload, headers={"Authorization": "Bearer af_live_x", **PLAIN}), 401),
        (get.Case(path_parameters={"branch": "CENTRO", "ticket_number": "8"}, headers=good), 200),
        (get.Case(path_parameters={"branch": "CENTRO", "ticket_number": "1"}, headers=good), 404),
    ]
    for case, status in cases:
        response = case.call_and_validate(checks=CHECKS)
        assert response.status_code == status, (case.body, response.text)


def _fuzz(app, mode: GenerationMode, slug: str = "demo", examples=EXAMPLES) -> set[int]:
    """Generated cases against the operations of the issuer's kind: the tickets with the
    retail demo's key, the provider's data with the demo telecom's."""
    key = make_api_key(app, slug)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    if slug == "demo":
        schema = schema.include(path_regex="^/api/v1/tickets")
    else:
        schema = schema.exclude(path_regex="^/api/v1/tickets")
    checks = CHECKS + ([negative_data_rejection] if mode is GenerationMode.NEGATIVE else [])
    strategy = schema.as_strategy(generation_mode=mode)
    seen: set[int] = set()

    @settings(
        max_examples=examples[mode],
        deadline=None,
        derandomize=True,
        database=None,
        suppress_health_check=list(HealthCheck),
    )
    @given(case=strategy)
    def run(case):
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {key}", **PLAIN}
        seen.add(case.call_and_validate(checks=checks).status_code)

    run()
    return seen


def test_fuzz_valid_requests(app, demo):
    seen = _fuzz(app, GenerationMode.POSITIVE)
    assert {404, 422} <= seen, seen  # the requests reached the validation, not just the door


def test_fuzz_invalid_requests(app, demo):
    seen = _fuzz(app, GenerationMode.NEGATIVE)
    assert seen & {400, 422}, seen


def test_auth_is_not_ignored(app, demo):
    key = make_api_key(app)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    push = schema["/api/v1/tickets"]["POST"]
    case = push.Case(body=api_ticket(), headers={"Authorization": f"Bearer {key}", **PLAIN})
    case.call_and_validate(checks=[*CHECKS, ignored_auth])


# --- A service provider's data ------------------------------------------------------------


def test_known_service_requests_conform(app, telecom, demo):
    """Created, updated, unchanged, conflict, batch, retail key: each answer matches."""
    key, retail = make_api_key(app, telecom["slug"]), make_api_key(app)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    good = {"Authorization": f"Bearer {key}", **PLAIN}
    accounts = schema["/api/v1/service-accounts"]["PUT"]
    one = schema["/api/v1/service-accounts/{number}"]["GET"]
    payments = schema["/api/v1/payments"]["POST"]
    charges = schema["/api/v1/charges"]["POST"]
    plans = schema["/api/v1/plans"]["PUT"]
    account = {
        "number": "900001",
        "holder_name": "INGRID XODAR JIMENEZ",
        "holder_id": "XOJI740919U48",
        "fiscal": {
            "rfc": "XOJI740919U48",
            "name": "INGRID XODAR JIMENEZ",
            "cp": "76028",
            "regimen": "612",
            "uso": "G03",
        },
        "lines": [{"number": "5512345678", "service_type": "MOVIL", "plan": "M-5GB"}],
    }
    payment = {
        "external_id": "P1",
        "account": "900001",
        "amount": "10.00",
        "received_at": "2026-05-03T10:00:00-06:00",
    }
    charge = {
        "external_id": "C1",
        "account": "900001",
        "period": "2026-05",
        "description": "Cargo",
        "unit_price": "10",
    }
    plan = {"code": "M-5GB", "service_type": "MOVIL", "name": "Plan", "monthly_fee": "1"}
    cases = [
        (accounts.Case(body=account, headers=good), 201),
        (accounts.Case(body={"service_accounts": [account]}, headers=good), 200),
        (accounts.Case(body={**account, "billing_day": 40}, headers=good), 422),
        (one.Case(path_parameters={"number": "900001"}, headers=good), 200),
        (one.Case(path_parameters={"number": "nope"}, headers=good), 404),
        (payments.Case(body=payment, headers=good), 201),
        (payments.Case(body={**payment, "amount": "11.00"}, headers=good), 409),
        (
            charges.Case(body={"charges": [charge, {**charge, "external_id": "C2"}]}, headers=good),
            201,
        ),
        (charges.Case(body={**charge, "unit_price": "12"}, headers=good), 200),
        (plans.Case(body={"plans": [plan]}, headers=good), 200),
        (plans.Case(body=plan, headers={**good, "Authorization": f"Bearer {retail}"}), 403),
    ]
    for case, status in cases:
        response = case.call_and_validate(checks=CHECKS)
        assert response.status_code == status, (case.body, response.text)


def test_fuzz_valid_service_requests(app, telecom):
    seen = _fuzz(app, GenerationMode.POSITIVE, telecom["slug"], SERVICE_EXAMPLES)
    assert {404, 422} <= seen, seen


def test_fuzz_invalid_service_requests(app, telecom):
    seen = _fuzz(app, GenerationMode.NEGATIVE, telecom["slug"], SERVICE_EXAMPLES)
    assert seen & {400, 422}, seen
