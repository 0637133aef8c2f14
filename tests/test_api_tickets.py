"""The point of sale's API: pushing tickets with an API key, one or a batch, duplicates,
per-field errors, Idempotency-Key replays, and the issuer's walls."""

from __future__ import annotations

import copy
import json
import threading
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from tests.flows import api_ticket as ticket
from tests.flows import make_api_key
from webapp.extensions import db
from webapp.models import ApiKey, Branch, IdempotentRequest, Ticket, TicketStatus

URL = "/api/v1/tickets"


@pytest.fixture
def api_key(app, staff):
    return make_api_key(app)


def auth(key: str, **headers) -> dict:
    return {"Authorization": f"Bearer {key}", **headers}


def fields(response) -> dict[str, str]:
    return {e["field"]: e["message"] for e in response.get_json()["errors"]}


def count_tickets(app, number: str) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).where(Ticket.ticket_number == number))


# --- Authentication ---------------------------------------------------------------------


def test_no_key_is_401_with_challenge(client, api_key):
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer "}):
        response = client.post(URL, json=ticket(), headers=headers)
        assert response.status_code == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert response.is_json and response.get_json()["errors"][0]["field"] == "Authorization"


def test_wrong_key_is_401(client, api_key):
    response = client.post(URL, json=ticket(), headers=auth(api_key[:-2] + "xx"))
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]
    assert count_tickets(client.application, "90000001") == 0


def test_revoked_key_is_401(app, client, api_key):
    with app.app_context():
        row = db.session.scalar(select(ApiKey))
        row.revoked_at = datetime.now(UTC)
        db.session.commit()
    assert client.post(URL, json=ticket(), headers=auth(api_key)).status_code == 401


def test_use_updates_last_used(app, client, api_key):
    client.get(f"{URL}/CENTRO/1", headers=auth(api_key))
    with app.app_context():
        assert db.session.scalar(select(ApiKey)).last_used_at is not None


def test_no_cookie_or_csrf_needed(make_app, staff):
    app = make_app(WTF_CSRF_ENABLED=True)
    key = make_api_key(app)
    response = app.test_client().post(URL, json=ticket(), headers=auth(key))
    assert response.status_code == 201
    assert "Set-Cookie" not in response.headers


# --- Single tickets -----------------------------------------------------------------------


def test_push_one_ticket(app, client, api_key):
    response = client.post(URL, json=ticket(), headers=auth(api_key))
    assert response.status_code == 201, response.get_data(as_text=True)
    body = response.get_json()
    assert body["branch"] == "CENTRO" and body["ticket_number"] == "90000001"
    assert body["total"] == "108.01" and body["status"] == "open"
    assert [line["quantity"] for line in body["lines"]] == ["2", "2", "1"]
    assert body["lines"][2]["tax_factor"] == "Exento" and body["lines"][2]["tax_rate"] is None
    assert response.headers["Location"].endswith("/api/v1/tickets/CENTRO/90000001")
    with app.app_context():
        stored = db.session.scalar(select(Ticket).where(Ticket.ticket_number == "90000001"))
        assert stored.branch.code == "CENTRO" and len(stored.lines) == 3
        assert stored.status is TicketStatus.OPEN

    fetched = client.get(response.headers["Location"], headers=auth(api_key))
    assert fetched.status_code == 200
    assert fetched.get_json()["order_number"] == "500001"


def test_pushed_ticket_can_be_found_by_a_customer(app, client, api_key):
    """The invoicing flow's look-up finds the ticket with the total it was pushed with."""
    from decimal import Decimal

    from webapp.issuing.lookup import check_ticket

    client.post(URL, json=ticket(), headers=auth(api_key))
    with app.app_context():
        branch = db.session.scalar(select(Branch).where(Branch.code == "CENTRO"))
        check = check_ticket(
            db.session,
            branch,
            ticket_number="90000001",
            order_number="500001",
            total=Decimal("108.01"),
            now=datetime.now(UTC),
            already_added=frozenset(),
        )
        assert not check.problems


def test_same_ticket_twice_is_200_and_one_row(app, client, api_key):
    payload = ticket()  # once: two calls a second apart would differ in sold_at
    assert client.post(URL, json=payload, headers=auth(api_key)).status_code == 201
    again = client.post(URL, json=payload, headers=auth(api_key))
    assert again.status_code == 200
    assert again.get_json()["ticket_number"] == "90000001"
    assert count_tickets(app, "90000001") == 1


def test_same_number_other_content_is_409(app, client, api_key):
    client.post(URL, json=ticket(), headers=auth(api_key))
    other = ticket(order_number="500002")
    response = client.post(URL, json=other, headers=auth(api_key))
    assert response.status_code == 409
    assert "ticket_number" in fields(response)
    with app.app_context():
        stored = db.session.scalar(select(Ticket).where(Ticket.ticket_number == "90000001"))
        assert stored.order_number == "500001"


def test_same_number_in_another_branch_is_another_ticket(app, client, api_key):
    assert client.post(URL, json=ticket(), headers=auth(api_key)).status_code == 201
    response = client.post(URL, json=ticket(branch="POLANCO"), headers=auth(api_key))
    assert response.status_code == 201
    assert count_tickets(app, "90000001") == 2


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda t: t.update(total="108.00"), "total"),
        (lambda t: t.update(total=108.01), "total"),
        (lambda t: t.update(branch="NOEXISTE"), "branch"),
        (lambda t: t.update(ticket_number="A-12"), "ticket_number"),
        (lambda t: t.pop("order_number"), "order_number"),
        (lambda t: t.update(sold_at="2026-05-01T13:45:00"), "sold_at"),
        (lambda t: t.update(sold_at="ayer"), "sold_at"),
        (lambda t: t.update(sold_at="2999-01-01T00:00:00+00:00"), "sold_at"),
        (lambda t: t.update(currency="USD"), "currency"),
        (lambda t: t.update(forma_pago="99"), "forma_pago"),
        (lambda t: t.update(forma_pago="07"), "forma_pago"),
        (lambda t: t.update(forma_pago=""), "forma_pago"),
        (lambda t: t.update(forma_pago=4), "forma_pago"),
        (lambda t: t.update(lines=[]), "lines"),
        (lambda t: t.update(color="rojo"), "color"),
        (lambda t: t["lines"][0].update(clave_prod_serv="99999999"), "lines[0].clave_prod_serv"),
        (lambda t: t["lines"][0].update(clave_prod_serv="5020"), "lines[0].clave_prod_serv"),
        (lambda t: t["lines"][1].update(clave_unidad="ZZZ"), "lines[1].clave_unidad"),
        (lambda t: t["lines"][0].update(quantity="0"), "lines[0].quantity"),
        (lambda t: t["lines"][0].update(quantity="1.1234567"), "lines[0].quantity"),
        (lambda t: t["lines"][0].update(unit_price="-1"), "lines[0].unit_price"),
        (lambda t: t["lines"][0].update(objeto_imp="03"), "lines[0].objeto_imp"),
        (lambda t: t["lines"][0].update(tax_factor="Cuota"), "lines[0].tax_factor"),
        (lambda t: t["lines"][0].update(tax_rate="0.150000"), "lines[0].tax_rate"),
        (lambda t: t["lines"][2].update(tax_rate="0.160000"), "lines[2].tax_rate"),
        (lambda t: t["lines"][2].update(description="A|B"), "lines[2].description"),
        (lambda t: t["lines"][2].pop("description"), "lines[2].description"),
    ],
)
def test_bad_field_is_422_naming_it(app, client, api_key, change, field):
    payload = ticket()
    change(payload)
    response = client.post(URL, json=payload, headers=auth(api_key))
    assert response.status_code == 422, response.get_data(as_text=True)
    assert field in fields(response), fields(response)
    assert all(isinstance(m, str) and m for m in fields(response).values())
    assert count_tickets(app, "90000001") == 0


def test_forma_pago_is_stored_and_answered(app, client, api_key):
    response = client.post(URL, json=ticket(forma_pago="28"), headers=auth(api_key))
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["forma_pago"] == "28"
    fetched = client.get(response.headers["Location"], headers=auth(api_key)).get_json()
    assert fetched["forma_pago"] == "28"
    without = client.post(URL, json=ticket("90000002"), headers=auth(api_key))
    assert without.status_code == 201 and without.get_json()["forma_pago"] is None
    with app.app_context():
        numbers = ("90000001", "90000002")
        query = select(Ticket.ticket_number, Ticket.forma_pago)
        stored = dict(db.session.execute(query.where(Ticket.ticket_number.in_(numbers))).all())
    assert stored == {"90000001": "28", "90000002": None}


def test_forma_pago_error_names_the_field_of_the_batch_item(client, api_key):
    body = {"tickets": [ticket("90000001"), ticket("90000002", forma_pago="99")]}
    response = client.post(URL, json=body, headers=auth(api_key))
    assert response.status_code == 201
    results = response.get_json()["results"]
    assert [r["outcome"] for r in results] == ["created", "rejected"]
    assert [e["field"] for e in results[1]["errors"]] == ["tickets[1].forma_pago"]
    assert "c_FormaPago" in results[1]["errors"][0]["message"]


def test_the_same_ticket_with_another_forma_pago_is_a_conflict(app, client, api_key):
    payload = ticket(forma_pago="04")
    assert client.post(URL, json=payload, headers=auth(api_key)).status_code == 201
    assert client.post(URL, json=payload, headers=auth(api_key)).status_code == 200
    other = {**payload, "forma_pago": "01"}
    assert client.post(URL, json=other, headers=auth(api_key)).status_code == 409
    without = {k: v for k, v in payload.items() if k != "forma_pago"}
    assert client.post(URL, json=without, headers=auth(api_key)).status_code == 409
    with app.app_context():
        query = select(Ticket.forma_pago).where(Ticket.ticket_number == "90000001")
        assert db.session.scalar(query) == "04"


def test_total_message_says_the_computed_total(client, api_key):
    response = client.post(URL, json=ticket(total="100.00"), headers=auth(api_key))
    assert "108.01" in fields(response)["total"]


def test_field_errors_speak_the_language_chosen_in_the_portal(client, api_key):
    response = client.post(URL, json=ticket(total="100.00"), headers=auth(api_key))
    assert fields(response)["total"] == "El total no coincide con el de las partidas: 108.01."
    client.post("/idioma", data={"lang": "en", "next": "/"})  # the portal's language cookie
    response = client.post(URL, json=ticket(total="100.00"), headers=auth(api_key))
    assert response.status_code == 422
    assert fields(response)["total"] == "The total does not match the lines' total: 108.01."
    response = client.post(URL, data="{", headers=auth(api_key), content_type="application/json")
    assert fields(response)["body"].startswith("The body is not valid JSON:")


def test_objeto_01_line_without_tax(client, api_key):
    payload = ticket(total="10.00")
    payload["lines"] = [
        {
            "description": "SERVICIO",
            "clave_prod_serv": "01010101",
            "clave_unidad": "E48",
            "quantity": "1",
            "unit_price": "10",
            "objeto_imp": "01",
        }
    ]
    response = client.post(URL, json=payload, headers=auth(api_key))
    assert response.status_code == 201, response.get_data(as_text=True)
    assert response.get_json()["lines"][0]["tax_factor"] is None


def test_inactive_branch_is_a_field_error(app, client, api_key):
    with app.app_context():
        branch = db.session.scalar(select(Branch).where(Branch.code == "CENTRO"))
        branch.active = False
        db.session.commit()
    response = client.post(URL, json=ticket(), headers=auth(api_key))
    assert response.status_code == 422
    assert "desactivada" in fields(response)["branch"]


def test_other_issuers_branch_is_unknown(app, client, api_key, staff):
    response = client.post(URL, json=ticket(branch="NORTE"), headers=auth(api_key))
    assert response.status_code == 422
    assert "NORTE" in fields(response)["branch"]
    assert count_tickets(app, "90000001") == 0


def test_other_issuers_key_cannot_read_demo_tickets(app, client, api_key, staff):
    client.post(URL, json=ticket(), headers=auth(api_key))
    other = make_api_key(app, "otro")
    assert client.get(f"{URL}/CENTRO/90000001", headers=auth(other)).status_code == 404
    # the other issuer's own NORTE branch has no such ticket either
    assert client.get(f"{URL}/NORTE/90000001", headers=auth(other)).status_code == 404


def test_get_ticket_status(app, client, api_key, demo):
    with app.app_context():
        known = db.session.get(Ticket, demo["fresh"][0]["id"])
        known.status = TicketStatus.INVOICED
        db.session.commit()
    response = client.get(f"{URL}/CENTRO/{demo['fresh'][0]['number']}", headers=auth(api_key))
    assert response.status_code == 200
    assert response.get_json()["status"] == "invoiced"
    missing = client.get(f"{URL}/CENTRO/123", headers=auth(api_key))
    assert missing.status_code == 404 and missing.is_json


# --- Malformed requests: JSON answers, never HTML or 500 -----------------------------------


@pytest.mark.parametrize(
    "body",
    [b"{", b"", b"\xff\xfe", b"[1,2", b'{"tickets": [}', b"[" * 5000 + b"]" * 5000],
)
def test_malformed_json_is_400_json(client, api_key, body):
    response = client.post(URL, data=body, headers=auth(api_key), content_type="application/json")
    assert response.status_code == 400
    assert response.is_json and response.get_json()["errors"][0]["field"] == "body"


@pytest.mark.parametrize("body", ["[]", "3", "null", '"x"', '{"tickets": 3}', '{"tickets": []}'])
def test_wrong_shapes_are_422(client, api_key, body):
    response = client.post(URL, data=body, headers=auth(api_key), content_type="application/json")
    assert response.status_code == 422
    assert response.is_json


def test_unknown_url_and_method_are_json(client, api_key):
    response = client.get("/api/v1/nada", headers=auth(api_key))
    assert response.status_code == 404 and response.is_json
    response = client.delete(URL, headers=auth(api_key))
    assert response.status_code == 405 and response.is_json and "POST" in response.headers["Allow"]


def test_too_large_is_413_json(make_app, staff):
    app = make_app(MAX_CONTENT_LENGTH=1000)
    key = make_api_key(app)
    response = app.test_client().post(
        URL, data="x" * 5000, headers=auth(key), content_type="application/json"
    )
    assert response.status_code == 413 and response.is_json


# --- Batches --------------------------------------------------------------------------------


def test_batch_reports_each_item(app, client, api_key):
    good = [ticket(str(90000010 + i)) for i in range(3)]
    bad = ticket("90000099")
    bad["lines"][0]["clave_prod_serv"] = "99999999"
    half_bad = ticket("90000098")
    half_bad["lines"][2]["quantity"] = "x"
    response = client.post(
        URL, json={"tickets": [good[0], bad, good[1], half_bad, good[2]]}, headers=auth(api_key)
    )
    assert response.status_code == 201
    body = response.get_json()
    assert (body["created"], body["existing"], body["rejected"]) == (3, 0, 2)
    assert [r["outcome"] for r in body["results"]] == [
        "created",
        "rejected",
        "created",
        "rejected",
        "created",
    ]
    assert body["results"][1]["errors"][0]["field"] == "tickets[1].lines[0].clave_prod_serv"
    assert body["results"][3]["errors"][0]["field"] == "tickets[3].lines[2].quantity"
    # nothing half-inserted: the rejected tickets and their lines are not there at all
    assert count_tickets(app, "90000099") == 0 and count_tickets(app, "90000098") == 0
    assert count_tickets(app, "90000010") == 1


def test_batch_again_is_all_existing_and_conflicts_reported(app, client, api_key):
    batch = {"tickets": [ticket("90000001"), ticket("90000002")]}
    assert client.post(URL, json=batch, headers=auth(api_key)).status_code == 201
    again = client.post(URL, json=batch, headers=auth(api_key))
    assert again.status_code == 200
    assert again.get_json()["existing"] == 2
    changed = copy.deepcopy(batch)
    changed["tickets"][1]["order_number"] = "999"
    response = client.post(URL, json=changed, headers=auth(api_key))
    assert response.status_code == 422
    body = response.get_json()
    assert [r["outcome"] for r in body["results"]] == ["existing", "conflict"]
    assert body["errors"][0]["field"] == "tickets[1].ticket_number"


def test_duplicate_inside_one_batch_stores_one(app, client, api_key):
    response = client.post(URL, json={"tickets": [ticket(), ticket()]}, headers=auth(api_key))
    assert [r["outcome"] for r in response.get_json()["results"]] == ["created", "existing"]
    assert count_tickets(app, "90000001") == 1


def test_batch_cap(client, api_key):
    response = client.post(URL, json={"tickets": [ticket()] * 501}, headers=auth(api_key))
    assert response.status_code == 422
    assert "tickets" in fields(response)


# --- Idempotency-Key ---------------------------------------------------------------------


def test_idempotency_replays_the_first_answer(app, client, api_key):
    headers = auth(api_key, **{"Idempotency-Key": "k-1"})
    payload = ticket()
    first = client.post(URL, json=payload, headers=headers)
    assert first.status_code == 201 and "Idempotent-Replayed" not in first.headers
    # the same body, even with keys in another order, replays the 201
    body = json.dumps(dict(reversed(list(payload.items()))), indent=2)
    again = client.post(URL, data=body, headers=headers, content_type="application/json")
    assert again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json()
    assert count_tickets(app, "90000001") == 1


def test_idempotency_replays_a_ticket_with_forma_pago(app, client, api_key):
    headers = auth(api_key, **{"Idempotency-Key": "k-forma"})
    payload = ticket(forma_pago="03")
    first = client.post(URL, json=payload, headers=headers)
    again = client.post(URL, json=payload, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.get_json() == first.get_json() and first.get_json()["forma_pago"] == "03"
    other = client.post(URL, json={**payload, "forma_pago": "04"}, headers=headers)
    assert other.status_code == 422 and "Idempotency-Key" in fields(other)
    assert count_tickets(app, "90000001") == 1


def test_idempotency_replays_errors_too(client, api_key):
    headers = auth(api_key, **{"Idempotency-Key": "k-2"})
    payload = ticket(total="1.00")
    first = client.post(URL, json=payload, headers=headers)
    again = client.post(URL, json=payload, headers=headers)
    assert first.status_code == again.status_code == 422
    assert again.headers["Idempotent-Replayed"] == "true"


def test_idempotency_key_with_another_body_is_422(app, client, api_key):
    headers = auth(api_key, **{"Idempotency-Key": "k-3"})
    assert client.post(URL, json=ticket("90000001"), headers=headers).status_code == 201
    response = client.post(URL, json=ticket("90000002"), headers=headers)
    assert response.status_code == 422
    assert "Idempotency-Key" in fields(response)
    assert count_tickets(app, "90000002") == 0


def test_idempotency_keys_are_per_issuer(app, client, api_key, staff):
    other = make_api_key(app, "otro")
    with app.app_context():
        db.session.add(
            Branch(issuer_id=staff["other_issuer_id"], code="CENTRO", name="C", cp="42501")
        )
        db.session.commit()
    payload = ticket()
    first = client.post(URL, json=payload, headers=auth(api_key, **{"Idempotency-Key": "k"}))
    second = client.post(URL, json=payload, headers=auth(other, **{"Idempotency-Key": "k"}))
    assert first.status_code == second.status_code == 201
    assert "Idempotent-Replayed" not in second.headers
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(IdempotentRequest)) == 2


def test_bad_idempotency_key_is_400(client, api_key):
    response = client.post(
        URL, json=ticket(), headers=auth(api_key, **{"Idempotency-Key": "con espacio"})
    )
    assert response.status_code == 400
    assert "Idempotency-Key" in fields(response)


def test_concurrent_pushes_store_one_ticket(app, api_key):
    """Several clients push the same ticket at once (with and without the same key): one row."""
    results = []

    def push(headers):
        response = app.test_client().post(URL, json=payload, headers=headers)
        results.append((response.status_code, response.headers.get("Idempotent-Replayed")))

    payload = ticket()
    threads = [
        threading.Thread(
            target=push, args=(auth(api_key, **({"Idempotency-Key": "same"} if i % 2 else {})),)
        )
        for i in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert count_tickets(app, "90000001") == 1
    assert sorted(code for code, _ in results).count(201) >= 1
    assert all(code in (200, 201) for code, _ in results), results


def test_openapi_document_is_public_json(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    doc = response.get_json()
    assert doc["openapi"].startswith("3.1")
    assert doc["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert "/api/v1/tickets" in doc["paths"]


def test_a_replayed_201_keeps_its_location(client, api_key):
    headers = auth(api_key, **{"Idempotency-Key": "k-location"})
    payload = ticket()
    first = client.post(URL, json=payload, headers=headers)
    again = client.post(URL, json=payload, headers=headers)
    assert first.status_code == again.status_code == 201
    assert again.headers["Location"] == first.headers["Location"]
    assert client.get(again.headers["Location"], headers=auth(api_key)).status_code == 200


def test_an_idempotency_key_is_forgotten_after_its_hours(app, client, api_key):
    headers = auth(api_key, **{"Idempotency-Key": "k-old"})
    assert client.post(URL, json=ticket("90000001"), headers=headers).status_code == 201
    with app.app_context():  # a day and a bit later
        stored = db.session.scalar(select(IdempotentRequest))
        stored.created_at = datetime.now(UTC) - timedelta(hours=25)
        db.session.commit()
    again = client.post(URL, json=ticket("90000002"), headers=headers)
    assert again.status_code == 201 and "Idempotent-Replayed" not in again.headers
    assert count_tickets(app, "90000002") == 1


def test_each_key_is_rate_limited_in_json(make_app, staff):
    app = make_app(RATELIMIT_ENABLED=True, RATELIMIT_API="2/minute")
    key, client = make_api_key(app), app.test_client()
    statuses = [client.get(URL + "/CENTRO/1", headers=auth(key)).status_code for _ in range(3)]
    assert statuses == [404, 404, 429]
    limited = client.post(URL, json=ticket(), headers=auth(key))
    assert limited.status_code == 429 and limited.is_json
    assert count_tickets(app, "90000001") == 0
