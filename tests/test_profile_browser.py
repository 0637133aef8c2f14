"""Datos fiscales in a real Chromium: the modal dialog from Mi cuenta (the message of a wrong
CP inside it, Esc closes it, focus back on the link), and the same editor as a page without
JavaScript."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.flows import RFC, browser_sign_in, registered_account

pytestmark = pytest.mark.browser

BAD_CP = "Ese código postal no está en el catálogo del SAT"
SAVED = "Guardamos sus datos fiscales."


def opened(page, dialog) -> None:
    """The dialog is shown, and htmx has wired its fields (that happens as the swap settles,
    a moment after the dialog opens)."""
    expect(dialog).to_be_visible()
    expect(page.locator("#modal.htmx-settling")).to_have_count(0)


def fill_profile(scope, cp: str, js: bool) -> None:
    scope.get_by_label("Nombre o razón social").fill("INGRID XODAR JIMENEZ")
    scope.get_by_label("Código postal").fill(cp)
    scope.get_by_label("Régimen fiscal").select_option("612")
    uso = scope.get_by_label("Uso del CFDI")
    if js:  # the usos of 612 arrive from the server: G.., I.., D.., S01, CP01 and "Elija…"
        expect(uso.locator("option")).to_have_count(24)
    uso.select_option("G03")
    scope.get_by_label("Correos para enviar sus facturas").fill("conta@example.com")


def test_fiscal_profile_in_a_modal_dialog(page, live_server, app):
    browser_sign_in(page, live_server, registered_account(app))
    opener = page.get_by_role("link", name="Datos fiscales", exact=True)
    opener.click()
    dialog = page.get_by_role("dialog", name="Datos fiscales")
    expect(dialog).to_be_visible()
    assert page.url.endswith("/cuenta/")  # the page stayed; the form is in the dialog
    expect(dialog.get_by_text(RFC)).to_be_visible()
    expect(dialog.get_by_label("Nombre o razón social")).to_be_focused()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    expect(opener).to_be_focused()

    opener.click()
    opened(page, dialog)
    # Choosing a régimen offers only its usos (616: G02, S01, CP01).
    dialog.get_by_label("Régimen fiscal").select_option("616")
    expect(dialog.get_by_label("Uso del CFDI").locator("option[value]")).to_have_count(4)
    fill_profile(dialog, cp="00000", js=True)
    dialog.get_by_role("button", name="Guardar").click()
    cp = dialog.get_by_label("Código postal")
    expect(cp).to_have_accessible_description(re.compile(BAD_CP))
    expect(dialog.get_by_text(BAD_CP)).to_be_visible()
    assert page.url.endswith("/cuenta/")
    opened(page, dialog)
    cp.fill("76028")
    dialog.get_by_role("button", name="Guardar").click()
    page.wait_for_url("**/cuenta/?perfil=1")
    expect(page.get_by_text(SAVED)).to_be_visible()
    expect(page.get_by_text("INGRID XODAR JIMENEZ")).to_be_visible()
    assert page.errors == []  # no console errors, no CSP violations


def test_fiscal_profile_page_without_javascript(browser, live_server, app):
    context = browser.new_context(java_script_enabled=False, locale="en-US")
    page = context.new_page()
    try:
        browser_sign_in(page, live_server, registered_account(app))
        page.get_by_role("link", name="Datos fiscales", exact=True).click()
        page.wait_for_url("**/cuenta/perfil/")
        fill_profile(page, cp="00000", js=False)
        page.get_by_role("button", name="Guardar").click()
        expect(page.get_by_label("Código postal")).to_have_accessible_description(
            re.compile(BAD_CP)
        )
        page.get_by_label("Código postal").fill("76028")
        page.get_by_role("button", name="Guardar").click()
        page.wait_for_url("**/cuenta/?perfil=1")
        expect(page.get_by_text(SAVED)).to_be_visible()
        expect(page.get_by_text("76028")).to_be_visible()
    finally:
        context.close()
