"""Invoicing without an account (per issuer): delivered by email, and claimed by the account
that later registers that RFC and verifies that address."""

from __future__ import annotations

from urllib.parse import urlencode

import pytest
from sqlalchemy import select

from tests.flows import (
    OTHER_RFC,
    PASSWORD,
    RECEPTOR,
    RFC,
    complete,
    enrol,
    link_in,
    mails,
    public_ids,
    solved_captcha,
    stamp,
    start,
    ticket_data,
    verified_account,
)
from webapp.extensions import db
from webapp.models import Invoice, Issuer


def _guest_invoicing(app, allowed: bool) -> None:
    with app.app_context():
        db.session.scalar(select(Issuer).where(Issuer.slug == "demo")).guest_invoicing = allowed
        db.session.commit()


def test_guest_invoicing_is_on_by_default(app, demo):
    with app.app_context():
        assert db.session.scalar(select(Issuer)).guest_invoicing is True


def test_a_guest_must_give_an_email(client, demo):
    t = demo["fresh"][0]
    key = start(client, t["branch_id"])
    r = client.post("/facturar/demo/ticket", data=ticket_data(t, key, email=""))
    assert r.status_code == 422 and "Escriba su correo electrónico" in r.get_data(as_text=True)


def test_guest_invoices_appear_once_that_rfc_registers_and_verifies_that_email(app, demo):
    guest = app.test_client()
    mine = stamp(guest, demo["fresh"][0])  # to RFC, delivered to ingrid@example.com
    stamp(guest, demo["fresh"][1], email="someone.else@example.com")  # same RFC, other address
    with app.app_context():
        invoices = db.session.scalars(select(Invoice)).all()
        assert [i.account_id for i in invoices] == [None, None]
        assert {i.delivery_email for i in invoices} == {
            RECEPTOR["email"],
            "someone.else@example.com",
        }
    assert [m[0] for m in mails(app)] == [RECEPTOR["email"], "someone.else@example.com"]

    # Later, on another browser: registration with that RFC and that address.
    client = app.test_client()
    verification = complete(app, client, "modern")
    assert link_in(mails(app)[-1][2]) == verification
    html = client.get("/facturas/").get_data(as_text=True)
    assert public_ids(html) == [mine]  # the other address proves nothing
    assert client.get(f"/facturas/{mine}.pdf").data.startswith(b"%PDF")


def test_an_invoice_to_another_rfc_at_the_same_address_is_not_claimed(app, demo):
    t = demo["fresh"][0]
    guest = app.test_client()
    key = start(guest, t["branch_id"], rfc=OTHER_RFC)
    r = guest.post("/facturar/demo/ticket", data=ticket_data(t, key, nombre="DEMO OTRO"))
    assert r.status_code == 303, r.get_data(as_text=True)
    client = app.test_client()
    complete(app, client, "modern")
    assert public_ids(client.get("/facturas/").get_data(as_text=True)) == []


def test_without_guest_invoicing_the_web_asks_to_sign_in(app, client, demo):
    _guest_invoicing(app, False)
    for url in ("/facturar/demo/", "/facturar/demo/rfc", "/facturar/demo/ticket"):
        r = client.get(url)
        assert r.status_code == 303, url
        assert r.headers["Location"] == "/cuenta/entrar?next=" + url, url
    page = client.get("/cuenta/entrar").get_data(as_text=True)
    assert "TIENDAS DEMO LA GAVIOTA factura sólo a clientes con cuenta" in page
    assert "TIENDAS DEMO LA GAVIOTA factura sólo" not in client.get("/").get_data(as_text=True)
    inline = client.post("/facturar/demo/ticket/campo/total", headers={"HX-Request": "true"})
    assert inline.status_code == 204
    assert inline.headers["HX-Redirect"] == "/cuenta/entrar?next=/facturar/demo/"

    with app.app_context():
        verified_account(RFC, RECEPTOR["email"])
    # Signing in from the page the customer was sent to returns them to the flow.
    page = client.get("/cuenta/entrar?next=/facturar/demo/rfc").get_data(as_text=True)
    assert 'action="/cuenta/entrar?next=/facturar/demo/rfc"' in page
    r = client.post(
        "/cuenta/entrar?next=/facturar/demo/rfc",
        data={"identifier": RFC, "password": PASSWORD, **solved_captcha(app, page)},
    )
    assert r.status_code == 303 and r.headers["Location"] == "/facturar/demo/rfc"
    public_id = stamp(client, demo["fresh"][0])
    with app.app_context():
        invoice = db.session.scalar(select(Invoice).where(Invoice.public_id == public_id))
        assert invoice.account_id is not None


def test_kiosks_always_invoice_as_guests(app, client, demo):
    _guest_invoicing(app, False)
    enrol(app, client)
    r = client.post("/facturar/demo/rfc", data={"rfc": RFC})
    assert r.status_code == 200 and "Datos del ticket" in r.get_data(as_text=True)
    assert client.get("/facturar/demo/ticket").status_code == 200


@pytest.mark.parametrize(
    "target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "/admin/"]
)
def test_sign_in_never_sends_elsewhere(app, client, target):
    with app.app_context():
        verified_account(RFC, RECEPTOR["email"])
    page = client.get("/cuenta/entrar").get_data(as_text=True)
    r = client.post(
        "/cuenta/entrar?" + urlencode({"next": target}),
        data={"identifier": RFC, "password": PASSWORD, **solved_captcha(app, page)},
    )
    assert r.status_code == 303 and r.headers["Location"] == "/cuenta/"
