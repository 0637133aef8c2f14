"""The pages in a real Chromium: Spanish, no console errors, htmx configured by its meta tag."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.flows import fill_ticket, registered_account

pytestmark = pytest.mark.browser


def test_home_in_spanish_without_errors(page, live_server):
    # The browser asks for English (Accept-Language en-US): the portal still speaks Spanish.
    response = page.goto(live_server + "/")
    assert response.status == 200
    assert page.get_attribute("html", "lang") == "es-MX"
    assert page.locator("h1").inner_text() == "Factura tu ticket"
    page.wait_for_load_state("load")  # htmx is a deferred script: it ran by now
    assert page.evaluate("htmx.version").startswith("2.0.")
    assert page.evaluate("htmx.config.allowEval") is False
    assert page.evaluate("htmx.config.includeIndicatorStyles") is False
    assert page.errors == []  # includes any Content-Security-Policy violation


def test_language_switch_and_back(page, live_server):
    page.goto(live_server + "/")
    # The same URL comes back in the other language: wait for the language, not for the URL.
    page.get_by_role("button", name="English").click()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    expect(page.locator("h1")).to_have_text("Invoice your receipt")
    page.get_by_role("button", name="Español").click()
    expect(page.locator("html")).to_have_attribute("lang", "es-MX")
    expect(page.locator("h1")).to_have_text("Factura tu ticket")
    assert page.errors == []


def test_missing_page_is_a_spanish_404(page, live_server):
    response = page.goto(live_server + "/no-existe")
    assert response.status == 404
    assert "Página no encontrada" in page.locator("h1").inner_text()
    assert [e for e in page.errors if "404" not in e] == []


def _to_ticket_step(page, live_server):
    page.goto(live_server + "/")
    page.get_by_role("link", name="Facturar un ticket").click()
    page.get_by_label("Sucursal Centro Histórico").check()  # the branch and the RFC: one page
    page.get_by_label("RFC", exact=True).fill("xoji740919u48")
    page.get_by_role("button", name="Siguiente").click()
    expect(page.locator("h1")).to_have_text("Datos del ticket")


def _check_result(page, ticket):
    page.wait_for_url("**/facturar/factura/**")
    expect(page.locator("h1")).to_have_text("Su factura está lista")
    expect(page.locator("dl")).to_contain_text(f"${ticket['total']:,.2f}")
    with page.expect_download() as download:
        page.get_by_role("link", name="Descargar PDF").click()
    assert download.value.suggested_filename.endswith(".pdf")
    with open(download.value.path(), "rb") as f:
        assert f.read(4) == b"%PDF"


def test_invoice_a_ticket_with_inline_validation(page, live_server, demo):
    ticket = demo["fresh"][0]
    _to_ticket_step(page, live_server)
    page.get_by_label("Número de orden", exact=True).fill(ticket["order"])
    page.get_by_label("Número de ticket", exact=True).fill(ticket["number"])
    total = page.get_by_label("Total del ticket", exact=True)
    total.fill("1.00")
    total.press("Tab")  # leaving the field asks the server, which answers next to it
    error = page.locator("#total-error")
    expect(error).to_contain_text("El total no coincide")
    assert total.get_attribute("aria-describedby").split() == ["total-hint", "total-error"]
    assert page.url.endswith("/facturar/demo/ticket")  # nothing was submitted
    page.get_by_label("Régimen fiscal").select_option("616")  # usos follow the régimen
    # 616 allows G02, S01 and CP01, after the empty "Elija…" choice.
    expect(page.locator("#uso_cfdi option")).to_have_count(4)
    fill_ticket(page, ticket)
    page.get_by_label("Total del ticket", exact=True).press("Tab")
    expect(page.locator("#total-error")).to_have_count(0)
    page.get_by_role("button", name="Generar factura").click()
    _check_result(page, ticket)
    assert page.errors == []


def test_invoice_a_ticket_without_javascript(browser, live_server, demo):
    context = browser.new_context(java_script_enabled=False, accept_downloads=True)
    page = context.new_page()
    ticket = demo["fresh"][1]
    _to_ticket_step(page, live_server)
    fill_ticket(page, ticket)
    page.get_by_label("Total del ticket", exact=True).fill("99999.99")
    page.get_by_role("button", name="Generar factura").click()
    expect(page.locator("#total-error")).to_contain_text("El total no coincide")
    page.get_by_label("Total del ticket", exact=True).fill(f"{ticket['total']:.2f}")
    page.get_by_role("button", name="Generar factura").click()
    _check_result(page, ticket)
    context.close()


def test_where_is_it_on_my_ticket(browser, live_server, demo):
    """Without JavaScript too, the picture is fetched only when the customer opens it (it
    cost a slow network two seconds on every ticket step when fetched at once)."""
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    pictures = []
    page.on("response", lambda r: "/static/ticket-" in r.url and pictures.append(r))
    _to_ticket_step(page, live_server)
    page.wait_for_load_state("networkidle")
    help_image = page.get_by_role("img", name="Ticket de ejemplo con el dato resaltado: Total")
    expect(help_image).to_be_hidden()
    assert pictures == []
    with page.expect_response(lambda r: "/static/ticket-total.svg" in r.url) as fetched:
        page.locator("#campo-total summary").click()
    expect(help_image).to_be_visible()
    svg = fetched.value
    assert svg.ok and svg.headers["content-type"].startswith("image/svg+xml")
    context.close()


def test_change_password_in_a_modal_dialog(page, live_server, app):
    password = registered_account(app)
    page.goto(live_server + "/cuenta/entrar")
    page.get_by_label("RFC o correo electrónico").fill("XOJI740919U48")
    page.get_by_label("Contraseña", exact=True).fill(password)
    page.get_by_role("button", name="Entrar").click()
    page.wait_for_url("**/cuenta/")
    opener = page.get_by_role("link", name="Cambiar contraseña")
    opener.click()
    dialog = page.get_by_role("dialog", name="Cambiar contraseña")
    expect(dialog).to_be_visible()
    assert page.url.endswith("/cuenta/")  # the page stayed; the form is in the dialog
    expect(page.get_by_label("Contraseña actual")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(opener).to_be_focused()
    opener.click()
    page.get_by_label("Contraseña actual").fill("no es esta")
    page.get_by_label("Contraseña", exact=True).fill("otra frase bastante larga")
    page.get_by_label("Confirmar contraseña").fill("otra frase bastante larga")
    dialog.get_by_role("button", name="Guardar").click()
    expect(dialog.get_by_text("La contraseña actual no es correcta.")).to_be_visible()
    page.get_by_label("Contraseña actual").fill(password)
    page.get_by_label("Contraseña", exact=True).fill("otra frase bastante larga")
    page.get_by_label("Confirmar contraseña").fill("otra frase bastante larga")
    dialog.get_by_role("button", name="Guardar").click()
    page.wait_for_url("**/cuenta/?cambiada=1")
    expect(page.get_by_text("Su contraseña cambió.")).to_be_visible()
    assert page.errors == []


def test_change_password_page_without_javascript(browser, live_server, app):
    password = registered_account(app)
    context = browser.new_context(java_script_enabled=False)
    page = context.new_page()
    page.goto(live_server + "/cuenta/entrar")
    page.get_by_label("RFC o correo electrónico").fill("ingrid@example.com")
    page.get_by_label("Contraseña", exact=True).fill(password)
    page.get_by_role("button", name="Entrar").click()
    page.get_by_role("link", name="Cambiar contraseña").click()
    page.wait_for_url("**/cuenta/contrasena")
    page.get_by_label("Contraseña actual").fill(password)
    page.get_by_label("Contraseña", exact=True).fill("otra frase bastante larga")
    page.get_by_label("Confirmar contraseña").fill("otra frase bastante larga")
    page.get_by_role("button", name="Guardar").click()
    expect(page.get_by_text("Su contraseña cambió.")).to_be_visible()
    context.close()


def _post_step(page, press) -> None:
    """Post the branch step's form by `press` and wait until htmx has swapped in the page it
    answers. The answer arriving is not enough: leaving the RFC field also asks for its inline
    check, whose message can show before the whole page is swapped, and typing into the old
    form before the swap would be typing into a form about to disappear."""
    form = page.locator("form[method=post]").first
    form.evaluate("f => f.setAttribute('data-before-post', '')")
    with page.expect_response(
        lambda r: r.request.method == "POST" and r.url.endswith("/facturar/demo/")
    ):
        press()
    expect(page.locator("form[data-before-post]")).to_have_count(0)


def test_a_form_returned_with_errors_focuses_the_first_field_to_fix(page, live_server, demo):
    page.goto(live_server + "/facturar/demo/")
    page.get_by_label("Sucursal Centro Histórico").check()
    page.get_by_label("RFC", exact=True).fill("NOESUNRFC")
    _post_step(page, page.get_by_role("button", name="Siguiente").click)  # a whole page comes back
    expect(page.locator("#rfc-error")).to_be_visible()
    expect(page.get_by_label("RFC", exact=True)).to_be_focused()


def test_a_slow_press_on_the_button_is_not_lost_to_the_inline_check(page, live_server, demo):
    """A finger rests on "Siguiente" a moment. Leaving the RFC field would ask for its inline
    check, whose answer takes the old message away and moves the button up before the finger
    lifts: the press must still submit the form."""
    page.goto(live_server + "/facturar/demo/")
    page.get_by_label("Sucursal Centro Histórico").check()
    page.get_by_label("RFC", exact=True).fill("NOESUNRFC")
    _post_step(page, lambda: page.get_by_label("RFC", exact=True).press("Enter"))
    expect(page.locator("#rfc-error")).to_be_visible()
    page.get_by_label("RFC", exact=True).fill("XOJI740919U48")
    page.get_by_role("button", name="Siguiente").hover()
    page.mouse.down()
    page.wait_for_timeout(800)  # the press lasts longer than a check's round trip
    page.mouse.up()
    expect(page.get_by_role("heading", level=1)).to_have_text("Datos del ticket")
