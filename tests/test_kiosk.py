"""Kiosk terminals: enrolment, the device cookie, the kiosk's rules, the wipe, and
"Continuar en mi teléfono"."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from itsdangerous.timed import TimestampSigner
from sqlalchemy import select

from tests.flows import (
    PASSWORD,
    RECEPTOR,
    RFC,
    enrol,
    enrol_link,
    sign_in,
    ticket_data,
    verified_account,
)
from webapp.extensions import db
from webapp.kiosk import devices, routes
from webapp.kiosk.web import COOKIE
from webapp.models import (
    CustomerProfile,
    DeliveryEmail,
    Invoice,
    Kiosk,
    MailMessage,
)

PERSONAL = ("rfc", "nombre", "cp", "email")


def clock_ahead(seconds: int):
    """itsdangerous' clock moved on by `seconds` (links expire)."""
    real = TimestampSigner.get_timestamp
    return lambda self: real(self) + seconds


def idle_for(app, seconds: int) -> None:
    """The kiosks' last request, `seconds` ago."""
    with app.app_context():
        for k in db.session.scalars(select(Kiosk)):
            k.last_seen_at = datetime.now(UTC) - timedelta(seconds=seconds)
        db.session.commit()


@pytest.fixture
def kiosk(app, client, demo):
    enrol(app, client)
    return client


def to_ticket_step(client, rfc=RFC) -> str:
    r = client.post("/facturar/demo/rfc", data={"rfc": rfc})  # answers with the ticket step
    page = r.get_data(as_text=True)
    assert r.status_code == 200 and "Datos del ticket" in page
    return re.search(r'name="key" type="hidden" value="([^"]+)"', page).group(1)


# --- Enrolment --------------------------------------------------------------------------


def test_enrolment_link_is_confirmed_by_a_button_and_works_once(app, client, demo, tmp_path):
    link = enrol_link(app, tmp_path=tmp_path)
    assert (tmp_path / "alta.svg").read_text().startswith("<?xml")
    page = client.get(link)  # a link previewer or a mail scanner does this much
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "Dar de alta este quiosco" in html
    assert "Sucursal Centro Histórico" in html and page.headers["Cache-Control"] == "no-store"
    assert client.get_cookie(COOKIE) is None
    with app.app_context():
        assert db.session.scalars(select(Kiosk)).one().state == "pending"

    r = client.post(link)
    assert r.status_code == 303
    cookie = next(c for c in r.headers.getlist("Set-Cookie") if c.startswith(COOKIE + "="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Max-Age=157680000" in cookie
    assert "Secure" not in cookie  # plain http here; https requests get Secure
    value = client.get_cookie(COOKIE).value
    with app.app_context():
        kiosk = db.session.scalars(select(Kiosk)).one()
        assert kiosk.state == "active" and kiosk.enrolled_at is not None
        assert value.startswith(kiosk.public_id + ".")
        assert value.split(".", 1)[1] not in kiosk.secret_hash  # only a hash is stored

    other = app.test_client()
    assert other.get(link).status_code == 410  # used: its fingerprint changed
    assert other.post(link).status_code == 410
    assert other.get_cookie(COOKIE) is None


def test_enrolment_needs_the_csrf_token(make_app, demo):
    app = make_app(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    link = enrol_link(app)
    page = client.get(link).get_data(as_text=True)
    assert client.post(link).status_code == 400
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page).group(1)
    assert client.post(link, data={"csrf_token": token}).status_code == 303


def test_enrolment_link_expires(app, client, demo, monkeypatch):
    link = enrol_link(app)
    monkeypatch.setattr(TimestampSigner, "get_timestamp", clock_ahead(25 * 3600))
    assert client.get(link).status_code == 410
    assert client.post(link).status_code == 410


def test_cli_lists_and_revokes(app, client, demo):
    enrol(app, client)
    enrol_link(app, "POLANCO", "Caja 2")
    runner = app.test_cli_runner()
    listing = runner.invoke(args=["kiosk", "list"]).output.splitlines()
    first, _ = listing[0].split("\t", 1)  # ids come from the database (not always 1)
    assert listing[0].startswith(f"{first}\tactive\tdemo/CENTRO\tCaja 1")
    assert listing[1].startswith(f"{int(first) + 1}\tpending\tdemo/POLANCO\tCaja 2")
    assert runner.invoke(args=["kiosk", "revoke", first]).exit_code == 0
    assert runner.invoke(args=["kiosk", "list"]).output.startswith(f"{first}\trevoked")
    assert runner.invoke(args=["kiosk", "revoke", "999999"]).exit_code != 0
    bad = runner.invoke(args=["kiosk", "enrol", "--branch", "NOPE"])
    assert bad.exit_code != 0 and "CENTRO" in bad.output


# --- The device cookie ------------------------------------------------------------------


def test_the_cookie_binds_the_kiosk_to_its_branch(app, client, demo):
    enrol(app, client, "POLANCO")
    for url in ("/", "/facturar/", "/cuenta/entrar", "/facturas/"):
        r = client.get(url)
        assert r.status_code == 303 and r.headers["Location"] == "/kiosco/", url
    start = client.get("/kiosco/").get_data(as_text=True)
    assert "Sucursal Polanco" in start and "/facturar/demo/rfc" in start
    assert client.get("/facturar/demo/").headers["Location"].endswith("/facturar/demo/rfc")
    # Choosing another branch changes nothing: the kiosk invoices at its own.
    client.post("/facturar/demo/", data={"branch": str(demo["fresh"][0]["branch_id"])})
    key = to_ticket_step(client)
    page = client.get("/facturar/demo/ticket").get_data(as_text=True)
    assert "Sucursal Polanco" in page and "Cambiar sucursal" not in page
    t = demo["fresh"][0]  # a CENTRO ticket
    r = client.post("/facturar/demo/ticket", data=ticket_data(t, key))
    assert r.status_code == 422 and "No encontramos ese número de ticket" in r.get_data(True)


@pytest.mark.parametrize("revoked", [True, False], ids=["revoked", "forged"])
def test_a_revoked_or_unknown_kiosk_is_a_normal_browser_again(app, client, demo, revoked):
    value = enrol(app, client)
    to_ticket_step(client)
    if revoked:
        listing = app.test_cli_runner().invoke(args=["kiosk", "list"]).output
        kiosk_id = listing.split("\t", 1)[0]
        assert app.test_cli_runner().invoke(args=["kiosk", "revoke", kiosk_id]).exit_code == 0
    else:
        client.set_cookie(COOKIE, value[:-3] + "xyz")
    r = client.get("/")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "Entrar" in html and 'class="kiosk"' not in html
    assert client.get_cookie(COOKIE) is None  # cleared
    assert "no-store" not in r.headers.get("Cache-Control", "")
    with client.session_transaction() as session:
        assert "flow" not in session  # what the kiosk kept is gone too
    assert client.get("/kiosco/").headers["Location"] == "/"


# --- The kiosk's pages ------------------------------------------------------------------


def test_kiosk_pages_are_not_stored_offer_no_saved_values_and_keep_no_history(kiosk, client):
    assert client.get("/kiosco/").headers["Cache-Control"] == "no-store"
    to_ticket_step(client)
    for url in ("/facturar/demo/rfc", "/facturar/demo/ticket", "/facturar/demo/"):
        r = client.get(url, follow_redirects=True)
        html = r.get_data(as_text=True)
        assert r.headers["Cache-Control"] == "no-store", url
        assert '"historyCacheSize":0' in html and "<body hx-headers=" in html
        assert 'class="kiosk"' in html
        assert ">Entrar<" not in html and "Mi cuenta" not in html
    rfc_page = client.get("/facturar/demo/rfc").get_data(as_text=True)
    ticket_page = client.get("/facturar/demo/ticket").get_data(as_text=True)
    for name, html in [("rfc", rfc_page)] + [(n, ticket_page) for n in PERSONAL[1:]]:
        tag = re.search(rf'<input[^>]*\bid="{name}"[^>]*>', html).group(0)
        assert 'autocomplete="off"' in tag, tag
    # The idle wipe: app.js reads these; without JavaScript the meta refresh goes home.
    assert 'data-kiosk-idle="60" data-kiosk-countdown="15"' in ticket_page
    assert '<noscript><meta http-equiv="refresh" content="75;url=/kiosco/?expirado=1">' in (
        ticket_page
    )
    assert "Continuar en mi teléfono" in ticket_page
    # The branch is fixed: the steps start at the RFC.
    steps = re.search(r'<ol class="progress".*?</ol>', ticket_page, re.S).group(0)
    assert "Sucursal" not in steps and "RFC" in steps


def test_a_normal_browser_is_unchanged(client, demo):
    steps = client.get("/facturar/demo/").get_data(as_text=True)
    assert re.search(r'<ol class="progress".*?Sucursal.*?</ol>', steps, re.S)
    html = client.get("/").get_data(as_text=True)
    assert "historyCacheSize" not in html and "kiosk" not in html
    assert re.search(r'<body hx-headers=\'\{"X-CSRFToken": "[^"]+"\}\'>', html)
    assert 'autocomplete="email"' in client.get("/cuenta/registro").get_data(as_text=True)


def test_invoice_at_the_kiosk_is_emailed_printable_and_wiped_by_terminar(app, kiosk, demo):
    client = kiosk
    t = demo["fresh"][0]
    key = to_ticket_step(client)
    r = client.post("/facturar/demo/ticket", data=ticket_data(t, key, email=""))
    assert r.status_code == 422 and "Escriba su correo" in r.get_data(as_text=True)
    r = client.post("/facturar/demo/ticket", data=ticket_data(t, key))
    assert r.status_code == 303
    result_url = r.headers["Location"]
    public_id = result_url.rsplit("/", 1)[-1]
    html = client.get(result_url).get_data(as_text=True)
    assert "Enviamos la factura (XML y PDF) a ingrid@example.com" in html
    assert "Descargar" not in html and "data-print" in html and ">Terminar<" in html
    pdf = client.get(f"/kiosco/factura/{public_id}.pdf")
    assert pdf.data.startswith(b"%PDF") and pdf.headers["Content-Disposition"].startswith("inline")
    assert "frame-ancestors 'self'" in pdf.headers["Content-Security-Policy"]
    with app.app_context():
        assert db.session.scalars(select(MailMessage)).one().to_addrs == RECEPTOR["email"]

    r = client.post("/kiosco/terminar")
    assert r.status_code == 303 and r.headers["Location"] == "/kiosco/"
    assert client.get(result_url).status_code == 404
    assert client.get(f"/kiosco/factura/{public_id}.pdf").status_code == 404
    rfc = client.get("/facturar/demo/rfc").get_data(as_text=True)
    assert RFC not in rfc
    assert client.get("/facturar/demo/ticket").status_code == 303  # no RFC: back to the start
    with client.session_transaction() as session:
        assert set(session) <= {"csrf_token", "_fresh"}  # _fresh: Flask-Login's flag


def test_terminar_also_forgets_the_language(kiosk, client):
    client.post("/idioma", data={"lang": "en", "next": "/kiosco/"})
    assert '<html lang="en">' in client.get("/kiosco/").get_data(as_text=True)
    client.post("/kiosco/terminar")
    assert client.get_cookie("lang") is None


def test_an_idle_kiosk_session_is_discarded_on_its_next_request(app, kiosk, client, demo):
    t = demo["fresh"][0]
    key = to_ticket_step(client)
    idle_for(app, 60 + 15 + 5 + 1)  # idle, countdown, and the 5 s granularity of last_seen_at
    r = client.post("/facturar/demo/ticket", data=ticket_data(t, key))
    assert r.status_code == 303 and r.headers["Location"] == "/kiosco/?expirado=1"
    with client.session_transaction() as session:
        assert "flow" not in session
    html = client.get("/kiosco/?expirado=1").get_data(as_text=True)
    assert "La sesión anterior terminó por inactividad" in html
    assert RFC not in client.get("/facturar/demo/rfc").get_data(as_text=True)

    # An htmx request (inline validation) is sent to the start screen as a whole page.
    to_ticket_step(client)
    idle_for(app, 100)
    r = client.post(
        "/facturar/demo/ticket/campo/total",
        data=ticket_data(t, key),
        headers={"HX-Request": "true"},
    )
    assert r.status_code == 204 and r.headers["HX-Redirect"] == "/kiosco/?expirado=1"


def test_activity_keeps_the_session(app, kiosk, client):
    to_ticket_step(client)
    idle_for(app, 74)  # "Continuar" at the end of the countdown
    r = client.post("/kiosco/sigo-aqui")
    assert r.status_code == 204 and "Set-Cookie" not in r.headers  # the session is untouched
    with client.session_transaction() as session:
        assert session["flow"]["rfc"] == RFC
    with app.app_context():
        seen = db.session.scalars(select(Kiosk)).one().last_seen_at
        assert datetime.now(UTC) - seen < timedelta(seconds=5)


def test_a_start_screen_idle_for_long_greets_the_next_customer(app, kiosk, client):
    client.get("/kiosco/")
    idle_for(app, 3600)
    r = client.get("/facturar/demo/rfc")  # "Comenzar"
    assert r.status_code == 200 and "Capture su RFC" in r.get_data(as_text=True)


def test_inline_checks_do_not_write_the_session(kiosk, client, demo):
    """A cookie written by an htmx check that ends after a submit would undo the submit."""
    key = to_ticket_step(client)
    r = client.post(
        "/facturar/demo/ticket/campo/total",
        data=ticket_data(demo["fresh"][0], key),
        headers={"HX-Request": "true"},
    )
    assert r.status_code == 200 and "Set-Cookie" not in r.headers


def test_the_start_screen_wipes_and_keeps_a_language_chosen_there(kiosk, client):
    to_ticket_step(client)
    client.get("/", follow_redirects=True)  # e.g. the header's link, mid-flow
    with client.session_transaction() as session:
        assert "flow" not in session
    client.post("/idioma", data={"lang": "en", "next": "/kiosco/"})
    assert '<html lang="en">' in client.get("/kiosco/").get_data(as_text=True)
    client.get("/kiosco/?expirado=1")  # where the meta refresh leads without JavaScript
    assert client.get_cookie("lang") is None


def test_a_signed_in_customers_data_never_fills_on_a_kiosk(app, client, demo):
    with app.app_context():
        account_id = verified_account(RFC, RECEPTOR["email"])
        db.session.add(
            CustomerProfile(
                account_id=account_id,
                rfc=RFC,
                name="INGRID XODAR JIMENEZ",
                cp="76028",
                regimen_fiscal="612",
                uso_cfdi="G03",
                emails=[DeliveryEmail(email="factura.ingrid@example.com")],
            )
        )
        db.session.commit()
    assert sign_in(client, RFC, PASSWORD).status_code == 303
    client.post("/facturar/demo/", data={"branch": str(demo["fresh"][0]["branch_id"])})
    to_ticket_step(client)
    normal = client.get("/facturar/demo/ticket").get_data(as_text=True)
    assert "INGRID XODAR JIMENEZ" in normal  # the fill works where it should

    # The same browser session, now carrying a kiosk's device cookie.
    value = enrol(app, app.test_client())
    client.set_cookie(COOKIE, value)
    key = to_ticket_step(client)
    page = client.get("/facturar/demo/ticket").get_data(as_text=True)
    assert "INGRID XODAR JIMENEZ" not in page and "factura.ingrid@example.com" not in page
    assert client.get("/cuenta/").headers["Location"] == "/kiosco/"
    t = demo["fresh"][1]
    r = client.post("/facturar/demo/ticket", data=ticket_data(t, key, email="otra@example.com"))
    assert r.status_code == 303
    with app.app_context():
        invoice = db.session.scalars(select(Invoice)).one()
        assert invoice.account_id is None  # asked for at a kiosk, not by the account
        profile = db.session.scalars(select(CustomerProfile)).one()
        assert [e.email for e in profile.emails] == ["factura.ingrid@example.com"]
    client.delete_cookie(COOKIE)
    assert client.get("/cuenta/").status_code == 302  # signed out by the kiosk


# --- Continuar en mi teléfono -----------------------------------------------------------


@pytest.fixture
def links(monkeypatch):
    """The links the kiosk's QR codes carry."""
    made = []

    def fake_qr(url):
        made.append(url)
        return "data:image/svg+xml,qr"

    monkeypatch.setattr(routes, "qr_data_uri", fake_qr)
    return made


def test_continue_on_the_phone_restores_the_ticket(app, kiosk, demo, links):
    client = kiosk
    t = demo["fresh"][0]
    key = to_ticket_step(client)
    typed = ticket_data(t, key)
    r = client.post("/kiosco/telefono", data=typed, headers={"HX-Request": "true"})
    fragment = r.get_data(as_text=True)
    assert r.status_code == 200 and "<html" not in fragment
    assert 'id="modal-title"' in fragment and 'src="data:image/svg+xml,qr"' in fragment
    link = links[-1]
    assert link.startswith("http://localhost/facturar/continuar/")
    assert len(link) < 400  # a QR a phone reads at arm's length

    phone = app.test_client()
    r = phone.get(link)
    assert r.status_code == 303 and r.headers["Location"] == "/facturar/demo/ticket"
    html = phone.get("/facturar/demo/ticket").get_data(as_text=True)
    assert RFC in html and "Sucursal Centro Histórico" in html
    for name, value in (("order_number", t["order"]), ("ticket_number", t["number"])):
        assert re.search(rf'id="{name}"[^>]*value="{value}"', html), name
    assert f'value="{t["total"]}"' in html
    assert RECEPTOR["nombre"] not in html and RECEPTOR["email"] not in html  # never sent
    assert 'class="kiosk"' not in html and "Entrar" in html  # a normal browser

    # Once only: a second phone (or the first, again) gets nothing.
    assert app.test_client().get(link).status_code == 410
    assert phone.get(link).status_code == 410

    # The phone finishes the invoice.
    key = re.search(r'name="key" type="hidden" value="([^"]+)"', html).group(1)
    r = phone.post("/facturar/demo/ticket", data=ticket_data(t, key))
    assert r.status_code == 303 and "/facturar/factura/" in r.headers["Location"]


def test_continue_on_the_phone_link_expires(app, kiosk, demo, links, monkeypatch):
    to_ticket_step(kiosk)
    kiosk.post("/kiosco/telefono", data={"order_number": "1", "ticket_number": "2"})
    monkeypatch.setattr(TimestampSigner, "get_timestamp", clock_ahead(16 * 60))
    assert app.test_client().get(links[-1]).status_code == 410


def test_a_newer_link_replaces_the_kiosks_older_one(app, kiosk, demo, links):
    to_ticket_step(kiosk)
    kiosk.post("/kiosco/telefono", data={})
    kiosk.post("/kiosco/telefono", data={})
    assert app.test_client().get(links[0]).status_code == 410
    assert app.test_client().get(links[1]).status_code == 303


def test_continue_without_javascript_is_a_page(kiosk, links):
    to_ticket_step(kiosk)
    r = kiosk.post("/kiosco/telefono", data={"ticket_number": "1"})
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and html.startswith("<!doctype html>")
    assert "Seguir aquí" in html and "/facturar/demo/ticket" in html


def test_continue_is_only_for_kiosks(client, demo):
    assert client.post("/kiosco/telefono").status_code == 404
    assert client.get("/kiosco/factura/x.pdf").status_code == 404
    assert client.get("/facturar/continuar/nonsense").status_code == 410


def test_devices_refuse_forged_cookies(app, demo):
    with app.app_context():
        assert devices.lookup(db.session, "") is None
        assert devices.lookup(db.session, "no-dot") is None
        assert devices.lookup(db.session, "x." + "a" * 300) is None
