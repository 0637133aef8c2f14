"""Mi cuenta → Datos fiscales and Cambiar correo, as a customer notices them: the ticket flow's
rules and messages beside each field, the RFC fixed, and an email change that waits for the
link sent to the new address."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from tests.flows import (
    EMAIL,
    GOOD_PASSWORD,
    RFC,
    complete,
    mails,
    registered_account,
    sign_in,
    start,
    ticket_data,
)
from webapp.extensions import db
from webapp.mail.cli import app_sessions
from webapp.mail.worker import run_once
from webapp.models import Account, CustomerProfile, Invoice

PASSWORD = GOOD_PASSWORD["modern"]
PROFILE = {
    "nombre": "INGRID XODAR JIMENEZ",
    "cp": "76028",
    "regimen": "612",
    "uso_cfdi": "G03",
    "emails": "Ingrid@Example.com\nconta@example.com, ingrid@example.com",
}
NEW = "nuevo@example.com"
HX = {"HX-Request": "true"}


@pytest.fixture
def customer(app, client):
    """A client signed in to a complete account (RFC XOJI740919U48, ingrid@example.com)."""
    complete(app, client, "modern")
    return client


def wrapper(html: str, name: str) -> str:
    return re.search(rf'id="campo-{name}".*?</div>', html, re.S).group(0)


def saved(app) -> CustomerProfile | None:
    with app.app_context():
        profile = db.session.scalars(select(CustomerProfile)).one_or_none()
        if profile is not None:
            profile.addresses = [e.email for e in profile.emails]
        return profile


def account(app) -> Account:
    """The customer's account (the first one registered)."""
    with app.app_context():
        return db.session.scalars(select(Account).order_by(Account.id)).first()


# --- Datos fiscales ------------------------------------------------------------------------


def test_saved_profile_fills_the_ticket_flow(app, customer, demo):
    home = customer.get("/cuenta/").get_data(as_text=True)
    assert "Aún no guarda sus datos fiscales" in home
    assert 'href="/cuenta/perfil/"' in home and 'hx-get="/cuenta/perfil/"' in home
    page = customer.get("/cuenta/perfil/").get_data(as_text=True)
    assert f"<dd>{RFC}</dd>" in page and "no se puede cambiar" in page
    assert set(re.findall(r'<option value="(\d{3})"', wrapper(page, "regimen"))) == {
        "605", "606", "607", "608", "610", "611", "612", "614", "615", "616", "621", "625", "626"
    }  # fmt: skip
    r = customer.post("/cuenta/perfil/", data=PROFILE)
    assert r.status_code == 303 and r.headers["Location"] == "/cuenta/?perfil=1"
    home = customer.get(r.headers["Location"]).get_data(as_text=True)
    assert "Guardamos sus datos fiscales" in home
    for shown in ("INGRID XODAR JIMENEZ", "76028", "612 · ", "G03 · Gastos en general"):
        assert shown in home
    assert "ingrid@example.com, conta@example.com" in home
    profile = saved(app)
    assert (profile.rfc, profile.cp, profile.regimen_fiscal) == (RFC, "76028", "612")
    assert profile.addresses == ["ingrid@example.com", "conta@example.com"]  # deduplicated

    start(customer, demo["fresh"][0]["branch_id"])
    ticket = customer.get("/facturar/demo/ticket").get_data(as_text=True)
    assert 'value="INGRID XODAR JIMENEZ"' in ticket and 'value="76028"' in ticket
    assert '<option selected value="612">' in ticket and '<option selected value="G03">' in ticket
    assert 'value="ingrid@example.com"' in ticket

    # Edited again: the form shows what was saved; a shorter list replaces the old one.
    page = customer.get("/cuenta/perfil/").get_data(as_text=True)
    assert "ingrid@example.com\nconta@example.com" in page
    r = customer.post("/cuenta/perfil/", data=dict(PROFILE, cp="06600", emails="conta@example.com"))
    assert r.status_code == 303
    profile = saved(app)
    assert profile.cp == "06600" and profile.addresses == ["conta@example.com"]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("nombre", "Ingrid Xodar Jimenez", "en mayúsculas"),
        ("cp", "00000", "no está en el catálogo del SAT"),
        ("cp", "760", "tiene 5 dígitos"),
        ("regimen", "601", "no corresponde al tipo de persona"),
        ("uso_cfdi", "D01", "no está permitido para el régimen"),
        ("emails", "ingrid@example.com\nno-es-correo", "Revise «no-es-correo»"),
        ("emails", "a@b.mx b@b.mx c@b.mx d@b.mx e@b.mx f@b.mx", "como máximo 5 correos"),
    ],
)
def test_the_ticket_flows_rules_next_to_the_field(app, customer, field, value, message):
    data = dict(PROFILE, **{field: value})
    if field == "uso_cfdi":
        data["regimen"] = "616"  # sin obligaciones fiscales: no D01
    r = customer.post("/cuenta/perfil/", data=data)
    assert r.status_code == 422
    html = r.get_data(as_text=True)
    assert message in wrapper(html, field) and 'aria-invalid="true"' in wrapper(html, field)
    if field == "emails" and "Revise" in message:
        assert "correo electrónico válido" in wrapper(html, field)  # the ticket flow's words
    assert saved(app) is None


def test_the_rfc_cannot_be_changed(app, customer):
    r = customer.post("/cuenta/perfil/", data=dict(PROFILE, rfc="CACX7605101P8"))
    assert r.status_code == 303
    assert saved(app).rfc == RFC and account(app).rfc == RFC
    assert 'name="rfc"' not in customer.get("/cuenta/perfil/").get_data(as_text=True)


def test_signed_out_goes_to_sign_in(client):
    for url in ("/cuenta/perfil/", "/cuenta/perfil/correo"):
        r = client.get(url)
        assert r.status_code == 302 and "/cuenta/entrar" in r.headers["Location"]


def test_the_dialog_fragment(app, customer):
    r = customer.get("/cuenta/perfil/", headers=HX)
    body = r.get_data(as_text=True)
    assert r.status_code == 200 and "<html" not in body and "HX-Request" in r.headers["Vary"]
    assert 'id="modal-title"' in body and "data-close-dialog" in body
    assert "data-close-dialog" not in customer.get("/cuenta/perfil/").get_data(as_text=True)
    bad = customer.post("/cuenta/perfil/", headers=HX, data=dict(PROFILE, cp="00000"))
    body = bad.get_data(as_text=True)
    assert bad.status_code == 200 and "<html" not in body  # a fragment answers 200
    assert "no está en el catálogo del SAT" in wrapper(body, "cp")
    done = customer.post("/cuenta/perfil/", headers=HX, data=PROFILE)
    assert done.status_code == 204 and done.headers["HX-Redirect"] == "/cuenta/?perfil=1"


def test_inline_validation_and_the_usos_of_the_regimen(customer):
    r = customer.post("/cuenta/perfil/campo/cp", headers=HX, data=dict(PROFILE, cp="00000"))
    body = r.get_data(as_text=True).strip()
    assert r.status_code == 200 and body.startswith('<div class="field invalid" id="campo-cp"')
    assert "no está en el catálogo del SAT" in body and "campo-nombre" not in body
    r = customer.post("/cuenta/perfil/campo/regimen", headers=HX, data=dict(PROFILE, regimen="616"))
    body = r.get_data(as_text=True)
    uso = body[body.index('id="campo-uso_cfdi"') :]
    assert 'hx-swap-oob="true"' in uso
    assert set(re.findall(r'<option value="(\w+)"', uso)) == {"G02", "S01", "CP01"}
    assert customer.post("/cuenta/perfil/campo/rfc", headers=HX, data=PROFILE).status_code == 404


# --- Cambiar correo ------------------------------------------------------------------------


def change_email(client, new=NEW, confirm=None, current=PASSWORD, headers=None):
    return client.post(
        "/cuenta/perfil/correo",
        data={"email": new, "email_confirm": confirm or new, "current": current},
        headers=headers,
    )


def change_link(app, to=NEW) -> str:
    """The newest email-change link sent to `to`."""
    bodies = [body for addr, _subject, body in mails(app) if addr == to and "/correo/" in body]
    return re.search(r"http://localhost(/cuenta/perfil/correo/\S+)", bodies[-1]).group(1)


def test_email_change_waits_for_the_link(app, customer):
    before = len(mails(app))
    r = change_email(customer, new="Nuevo@Example.com")
    assert r.status_code == 303 and r.headers["Location"] == "/cuenta/?correo=1"
    assert "Le enviamos un enlace" in customer.get(r.headers["Location"]).get_data(as_text=True)
    sent = mails(app)[before:]
    assert {to for to, _s, _b in sent} == {NEW, EMAIL}
    [(_to, subject, notice)] = [m for m in sent if m[0] == EMAIL]
    assert "cambiar el correo" in subject and "n***@example.com" in notice and NEW not in notice
    assert "contraseña" in notice
    assert account(app).email == EMAIL  # nothing changes before the link

    link = change_link(app)
    page = customer.get(link)  # what a mail scanner does: no change
    assert page.status_code == 200 and "Confirmar el cambio" in page.get_data(as_text=True)
    assert account(app).email == EMAIL
    assert sign_in(app.test_client(), NEW, PASSWORD).status_code == 401

    done = app.test_client().post(link)  # from the phone where the mail was read
    assert done.status_code == 200 and "Su correo cambió" in done.get_data(as_text=True)
    changed = account(app)
    assert changed.email == NEW and changed.email_verified_at is not None
    assert app.test_client().post(link).status_code == 410  # once
    assert customer.get(link).status_code == 410
    assert sign_in(app.test_client(), NEW, PASSWORD).status_code == 303
    home = customer.get("/cuenta/").get_data(as_text=True)  # this session goes on
    assert NEW in home and "Correo de la cuenta cambiado" in home


def test_email_change_mistakes(app, customer):
    cases = [
        ({"current": "no es"}, "current", "La contraseña actual no es correcta"),
        ({"new": EMAIL.upper()}, "email", "Ese ya es el correo de su cuenta"),
        ({"confirm": "otro@example.com"}, "email_confirm", "Los correos no coinciden"),
        ({"new": "no-es-correo"}, "email", "correo electrónico válido"),
    ]
    before = len(mails(app))
    for kwargs, field, message in cases:
        r = change_email(customer, **kwargs)
        assert r.status_code == 422
        assert message in wrapper(r.get_data(as_text=True), field)
    fragment = change_email(customer, current="no es", headers=HX)
    body = fragment.get_data(as_text=True)
    assert fragment.status_code == 200 and "<html" not in body and 'id="modal-title"' in body
    assert len(mails(app)) == before
    done = change_email(customer, headers=HX)
    assert done.status_code == 204 and done.headers["HX-Redirect"] == "/cuenta/?correo=1"


def test_an_address_of_another_account_is_not_revealed(app, customer):
    other = app.test_client()
    complete(app, other, "modern", email="otra@example.com")
    before = len(mails(app))
    taken = change_email(customer, new="otra@example.com")
    free = change_email(customer, new=NEW)
    assert (taken.status_code, taken.headers["Location"]) == (303, "/cuenta/?correo=1")
    assert (free.status_code, free.headers["Location"]) == (303, "/cuenta/?correo=1")
    sent = mails(app)[before:]
    [(_to, subject, body)] = [m for m in sent if m[0] == "otra@example.com"]
    assert "ya está registrado" in subject and "/cuenta/perfil/correo/" not in body
    assert [m[0] for m in sent].count(EMAIL) == 2  # the owner is told each time
    assert account(app).email == EMAIL


def test_an_address_taken_before_the_link_is_opened(app, customer):
    change_email(customer)
    link = change_link(app)
    complete(app, app.test_client(), "modern", email=NEW)  # someone registers it meanwhile
    r = customer.post(link)
    assert r.status_code == 409 and "ya es de otra cuenta" in r.get_data(as_text=True)
    assert account(app).email == EMAIL


def test_a_password_change_kills_the_link(app, customer):
    change_email(customer)
    link = change_link(app)
    new = "otra frase bastante larga"
    data = {"current": PASSWORD, "password": new, "password_confirm": new}
    assert customer.post("/cuenta/contrasena", data=data).status_code == 303
    assert customer.post(link).status_code == 410
    assert customer.get("/cuenta/perfil/correo/altered" + link[-5:]).status_code == 410


def test_invoices_delivered_to_the_new_address_become_the_accounts(app, customer, demo):
    t = demo["fresh"][0]
    anonymous = app.test_client()  # at the kiosk, not signed in, to the new address
    key = start(anonymous, t["branch_id"])
    r = anonymous.post("/facturar/demo/ticket", data=ticket_data(t, key, email=NEW))
    assert r.status_code == 303
    with app.app_context():
        assert db.session.scalars(select(Invoice)).one().account_id is None
    change_email(customer)
    with app.app_context():
        assert db.session.scalars(select(Invoice)).one().account_id is None  # not yet
    assert customer.post(change_link(app)).status_code == 200
    with app.app_context():
        invoice = db.session.scalars(select(Invoice)).one()
        assert invoice.account_id == account(app).id


def test_the_link_through_a_real_smtp_server(make_app, smtp_server):
    mailbox = smtp_server()
    app = make_app(MAIL_URL=mailbox.url)
    client = app.test_client()
    complete(app, client, "modern")
    change_email(client)
    run_once(app_sessions(app), app.config)
    [message] = [m for m in mailbox.messages() if m["To"] == NEW]
    link = re.search(r"http://localhost(/cuenta/perfil/correo/\S+)", message.get_content())
    assert client.post(link.group(1)).status_code == 200
    assert account(app).email == NEW


def test_every_form_carries_its_csrf_token(make_app):
    app = make_app(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    registered_account(app)
    page = client.get("/cuenta/entrar").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    signin = {"identifier": RFC, "password": PASSWORD, "csrf_token": token}
    assert client.post("/cuenta/entrar", data=signin).status_code == 303

    def token_of(url: str) -> str:
        html = client.get(url).get_data(as_text=True)
        return re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html).group(1)

    assert client.post("/cuenta/perfil/", data=PROFILE).status_code == 400
    data = dict(PROFILE, csrf_token=token_of("/cuenta/perfil/"))
    assert client.post("/cuenta/perfil/", data=data).status_code == 303
    fields = {"email": NEW, "email_confirm": NEW, "current": PASSWORD}
    assert client.post("/cuenta/perfil/correo", data=fields).status_code == 400
    fields["csrf_token"] = token_of("/cuenta/perfil/correo")
    assert client.post("/cuenta/perfil/correo", data=fields).status_code == 303
    link = change_link(app)
    assert client.post(link).status_code == 400  # a bare POST to the link applies nothing
    assert account(app).email == EMAIL
    assert client.post(link, data={"csrf_token": token_of(link)}).status_code == 200
    assert account(app).email == NEW
