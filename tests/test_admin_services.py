"""The service provider's accounts in the back office: search by account, holder or line,
status filter, pages, the htmx fragment, an account's page, and the walls between issuers."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import select

from webapp.demo.services import BILLING_BRANCH, contract_number, mobile_number
from webapp.extensions import db
from webapp.models import (
    AccountStatus,
    Branch,
    Charge,
    Issuer,
    Payment,
    ServiceAccount,
    ServiceBill,
    ServiceLine,
    Ticket,
)

URL = "/admin/servicios/cuentas"


@pytest.fixture
def signed_in(client, telecom_admin, admin_login):
    admin_login(client, telecom_admin)
    return client


def accounts_shown(response) -> list[str]:
    html = response.get_data(as_text=True)
    return [part.split('"', 1)[0] for part in html.split(f'href="{URL}/')[1:]]


def test_list_shows_the_issuers_accounts_in_pages(app, signed_in, telecom):
    with app.app_context():
        issuer_id = telecom["issuer_id"]
        for i in range(30):  # 12 + 30 = 42 accounts: two pages of 25
            db.session.add(
                ServiceAccount(
                    issuer_id=issuer_id,
                    number=f"3{i:05d}",
                    holder_name="TITULAR",
                    holder_id="XAXX010101000",
                )
            )
        db.session.commit()
    first = signed_in.get(URL)
    assert first.status_code == 200
    html = first.get_data(as_text=True)
    assert "42 cuentas" in html and "Página 1 de 2" in html
    assert len(accounts_shown(first)) == 25 and accounts_shown(first)[0] == "100000"
    second = signed_in.get(f"{URL}?pagina=2")
    assert len(accounts_shown(second)) == 17
    assert signed_in.get(f"{URL}?pagina=99").status_code == 200  # the last page
    assert signed_in.get(f"{URL}?pagina=-1x").status_code == 200


def test_search_by_number_holder_and_line(app, signed_in, telecom):
    assert accounts_shown(signed_in.get(f"{URL}?q=100003")) == ["100003"]
    with app.app_context():
        holder = db.session.scalar(
            select(ServiceAccount.holder_name).where(ServiceAccount.number == "100000")
        )
        line_account = db.session.scalar(
            select(ServiceAccount.number)
            .join(ServiceLine)
            .where(ServiceLine.number == mobile_number(5))
        )
        contract = db.session.scalar(select(ServiceLine).where(ServiceLine.number.like("C%")))
        contract_account = contract.account.number if contract else None
    by_holder = accounts_shown(signed_in.get(URL, query_string={"q": holder.lower()}))
    assert "100000" in by_holder
    # A phone written the way people write it, and its last digits.
    assert accounts_shown(signed_in.get(URL, query_string={"q": "55 8000 0005"})) == [line_account]
    assert line_account in accounts_shown(signed_in.get(URL, query_string={"q": "80000005"}))
    if contract_account:
        assert contract_account in accounts_shown(
            signed_in.get(URL, query_string={"q": contract.number})
        )
    nothing = signed_in.get(URL, query_string={"q": "%_\\'\"<script>"})
    assert nothing.status_code == 200
    assert "Ninguna cuenta coincide" in nothing.get_data(as_text=True)
    assert "<script>" not in nothing.get_data(as_text=True)
    huge = signed_in.get(URL, query_string={"q": "9" * 5000})
    assert huge.status_code == 200


def test_status_filter_and_htmx_fragment(app, signed_in, telecom):
    with app.app_context():
        account = db.session.scalar(select(ServiceAccount).where(ServiceAccount.number == "100004"))
        account.status = AccountStatus.SUSPENDED
        db.session.commit()
    page = signed_in.get(URL, query_string={"estado": "suspended"})
    assert accounts_shown(page) == ["100004"]
    assert re.search(r'<option[^>]*selected[^>]*value="suspended"', page.get_data(as_text=True))
    fragment = signed_in.get(
        URL, query_string={"estado": "suspended"}, headers={"HX-Request": "true"}
    )
    html = fragment.get_data(as_text=True)
    assert html.lstrip().startswith('<section id="resultados"')
    assert "<html" not in html and accounts_shown(fragment) == ["100004"]
    assert "HX-Request" in fragment.headers["Vary"]
    assert len(accounts_shown(signed_in.get(URL, query_string={"estado": "nope"}))) == 12


def _bill_and_activity(app, telecom) -> None:
    with app.app_context():
        issuer_id = telecom["issuer_id"]
        account = db.session.scalar(select(ServiceAccount).where(ServiceAccount.number == "100000"))
        branch = db.session.scalar(
            select(Branch).where(Branch.issuer_id == issuer_id, Branch.code == BILLING_BRANCH)
        )
        ticket = Ticket(
            branch_id=branch.id,
            ticket_number="1",
            order_number="1",
            sold_at=datetime.now(UTC),
            total=Decimal("200.00"),
        )
        db.session.add(ticket)
        db.session.flush()
        db.session.add(
            ServiceBill(
                issuer_id=issuer_id,
                service_account_id=account.id,
                period="2026-04",
                kind="invoice",
                cut_date=date(2026, 4, 30),
                due_date=date(2026, 5, 15),
                previous_balance=Decimal(0),
                charges_total=Decimal("200.00"),
                payments_total=Decimal(0),
                balance_due=Decimal("200.00"),
                ticket_id=ticket.id,
            )
        )
        db.session.add(
            Charge(
                issuer_id=issuer_id,
                service_account_id=account.id,
                line_id=account.lines[0].id,
                external_id="CH-77",
                period="2026-05",
                description="Roaming internacional",
                unit_price=Decimal("120.50"),
            )
        )
        db.session.add(
            Payment(
                issuer_id=issuer_id,
                service_account_id=account.id,
                external_id="PAY-77",
                amount=Decimal("349.00"),
                received_at=datetime(2026, 5, 3, 16, tzinfo=UTC),
                forma_pago="03",
                reference="SPEI 778899",
            )
        )
        db.session.commit()


def test_account_page_shows_lines_fiscal_data_activity_and_bills(app, signed_in, telecom):
    _bill_and_activity(app, telecom)
    page = signed_in.get(f"{URL}/100000")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert mobile_number(0) in html  # its line
    assert "XOJI740919U48" in html and "G03" in html  # fiscal data (one in ten has it)
    assert "Roaming internacional" in html and "SPEI 778899" in html
    assert "2026-04" in html and "factura" in html  # the bill of April
    plain = signed_in.get(f"{URL}/100001").get_data(as_text=True)
    assert "no dio datos fiscales" in plain and "Recibos y facturas" not in plain
    assert signed_in.get(f"{URL}/nope").status_code == 404
    assert contract_number(0) not in plain


def test_retail_issuer_gets_an_explanation(client, staff, admin_login, telecom):
    admin_login(client, staff["admin"])
    page = client.get(URL)
    assert page.status_code == 200
    assert "proveedores de servicios" in page.get_data(as_text=True)
    assert "XODAR" not in page.get_data(as_text=True)  # the holder of account 100000
    assert "XODAR" not in client.get(f"{URL}/100000").get_data(as_text=True)


def test_other_issuers_accounts_are_404(app, client, staff, admin_login, telecom):
    """Another service provider's staff cannot see the telecom's accounts."""
    with app.app_context():
        other = db.session.get(Issuer, staff["other_issuer_id"])
        other.kind = "services"
        db.session.commit()
    admin_login(client, staff["other_admin"])
    assert client.get(f"{URL}/100000").status_code == 404
    assert accounts_shown(client.get(URL)) == []


def test_signed_out_goes_to_sign_in(client, telecom):
    response = client.get(URL)
    assert response.status_code == 303 and "/admin/entrar" in response.headers["Location"]
