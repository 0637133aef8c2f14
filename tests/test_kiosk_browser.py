"""A kiosk in a real Chromium: enrol, invoice a ticket, go idle, and nothing of the customer
remains; "Continuar en mi teléfono" shows its QR."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from playwright.sync_api import expect

from tests.flows import enrol_link, fill_ticket

pytestmark = pytest.mark.browser

CUSTOMER = ("XOJI740919U48", "xoji740919u48", "ingrid@example.com", "INGRID XODAR JIMENEZ")
SMALL_TARGETS = """() => [...document.querySelectorAll(
    'a, button, input:not([type=hidden]), select, summary')]
  .filter(e => e.offsetParent !== null && e.getBoundingClientRect().right > 0)
  .filter(e => { const r = e.getBoundingClientRect(); return r.height < 48 || r.width < 48; })
  .map(e => e.outerHTML.slice(0, 80))"""
VALUES = "() => [...document.querySelectorAll('input, select')].map(e => e.value).join(' ')"


@pytest.fixture
def app(make_app):
    return make_app(WTF_CSRF_ENABLED=True)  # the kiosk's forms and pings carry the token


def _enrol(page, live_server, app):
    page.goto(live_server + enrol_link(app))
    page.get_by_role("button", name="Dar de alta este quiosco").click()
    page.wait_for_url("**/kiosco/")
    expect(page.locator("h1")).to_have_text("Facture su ticket aquí")


def _to_ticket_step(page):
    page.get_by_role("link", name="Comenzar").click()
    page.get_by_label("RFC", exact=True).fill("xoji740919u48")
    page.get_by_role("button", name="Siguiente").click()  # answered with the ticket step
    expect(page.locator("h1")).to_have_text("Datos del ticket")


def _nothing_of_the_customer(page):
    page.wait_for_load_state("load")
    shown = page.content() + page.evaluate(VALUES)
    for trace in CUSTOMER:
        assert trace not in shown


def test_invoice_at_the_kiosk_then_idle_wipes_everything(page, live_server, app, demo):
    ticket = demo["fresh"][0]
    _enrol(page, live_server, app)
    assert page.evaluate("htmx.config.historyCacheSize") == 0
    assert page.evaluate(SMALL_TARGETS) == []
    assert page.get_by_role("link", name="Entrar").count() == 0
    _to_ticket_step(page)
    fill_ticket(page, ticket)
    # The régimen's answer refreshes the usos list: choose the uso once it has come. (Not
    # "networkidle": that is reached once per page, long before, and would not wait.)
    expect(page.locator(".htmx-request")).to_have_count(0)
    page.get_by_label("Uso del CFDI").select_option("G03")
    expect(page.locator(".htmx-request")).to_have_count(0)
    assert page.evaluate(SMALL_TARGETS) == []  # every field, button, link and "?" ≥ 48 px
    page.get_by_role("button", name="Generar factura").click()
    page.wait_for_url("**/facturar/factura/**")
    expect(page.locator("h1")).to_have_text("Su factura está lista")
    expect(page.get_by_text("Enviamos la factura (XML y PDF) a ingrid@example.com")).to_be_visible()
    assert page.get_by_role("link", name="Descargar PDF").count() == 0

    # "Imprimir" loads the PDF in a hidden frame and prints it. Headless Chromium cannot print
    # a PDF frame (no print preview), so only that last call is replaced here.
    page.evaluate(
        """() => Object.defineProperty(HTMLIFrameElement.prototype, "contentWindow", {
             get() { return {print() { window.printed = (window.printed || 0) + 1; }}; }})"""
    )
    page.get_by_role("link", name="Imprimir").click()
    frame = page.locator("iframe#impresion")
    assert live_server + "/kiosco/factura/" in frame.get_attribute("src")
    # The frame loads, then prints. (A function, not an expression: the page's CSP forbids the
    # eval() Playwright would poll an expression with.)
    page.wait_for_function("() => window.printed")
    assert page.evaluate("window.printed") == 1
    assert any(f.url.endswith(".pdf") for f in page.frames)
    assert page.url.count("/facturar/factura/") == 1  # the page stayed

    # The customer walks away. The page's timers run on a clock that the test moves (paused
    # otherwise): the warning and its countdown come exactly when due, and "Continuar" is
    # pressed in time however slow the machine. (The idle time and the countdown stay the
    # configured ones, so the server does not wipe the session first on its own clock.)
    idle = app.config["KIOSK_IDLE_SECONDS"] * 1000
    countdown = app.config["KIOSK_COUNTDOWN_SECONDS"] * 1000
    page.clock.install()
    page.clock.pause_at(datetime.now() + timedelta(minutes=1))
    page.reload()
    warning = page.get_by_role("dialog", name="¿Sigue ahí?")
    page.clock.run_for(idle - 1000)
    expect(warning).to_be_hidden()
    page.clock.run_for(1000)
    expect(warning).to_be_visible()
    expect(warning).to_contain_text("La sesión se borrará en")
    page.get_by_role("button", name="Continuar").click()  # not yet
    expect(warning).to_be_hidden()
    assert "/facturar/factura/" in page.url
    page.clock.run_for(idle)
    expect(warning).to_be_visible()
    page.clock.run_for(countdown)
    page.wait_for_url("**/kiosco/")
    page.clock.resume()
    expect(page.locator("h1")).to_have_text("Facture su ticket aquí")
    _nothing_of_the_customer(page)

    # Back, back, back: every page is asked for again, and there is nothing left to show.
    # (The invoice, the RFC step, which the ticket step replaced in place, the start page.)
    for _ in range(3):
        page.go_back()
        _nothing_of_the_customer(page)
    assert page.url.endswith("/kiosco/")
    page.goto(live_server + "/kiosco/")
    page.get_by_role("link", name="Comenzar").click()
    assert page.get_by_label("RFC", exact=True).input_value() == ""
    assert [e for e in page.errors if "404" not in e] == []


def test_continue_on_the_phone_shows_a_qr(page, live_server, app, demo):
    ticket = demo["fresh"][0]
    _enrol(page, live_server, app)
    _to_ticket_step(page)
    page.get_by_label("Número de orden", exact=True).fill(ticket["order"])
    page.get_by_label("Número de ticket", exact=True).fill(ticket["number"])
    page.get_by_role("button", name="Continuar en mi teléfono").click()
    dialog = page.get_by_role("dialog", name="Continúe en su teléfono")
    expect(dialog).to_be_visible()
    qr = dialog.get_by_role("img", name="Código QR del enlace para continuar en su teléfono")
    expect(qr).to_be_visible()
    # The data: URL loads under the CSP (decode() waits for the image, or fails if it cannot).
    assert qr.evaluate("img => img.decode().then(() => img.naturalWidth)") > 100
    dialog.get_by_role("button", name="Seguir aquí").click()
    expect(dialog).to_be_hidden()
    assert page.get_by_label("Número de ticket", exact=True).input_value() == ticket["number"]
    assert page.errors == []


def test_without_javascript_the_page_goes_home_after_the_idle_time(browser, live_server, app, demo):
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    _enrol(page, live_server, app)
    _to_ticket_step(page)
    page.get_by_label("Correo electrónico").fill("ingrid@example.com")
    usual = {k: app.config[k] for k in ("KIOSK_IDLE_SECONDS", "KIOSK_COUNTDOWN_SECONDS")}
    app.config.update(KIOSK_IDLE_SECONDS=1, KIOSK_COUNTDOWN_SECONDS=1)
    page.reload()  # the refresh is due 2 s after the page loads
    page.wait_for_url("**/kiosco/?expirado=1")
    # The next customer has the usual time (with 2 s, a slow test would see the next page
    # go home too before it looked at it).
    app.config.update(usual)
    assert "La sesión anterior terminó por inactividad" in page.content()
    _nothing_of_the_customer(page)
    page.get_by_role("link", name="Comenzar").click()
    assert page.get_by_label("RFC", exact=True).input_value() == ""
    context.close()
