"""The pages in a real Chromium: Spanish, no console errors, htmx configured by its meta tag."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.browser


def test_home_in_spanish_without_errors(page, live_server):
    # The browser asks for English (Accept-Language en-US): the portal still speaks Spanish.
    response = page.goto(live_server + "/")
    assert response.status == 200
    assert page.get_attribute("html", "lang") == "es-MX"
    assert page.locator("h1").inner_text() == "Factura tu ticket"
    page.wait_for_function("window.htmx !== undefined")
    assert page.evaluate("htmx.version").startswith("2.0.")
    assert page.evaluate("htmx.config.allowEval") is False
    assert page.evaluate("htmx.config.includeIndicatorStyles") is False
    assert page.errors == []  # includes any Content-Security-Policy violation


def test_language_switch_and_back(page, live_server):
    page.goto(live_server + "/")
    page.get_by_role("button", name="English").click()
    page.wait_for_url(live_server + "/")
    assert page.get_attribute("html", "lang") == "en"
    assert page.locator("h1").inner_text() == "Invoice your receipt"
    page.get_by_role("button", name="Español").click()
    assert page.locator("h1").inner_text() == "Factura tu ticket"
    assert page.errors == []


def test_missing_page_is_a_spanish_404(page, live_server):
    response = page.goto(live_server + "/no-existe")
    assert response.status == 404
    assert "Página no encontrada" in page.locator("h1").inner_text()
    assert [e for e in page.errors if "404" not in e] == []
