"""The ticket flow on a slow network: Chromium under CDP network emulation of Slow 3G
(2,000 ms latency, 50,000 B/s each way) goes from the branch to the invoice.

The time is printed (run with -s to see it), never asserted: bench/weight.py reports it too.
"""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import expect

pytestmark = [pytest.mark.browser, pytest.mark.run_once]  # a network audit: once

SLOW_3G = {
    "offline": False,
    "latency": 2000,
    "downloadThroughput": 50_000,
    "uploadThroughput": 50_000,
}


def test_invoice_a_ticket_on_slow_3g(page, live_server, demo):
    ticket = demo["fresh"][0]
    page.set_default_timeout(120_000)  # each step takes seconds on Slow 3G, more on a busy box
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send("Network.emulateNetworkConditions", SLOW_3G)
    begun = time.perf_counter()

    page.goto(live_server + "/facturar/")  # one merchant: straight to its branches
    page.get_by_label("Sucursal Centro Histórico").check()  # the branch and the RFC: one page
    page.get_by_label("RFC", exact=True).fill("XOJI740919U48")
    page.get_by_role("button", name="Siguiente").click()
    expect(page.locator("h1")).to_have_text("Datos del ticket")

    page.get_by_label("Número de orden", exact=True).fill(ticket["order"])
    page.get_by_label("Número de ticket", exact=True).fill(ticket["number"])
    page.get_by_label("Total del ticket", exact=True).fill(f"{ticket['total']:.2f}")
    # A pause mid-name sends the field for checking; its answer, 2 s away, must not undo
    # what was typed after it (nor the régimen's answer the uso chosen before it arrived).
    name = page.get_by_label("Nombre o razón social")
    name.press_sequentially("INGRID")
    page.wait_for_timeout(1200)
    name.press_sequentially(" XODAR JIMENEZ")
    page.get_by_label("Código postal").fill("76028")
    page.get_by_label("Régimen fiscal").select_option("612")
    page.get_by_label("Uso del CFDI").select_option("G03")
    page.get_by_label("Correo electrónico").fill("ingrid@example.com")
    expect(page.locator(".htmx-request")).to_have_count(0)
    expect(name).to_have_value("INGRID XODAR JIMENEZ")
    expect(page.get_by_label("Uso del CFDI")).to_have_value("G03")
    page.get_by_role("button", name="Generar factura").click()

    page.wait_for_url("**/facturar/factura/**")
    expect(page.locator("h1")).to_have_text("Su factura está lista")
    assert f"${ticket['total']:,.2f}" in page.locator("dl").inner_text()
    elapsed = time.perf_counter() - begun
    print(f"\nSlow 3G (2,000 ms, 50,000 B/s): branch → RFC → ticket → invoice in {elapsed:.1f} s")
    # htmx logs the check it abandons when a newer keystroke replaces it (hx-sync replace).
    errors = [e for e in page.errors if not e.startswith(("htmx:sendAbort", "htmx:afterRequest"))]
    assert errors == [], errors
