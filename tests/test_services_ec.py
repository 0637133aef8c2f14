"""An Ecuadorian provider's data (#16): the same API and CSV files as a Mexican one, with SRI's
values: IVA 15 % / 5 % / 0 % / exento, the holder's cédula or passport, the RUC and razón
social as fiscal data, SRI's formas de pago, no SAT codes asked; Mexico's values refused with
a message that names Ecuador's. Then the billing run makes the new account's bill an
authorised SRI factura to its RUC."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from tests.flows import make_api_key
from webapp import crypto
from webapp.billing import csvfile
from webapp.billing import run as billing
from webapp.cfdi.catalogs import MEXICO_CITY
from webapp.demo import ecuador
from webapp.demo.staff import STAFF_PASSWORD
from webapp.extensions import db
from webapp.models import (
    Invoice,
    InvoiceStatus,
    Issuer,
    Plan,
    ServiceAccount,
    ServiceBill,
    StaffRole,
)
from webapp.sri import catalogs

API = "/api/v1"
RUC = "1792653185001"  # a sociedad's RUC (valid check digit, ends in 001)
RAZON_SOCIAL = "COMERCIAL PICHINCHA DEMO CIA. LTDA."
CEDULA = "1712345675"
RATE_MESSAGE = "Tarifa de IVA del SRI: «0.150000» (la general), «0.050000» o «0.000000»"


@pytest.fixture(scope="module")
def p12s() -> dict[str, tuple[bytes, str]]:
    """Both Ecuadorian demo issuers' test .p12 files, made once (RSA keys take a moment)."""
    now = datetime.now(UTC)
    return {
        ecuador.SERVICES_RUC: ecuador.new_p12(
            ecuador.SERVICES_RUC, ecuador.SERVICES_LEGAL_NAME, now
        ),
        ecuador.SHOP_RUC: ecuador.new_p12(ecuador.SHOP_RUC, ecuador.SHOP_LEGAL_NAME, now),
    }


@pytest.fixture
def andina(app, p12s) -> int:
    """The Ecuadorian demo telecom (small): its issuer id."""
    with app.app_context():
        loaded = ecuador.load_ecuador_demo(
            db.session,
            crypto.cipher_from_config(app.config),
            datetime.now(UTC),
            accounts=3,
            lines=3,
            tickets=2,
            p12s=p12s,
        )
        return loaded.services.id


@pytest.fixture
def key(app, andina) -> str:
    return make_api_key(app, ecuador.SERVICES_SLUG)


def auth(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def fields(response) -> dict[str, str]:
    return {e["field"]: e["message"] for e in response.get_json()["errors"]}


def plan(code="M-50GB", **overrides) -> dict:
    return {
        "code": code,
        "service_type": "MOVIL",
        "name": "Plan Conecta 50 GB",
        "monthly_fee": "43.48",
        **overrides,
    }


def account(number="900001", **overrides) -> dict:
    body = {
        "number": number,
        "holder_name": "Zambrano Mora José",
        "holder_id": CEDULA,
        "fiscal": {"rfc": RUC, "name": RAZON_SOCIAL},
        "email": "facturas@pichincha.example.com",
        "contact_mobile": "099 800 0900",
        "billing_day": 28,
        "lines": [{"number": "099 800 0900", "service_type": "MOVIL", "plan": "M-8GB"}],
    }
    body.update(overrides)
    return body


def payment(external_id="PAY-EC-1", **overrides) -> dict:
    body = {
        "external_id": external_id,
        "account": "200000",
        "amount": "15.00",
        "received_at": "2026-05-03T10:00:00-05:00",
        "forma_pago": "19",
    }
    body.update(overrides)
    return body


# --- Plans and charges: SRI's IVA rates ------------------------------------------------------


def test_plan_rates_are_sri_rates(client, key):
    created = client.put(f"{API}/plans", json=plan(tax_rate="0.15"), headers=auth(key))
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["tax_rate"] == "0.150000"
    # No SAT codes asked: the defaults are stored (a factura of the SRI does not carry them).
    assert (body["clave_prod_serv"], body["clave_unidad"]) == ("81161700", "E48")

    absent = client.put(f"{API}/plans", json=plan("M-60GB"), headers=auth(key))
    assert absent.status_code == 201 and absent.get_json()["tax_rate"] == "0.150000"
    for rate, stored in (("0.050000", "0.050000"), ("0.0", "0.000000"), (None, None)):
        answer = client.put(f"{API}/plans", json=plan(tax_rate=rate), headers=auth(key))
        assert answer.status_code == 200 and answer.get_json()["tax_rate"] == stored

    for mexican in ("0.16", "0.160000", "0.080000", "0.12"):
        refused = client.put(f"{API}/plans", json=plan(tax_rate=mexican), headers=auth(key))
        assert refused.status_code == 422
        assert fields(refused)["tax_rate"].startswith(RATE_MESSAGE)

    # Any short code of the provider's is kept; a long one is refused with its own message.
    coded = client.put(
        f"{API}/plans",
        json=plan(clave_prod_serv="SRV01", clave_unidad="MES"),
        headers=auth(key),
    )
    assert coded.status_code == 200
    assert (coded.get_json()["clave_prod_serv"], coded.get_json()["clave_unidad"]) == (
        "SRV01",
        "MES",
    )
    long = client.put(f"{API}/plans", json=plan(clave_prod_serv="SERVICIO-1"), headers=auth(key))
    assert long.status_code == 422
    assert fields(long)["clave_prod_serv"].startswith("Código del producto o servicio de 1 a 8")


def test_charge_rates_are_sri_rates(client, key):
    charge = {
        "external_id": "CH-EC-1",
        "account": "200000",
        "period": "2026-05",
        "description": "Datos adicionales 2 GB",
        "unit_price": "4.35",
    }
    created = client.post(f"{API}/charges", json=charge, headers=auth(key))
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["tax_rate"] == "0.150000"
    refused = client.post(
        f"{API}/charges",
        json={**charge, "external_id": "CH-EC-2", "tax_rate": "0.16"},
        headers=auth(key),
    )
    assert refused.status_code == 422
    assert fields(refused)["tax_rate"].startswith(RATE_MESSAGE)


# --- Accounts: cédula or passport, RUC and razón social --------------------------------------


def test_account_with_ruc(app, client, key, andina):
    created = client.put(f"{API}/service-accounts", json=account(), headers=auth(key))
    assert created.status_code == 201, created.get_json()
    body = created.get_json()
    assert body["holder_id"] == CEDULA
    assert body["fiscal"] == {
        "rfc": RUC,
        "name": RAZON_SOCIAL,
        "cp": None,
        "regimen": None,
        "uso": None,
    }
    assert body["lines"][0]["number"] == "+593998000900"
    with app.app_context():
        row = db.session.scalar(
            select(ServiceAccount).where(
                ServiceAccount.issuer_id == andina, ServiceAccount.number == "900001"
            )
        )
        assert (row.fiscal_rfc, row.fiscal_name) == (RUC, RAZON_SOCIAL)
        assert (row.fiscal_cp, row.fiscal_regimen, row.fiscal_uso) == (None, None, None)
        assert row.has_fiscal_data
    # The same again changes nothing; SAT's fields null are the same as absent.
    nulls = account(fiscal={"rfc": RUC, "name": RAZON_SOCIAL, "cp": None, "uso": None})
    again = client.put(f"{API}/service-accounts", json=nulls, headers=auth(key))
    assert again.status_code == 200 and again.get_json()["updated_at"] == body["updated_at"]


@pytest.mark.parametrize(
    ("fiscal", "field", "words"),
    [
        ({"rfc": "1792653186001", "name": RAZON_SOCIAL}, "fiscal.rfc", "El RUC no es válido"),
        ({"rfc": "1792653185002", "name": RAZON_SOCIAL}, "fiscal.rfc", "terminan en 001"),
        ({"rfc": "FUNK671228PH6", "name": RAZON_SOCIAL}, "fiscal.rfc", "El RUC no es válido"),
        ({"rfc": RUC}, "fiscal.name", "RUC y razón social"),
        (
            {"rfc": RUC, "name": RAZON_SOCIAL, "cp": "01160"},
            "fiscal.cp",
            "sólo el RUC y la razón social",
        ),
    ],
)
def test_bad_fiscal_data_is_refused(client, key, fiscal, field, words):
    refused = client.put(f"{API}/service-accounts", json=account(fiscal=fiscal), headers=auth(key))
    assert refused.status_code == 422
    assert words in fields(refused)[field]


def test_holder_id_is_a_cedula_or_a_passport(client, key):
    bad = client.put(
        f"{API}/service-accounts",
        json=account(holder_id="1712345670", fiscal=None),
        headers=auth(key),
    )
    assert bad.status_code == 422
    assert fields(bad)["holder_id"] == "Ese número de cédula no es válido: revise los 10 dígitos."
    rfc = client.put(
        f"{API}/service-accounts",
        json=account(holder_id="AB", fiscal=None),
        headers=auth(key),
    )
    assert rfc.status_code == 422 and "pasaporte" in fields(rfc)["holder_id"]
    passport = client.put(
        f"{API}/service-accounts",
        json=account(holder_id="A1234567", fiscal=None),
        headers=auth(key),
    )
    assert passport.status_code == 201, passport.get_json()
    assert passport.get_json()["holder_id"] == "A1234567"
    assert passport.get_json()["fiscal"] is None


# --- Payments: SRI's formas de pago ----------------------------------------------------------


def test_payments_take_sri_formas_de_pago(client, key):
    created = client.post(f"{API}/payments", json=payment(), headers=auth(key))
    assert created.status_code == 201, created.get_json()
    assert created.get_json()["forma_pago"] == "19"
    for sat_only in ("28", "03", "99"):
        refused = client.post(
            f"{API}/payments",
            json=payment(f"PAY-EC-{sat_only}", forma_pago=sat_only),
            headers=auth(key),
        )
        assert refused.status_code == 422
        assert fields(refused)["forma_pago"].startswith("Forma de pago del SRI")


# --- Mexico is unchanged ---------------------------------------------------------------------


def test_mexican_provider_refuses_sri_values(app, client, telecom):
    mx = make_api_key(app, telecom["slug"])
    body = {**plan(tax_rate="0.15"), "code": "M-X"}
    refused = client.put(f"{API}/plans", json=body, headers=auth(mx))
    assert refused.status_code == 422
    assert fields(refused)["tax_rate"].startswith("Tasa de IVA «0.160000»")
    ruc_only = account(
        holder_id="XAXX010101000",
        fiscal={"rfc": RUC, "name": RAZON_SOCIAL},
        lines=[],
        contact_mobile=None,
    )
    answer = client.put(f"{API}/service-accounts", json=ruc_only, headers=auth(mx))
    assert answer.status_code == 422
    assert {"fiscal.cp", "fiscal.regimen", "fiscal.uso"} <= set(fields(answer))  # all five
    assert client.get(f"{API}/openapi.json").status_code == 200


# --- CSV: the same columns, Ecuador's help text and sample -----------------------------------


def test_csv_sample_of_ecuador_imports_as_is(app, andina):
    layouts = csvfile.kinds("EC")
    assert "Cédula" in layouts["cuentas"].docs["holder_id"]
    assert "0.150000" in layouts["cargos"].docs["tax_rate"]
    assert "SRI" in layouts["pagos"].docs["forma_pago"]
    assert csvfile.KINDS["cuentas"].docs["holder_id"].startswith("RFC")  # Mexico's unchanged
    now = datetime.now(UTC)
    with app.app_context():
        issuer = db.session.get(Issuer, andina)
        for kind in ("cuentas", "cargos", "pagos"):
            data = csvfile.sample_csv(csvfile.KINDS[kind], "EC").encode()
            report = csvfile.import_csv(db.session, issuer, kind, data, now=now)
            assert report.rejected == 0, [(r.row, r.message) for r in report.rows]
            assert report.created > 0
        db.session.commit()
        company = db.session.scalar(
            select(ServiceAccount).where(
                ServiceAccount.issuer_id == andina, ServiceAccount.number == "200901"
            )
        )
        assert (company.fiscal_rfc, company.fiscal_cp) == ("1792653185001", None)


def test_upload_page_shows_ecuadors_columns(app, client, andina, admin_login):
    from webapp.admin.staff import create_staff

    with app.app_context():
        member = create_staff(
            db.session,
            "admin.andina.csv@example.com",
            StaffRole.ISSUER_ADMIN,
            db.session.get(Issuer, andina),
            password=STAFF_PASSWORD,
        )
        db.session.commit()
        email = member.email
    admin_login(client, email)
    page = client.get("/admin/servicios/cargar")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "Cédula (10 dígitos) o pasaporte del titular." in html
    assert "0.150000 (si se deja vacío)" in html
    assert "RFC del titular" not in html
    sample = client.get("/admin/servicios/ejemplo-cargos.csv")
    # Ecuador's sample rows: the demo provider's accounts, USD amounts, no 16 %.
    assert sample.status_code == 200 and ",200900," in sample.get_data(as_text=True)
    assert "0.160000" not in sample.get_data(as_text=True)
    wrong = client.post(
        "/admin/servicios/cargar",
        data={
            "tipo": "cargos",
            "file": (
                io.BytesIO(
                    (
                        ",".join(csvfile.CHARGES.columns)
                        + "\r\nCSV-1,200000,,2026-05,Cargo,1,10,0.16,,\r\n"
                    ).encode()
                ),
                "cargos.csv",
                "text/csv",
            ),
        },
        content_type="multipart/form-data",
    )
    assert wrong.status_code == 200
    assert "Tarifa de IVA del SRI" in wrong.get_data(as_text=True)


# --- The billing run: the new account's bill is an SRI factura to its RUC --------------------


def _last_period(now: datetime) -> tuple[str, date]:
    today = now.astimezone(MEXICO_CITY).date()
    last = today.replace(day=1) - timedelta(days=1)
    return f"{last.year:04d}-{last.month:02d}", last


def test_billing_run_makes_an_sri_factura_to_the_ruc(app, client, key, andina):
    now = datetime.now(UTC)
    period, last = _last_period(now)
    assert client.put(f"{API}/service-accounts", json=account(), headers=auth(key)).status_code in (
        200,
        201,
    )
    charges = [
        {
            "external_id": "CH-EXENTO",
            "account": "900001",
            "period": period,
            "description": "Cargo por reconexión",
            "unit_price": "2.00",
            "tax_rate": None,
        },
        {
            "external_id": "CH-15",
            "account": "900001",
            "line": "0998000900",
            "period": period,
            "description": "Datos adicionales 2 GB",
            "unit_price": "4.35",
        },
    ]
    pushed = client.post(f"{API}/charges", json={"charges": charges}, headers=auth(key))
    assert pushed.status_code == 201, pushed.get_json()
    paid_at = datetime.combine(last.replace(day=10), datetime.min.time(), UTC) + timedelta(hours=15)
    paid = client.post(
        f"{API}/payments",
        json=payment(account="900001", received_at=paid_at.isoformat()),
        headers=auth(key),
    )
    assert paid.status_code == 201, paid.get_json()

    with app.app_context():
        issuer = db.session.get(Issuer, andina)
        state = billing.run(db.session, app.extensions["stamping"], issuer, period, now)
        assert state.finished and state.failed == 0, state
        account_id = db.session.scalar(
            select(ServiceAccount.id).where(
                ServiceAccount.issuer_id == andina, ServiceAccount.number == "900001"
            )
        )
        bill = db.session.scalar(
            select(ServiceBill).where(
                ServiceBill.service_account_id == account_id, ServiceBill.period == period
            )
        )
        assert bill is not None
        invoice = db.session.scalar(select(Invoice).where(Invoice.service_account_id == account_id))
        assert invoice is not None
        assert invoice.status is InvoiceStatus.STAMPED
        assert invoice.authority_state == "authorised"
        assert invoice.uuid == invoice.access_key and len(invoice.access_key) == 49
        assert (invoice.receptor_id_type, invoice.receptor_rfc, invoice.receptor_nombre) == (
            catalogs.RUC,
            RUC,
            RAZON_SOCIAL,
        )
        assert invoice.currency == "USD" and invoice.forma_pago == "19"
        # Plan M-8GB 13.04 and 4.35 at 15 % (17.39 + 2.61), 2.00 exento: 22.00.
        plan_fee = db.session.scalar(
            select(Plan.monthly_fee).where(Plan.issuer_id == andina, Plan.code == "M-8GB")
        )
        assert plan_fee == Decimal("13.04")
        assert invoice.total == Decimal("22.00")
        lines = {line.description: line for t in invoice.tickets for line in t.lines}
        assert lines["Cargo por reconexión"].tax_factor == "Exento"
