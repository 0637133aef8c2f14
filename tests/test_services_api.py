"""The provider's data through the API: service types, plans, accounts with their lines,
lines, charges and payments; upserts by natural key, billed charges and payments that do not
change, hostile input answered with field errors, and retail keys kept out."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from tests.flows import make_api_key
from webapp.demo.services import BILLING_BRANCH, mobile_number
from webapp.extensions import db
from webapp.models import (
    Branch,
    Charge,
    IdempotentRequest,
    Issuer,
    Payment,
    ServiceAccount,
    ServiceBill,
    ServiceLine,
    Ticket,
)

API = "/api/v1"


@pytest.fixture
def key(app, telecom):
    return make_api_key(app, telecom["slug"])


def auth(key: str, **headers) -> dict:
    return {"Authorization": f"Bearer {key}", **headers}


def fields(response) -> dict[str, str]:
    return {e["field"]: e["message"] for e in response.get_json()["errors"]}


def account(number="900001", **overrides) -> dict:
    body = {
        "number": number,
        "holder_name": "Karla Fuente Nolasco",
        "holder_id": "FUNK671228PH6",
        "fiscal": {
            "rfc": "FUNK671228PH6",
            "name": "KARLA FUENTE NOLASCO",
            "cp": "01160",
            "regimen": "612",
            "uso": "G03",
        },
        "email": "karla@example.com",
        "contact_mobile": "55 1234 5678",
        "billing_day": 15,
        "lines": [
            {"number": "(55) 1234-5678", "service_type": "MOVIL", "plan": "M-5GB"},
            {"number": "C90000001", "service_type": "HOGAR", "plan": "H-50"},
        ],
    }
    body.update(overrides)
    return body


def charge(external_id="CH-1", **overrides) -> dict:
    body = {
        "external_id": external_id,
        "account": "100001",
        "line": mobile_number(1),
        "period": "2026-05",
        "description": "Datos adicionales 2 GB",
        "quantity": "1",
        "unit_price": "86.21",
    }
    body.update(overrides)
    return body


def payment(external_id="PAY-1", **overrides) -> dict:
    body = {
        "external_id": external_id,
        "account": "100001",
        "amount": "200.00",
        "received_at": "2026-05-03T10:00:00-06:00",
        "forma_pago": "03",
        "reference": "SPEI 123",
    }
    body.update(overrides)
    return body


# --- Catalogue --------------------------------------------------------------------------------


def test_service_types_and_plans_upsert_by_code(client, key):
    body = {"code": "INTERNET", "name": "Internet móvil", "line_kind": "phone"}
    first = client.put(f"{API}/service-types", json=body, headers=auth(key))
    assert first.status_code == 201, first.get_json()
    assert client.put(f"{API}/service-types", json=body, headers=auth(key)).status_code == 200
    renamed = client.put(
        f"{API}/service-types", json={**body, "name": "Internet"}, headers=auth(key)
    )
    assert renamed.status_code == 200 and renamed.get_json()["name"] == "Internet"

    plan = {
        "code": "I-10",
        "service_type": "INTERNET",
        "name": "Internet 10 GB",
        "monthly_fee": "99.5",
        "tax_rate": None,
    }
    created = client.put(f"{API}/plans", json=plan, headers=auth(key))
    assert created.status_code == 201
    assert created.get_json() | {} == {
        **plan,
        "tax_rate": None,
        "clave_prod_serv": "81161700",
        "clave_unidad": "E48",
        "active": True,
    }
    batch = client.put(
        f"{API}/plans",
        json={"plans": [plan, {**plan, "code": "I-20", "monthly_fee": "1e3"}]},
        headers=auth(key),
    )
    assert batch.status_code == 200
    data = batch.get_json()
    assert (data["unchanged"], data["rejected"]) == (1, 1)
    assert fields(batch) == {"plans[1].monthly_fee": data["errors"][0]["message"]}


def test_a_type_with_lines_keeps_its_line_kind(client, key):
    response = client.put(
        f"{API}/service-types",
        json={"code": "MOVIL", "name": "Móvil", "line_kind": "contract"},
        headers=auth(key),
    )
    assert response.status_code == 422
    assert "ya tiene líneas" in fields(response)["line_kind"]


# --- Accounts and lines -----------------------------------------------------------------------


def test_account_with_lines_is_created_and_read_back(app, client, key):
    response = client.put(f"{API}/service-accounts", json=account(), headers=auth(key))
    assert response.status_code == 201, response.get_json()
    assert response.headers["Location"].endswith("/api/v1/service-accounts/900001")
    body = client.get(f"{API}/service-accounts/900001", headers=auth(key)).get_json()
    assert body["holder_name"] == "KARLA FUENTE NOLASCO"
    assert body["contact_mobile"] == "+525512345678"
    assert body["fiscal"]["cp"] == "01160"
    assert [(x["number"], x["plan"]) for x in body["lines"]] == [
        ("+525512345678", "M-5GB"),
        ("C90000001", "H-50"),
    ]
    # Again: unchanged; without fiscal data: updated, and the lines stay.
    again = client.put(f"{API}/service-accounts", json=account(), headers=auth(key))
    assert again.status_code == 200
    plain = account(fiscal=None, lines=None)
    del plain["lines"]
    updated = client.put(f"{API}/service-accounts", json=plain, headers=auth(key))
    assert updated.status_code == 200
    assert updated.get_json()["fiscal"] is None and len(updated.get_json()["lines"]) == 2
    assert client.get(f"{API}/service-accounts/nope", headers=auth(key)).status_code == 404


def test_account_errors_name_their_fields(app, client, key):
    bad = account(
        number="9 9",
        holder_id="ABC",
        fiscal={"rfc": "FUNK671228PH6", "name": "KARLA", "cp": "99999"},
        email="not-an-email",
        contact_mobile="12",
        billing_day=31,
        status="gone",
        lines=[
            {"number": "5512345678", "service_type": "MOVIL", "plan": "NOPE"},
            {"number": "55 1234 5678", "service_type": "MOVIL", "plan": "H-50"},
            {"number": "123", "service_type": "RADIO"},
        ],
        extra="x",
    )
    response = client.put(f"{API}/service-accounts", json=bad, headers=auth(key))
    assert response.status_code == 422
    errors = fields(response)
    assert set(errors) >= {
        "number",
        "holder_id",
        "fiscal.regimen",
        "fiscal.uso",
        "email",
        "contact_mobile",
        "billing_day",
        "status",
        "lines[0].plan",
        "lines[1].plan",
        "lines[2].service_type",
        "extra",
    }, errors
    assert "completos" in errors["fiscal.regimen"]
    assert "NOPE" in errors["lines[0].plan"]
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ServiceAccount)) == 12


def test_fiscal_data_is_checked_against_the_sat_catalogs(client, key):
    fiscal = {"rfc": "FUNK671228PH7", "name": "KARLA", "cp": "00000", "regimen": "601"}
    response = client.put(
        f"{API}/service-accounts",
        json=account(fiscal={**fiscal, "uso": "ZZZ"}),
        headers=auth(key),
    )
    assert response.status_code == 422
    assert set(fields(response)) >= {"fiscal.rfc", "fiscal.cp", "fiscal.uso"}


def test_a_line_moves_to_another_account(app, client, key):
    assert client.put(f"{API}/service-accounts", json=account(), headers=auth(key)).status_code
    response = client.put(
        f"{API}/lines",
        json={"number": "+52 55 1234 5678", "account": "100002", "service_type": "MOVIL"},
        headers=auth(key),
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json() == {
        "number": "+525512345678",
        "account": "100002",
        "service_type": "MOVIL",
        "plan": None,
        "status": "active",
    }
    unknown = client.put(
        f"{API}/lines",
        json={"number": "C1", "account": "nope", "service_type": "TV", "plan": "M-5GB"},
        headers=auth(key),
    )
    assert unknown.status_code == 422
    assert set(fields(unknown)) == {"account", "plan"}


# --- Charges and payments ---------------------------------------------------------------------


def _bill(app, telecom, account_number: str) -> int:
    """A bill row for the account (what the billing run makes), to mark a charge billed."""
    with app.app_context():
        issuer_id = telecom["issuer_id"]
        branch = db.session.scalar(
            select(Branch).where(Branch.issuer_id == issuer_id, Branch.code == BILLING_BRANCH)
        )
        ticket = Ticket(
            branch_id=branch.id,
            ticket_number="1",
            order_number="1",
            sold_at=datetime.now(UTC),
            total=Decimal("100.00"),
        )
        db.session.add(ticket)
        db.session.flush()
        acct = db.session.scalar(
            select(ServiceAccount).where(ServiceAccount.number == account_number)
        )
        bill = ServiceBill(
            issuer_id=issuer_id,
            service_account_id=acct.id,
            period="2026-05",
            kind="receipt",
            cut_date=date(2026, 5, 31),
            due_date=date(2026, 6, 15),
            previous_balance=Decimal(0),
            charges_total=Decimal(100),
            payments_total=Decimal(0),
            balance_due=Decimal(100),
            ticket_id=ticket.id,
        )
        db.session.add(bill)
        db.session.flush()
        db.session.execute(Charge.__table__.update().values(bill_id=bill.id))
        db.session.commit()
        return bill.id


def test_charges_update_until_billed(app, client, key, telecom):
    created = client.post(f"{API}/charges", json=charge(), headers=auth(key))
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["line"] == mobile_number(1)
    assert created.get_json()["tax_rate"] == "0.160000"
    same = client.post(f"{API}/charges", json=charge(), headers=auth(key))
    assert same.status_code == 200
    changed = client.post(f"{API}/charges", json=charge(unit_price="90"), headers=auth(key))
    assert changed.status_code == 200 and changed.get_json()["unit_price"] == "90"

    _bill(app, telecom, "100001")
    again = client.post(f"{API}/charges", json=charge(unit_price="90"), headers=auth(key))
    assert again.status_code == 200 and again.get_json()["billed"] is True
    refused = client.post(f"{API}/charges", json=charge(unit_price="1"), headers=auth(key))
    assert refused.status_code == 409
    assert "ya está en una factura" in fields(refused)["external_id"]
    with app.app_context():
        assert db.session.scalar(select(Charge.unit_price)) == Decimal("90")


def test_charge_errors(client, key):
    bad = charge(
        account="100002",  # the line is 100001's
        period="2026-13",
        quantity="0",
        unit_price="-1",
        tax_rate="0.15",
        clave_prod_serv="99999999",
        clave_unidad="e48",
        description="x" * 1001,
    )
    response = client.post(f"{API}/charges", json=bad, headers=auth(key))
    assert response.status_code == 422
    assert set(fields(response)) == {
        "line",
        "period",
        "quantity",
        "unit_price",
        "tax_rate",
        "clave_prod_serv",
        "clave_unidad",
        "description",
    }


def test_payments_are_kept_as_received(app, client, key):
    created = client.post(f"{API}/payments", json=payment(), headers=auth(key))
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["amount"] == "200.00"
    # The same instant written in UTC is the same payment.
    utc = payment(received_at="2026-05-03T16:00:00Z", amount="200")
    assert client.post(f"{API}/payments", json=utc, headers=auth(key)).status_code == 200
    other = client.post(f"{API}/payments", json=payment(amount="201.00"), headers=auth(key))
    assert other.status_code == 409
    assert "no se modifica" in fields(other)["external_id"]
    future = (datetime.now(UTC) + timedelta(days=1)).isoformat()
    bad = client.post(
        f"{API}/payments",
        json=payment("PAY-2", received_at=future, amount="0", forma_pago="99"),
        headers=auth(key),
    )
    assert bad.status_code == 422
    assert set(fields(bad)) == {"received_at", "amount", "forma_pago"}
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(Payment)) == 1


# --- Hostile input ----------------------------------------------------------------------------

HOSTILE = [
    ("service-types", "put", {"code": "X" * 10_000, "name": "\x00", "line_kind": 5}),
    ("plans", "put", {"code": "P", "service_type": "MOVIL", "name": "n", "monthly_fee": "NaN"}),
    ("plans", "put", {"code": "P", "service_type": "MOVIL", "name": "n", "monthly_fee": 1.5}),
    (
        "plans",
        "put",
        {
            "code": "P",
            "service_type": "MOVIL",
            "name": "n",
            "monthly_fee": "1",
            "active": "yes",
            "tax_rate": 0.16,
        },
    ),
    (
        "service-accounts",
        "put",
        {
            "number": "1",
            "holder_name": "x" * 100_000,
            "holder_id": [],
            "billing_day": True,
            "fiscal": "no",
            "lines": {"a": 1},
        },
    ),
    (
        "service-accounts",
        "put",
        {
            "number": "1",
            "holder_name": "A",
            "holder_id": "XAXX010101000",
            "lines": [None, 1, "x", {"number": None}],
        },
    ),
    ("lines", "put", {"number": "\ud800", "account": "100001", "service_type": "MOVIL"}),
    (
        "charges",
        "post",
        {
            "external_id": "é",
            "account": "100001",
            "period": "2026-5",
            "description": "d",
            "unit_price": "1e10",
            "quantity": "Infinity",
        },
    ),
    (
        "payments",
        "post",
        {
            "external_id": "P",
            "account": "100001",
            "amount": "1,000.00",
            "received_at": "9999-99-99T99:99:99+99:99",
        },
    ),
    (
        "payments",
        "post",
        {
            "external_id": "P",
            "account": "100001",
            "amount": "10",
            "received_at": "2026-05-03T10:00:00",
        },
    ),
    ("payments", "post", [1, 2, 3]),
    ("charges", "post", {"charges": []}),
    ("charges", "post", {"charges": [{}] * 3, "more": 1}),
]


@pytest.mark.parametrize(("path", "method", "body"), HOSTILE)
def test_hostile_input_is_a_4xx_with_field_messages(client, key, path, method, body):
    response = getattr(client, method)(f"{API}/{path}", json=body, headers=auth(key))
    assert 400 <= response.status_code < 500, response.get_data(as_text=True)[:300]
    errors = response.get_json()["errors"]
    assert errors and all(e["message"] for e in errors)


def test_malformed_json_is_400(client, key):
    response = client.put(
        f"{API}/plans", data=b"{", headers=auth(key), content_type="application/json"
    )
    assert response.status_code == 400 and fields(response)["body"]


# --- Keys, idempotency ------------------------------------------------------------------------


def test_a_retail_key_is_refused(app, client, demo, telecom):
    retail = make_api_key(app)
    for method, path in (("put", "service-accounts"), ("post", "charges"), ("put", "plans")):
        response = getattr(client, method)(f"{API}/{path}", json=account(), headers=auth(retail))
        assert response.status_code == 403
        assert "proveedores de servicios" in fields(response)["Authorization"]
    assert client.get(f"{API}/service-accounts/100001", headers=auth(retail)).status_code == 403
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ServiceAccount)) == 12


def test_idempotency_key_replays_the_first_answer(app, client, key):
    headers = auth(key, **{"Idempotency-Key": "pay-42"})
    first = client.post(f"{API}/payments", json=payment(), headers=headers)
    replay = client.post(f"{API}/payments", json=payment(), headers=headers)
    assert (first.status_code, replay.status_code) == (201, 201)
    assert replay.headers["Idempotent-Replayed"] == "true"
    other = client.post(f"{API}/payments", json=payment("PAY-9"), headers=headers)
    assert other.status_code == 422 and "Idempotency-Key" in fields(other)
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(IdempotentRequest)) == 1


def test_another_issuers_accounts_are_not_found(app, client, key, demo):
    with app.app_context():
        retail = db.session.scalar(select(Issuer).where(Issuer.slug == "demo"))
        retail.kind = "services"  # a second provider
        db.session.commit()
    other = make_api_key(app)
    assert client.get(f"{API}/service-accounts/100001", headers=auth(other)).status_code == 404
    line = {"number": mobile_number(1), "account": "100001", "service_type": "MOVIL"}
    response = client.put(f"{API}/lines", json=line, headers=auth(other))
    assert response.status_code == 422
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(ServiceLine)) == 18


def test_a_line_that_moves_is_proved_again(app, client, key):
    """Whoever proved a line stops seeing its bills when it moves to another account (a
    number given to a new customer)."""
    from tests.flows import RFC, verified_account
    from webapp.models import LineHolder

    with app.app_context():
        account_id = verified_account(RFC, "ingrid@example.com")
        line = db.session.scalar(select(ServiceLine).where(ServiceLine.number == mobile_number(1)))
        db.session.add(LineHolder(account_id=account_id, line_id=line.id))
        db.session.commit()
    same = {"number": mobile_number(1), "account": "100001", "service_type": "MOVIL"}
    assert client.put(f"{API}/lines", json=same, headers=auth(key)).status_code == 200
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(LineHolder)) == 1
    moved = client.put(f"{API}/lines", json={**same, "account": "100002"}, headers=auth(key))
    assert moved.status_code == 200 and moved.get_json()["account"] == "100002"
    with app.app_context():
        assert db.session.scalar(select(func.count()).select_from(LineHolder)) == 0
