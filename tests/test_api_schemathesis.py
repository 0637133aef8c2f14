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


def test_schema_is_valid_openapi_3_1(app):
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert {op.label for op in operations} == {
        "POST /api/v1/tickets",
        "GET /api/v1/tickets/{branch}/{ticket_number}",
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


def _fuzz(app, mode: GenerationMode) -> set[int]:
    key = make_api_key(app)
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    checks = CHECKS + ([negative_data_rejection] if mode is GenerationMode.NEGATIVE else [])
    strategy = schema.as_strategy(generation_mode=mode)
    seen: set[int] = set()

    @settings(
        max_examples=EXAMPLES[mode],
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
