"""Mis facturas in a real Chromium, with htmx and without JavaScript: filter, sort, page,
download and compare with what was stamped, resend from the dialog."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from pathlib import Path

import pytest
from playwright.sync_api import expect
from sqlalchemy import select

from tests.flows import PASSWORD, browser_sign_in
from webapp.extensions import db
from webapp.models import Invoice
from webapp.panel.query import PAGE_SIZE
from webapp.services.stamping import files_with_pdf

pytestmark = pytest.mark.browser


def _stamped_files(app, public_ids):
    """XML, PDF (rendered now, as a first download would, and kept) and UUID of each."""
    with app.app_context():
        return {
            i.public_id: (i.xml, files_with_pdf(db.session, i).pdf, i.uuid)
            for i in db.session.scalars(select(Invoice).where(Invoice.public_id.in_(public_ids)))
        }


def rows(page):
    return page.locator("#resultados tbody tr:not(.more)")


def test_panel_with_htmx(page, live_server, app, stamped, history):
    files = _stamped_files(app, stamped)
    app.config["WTF_CSRF_ENABLED"] = True  # the forms and htmx carry their tokens
    browser_sign_in(page, live_server, PASSWORD)
    page.get_by_role("link", name="Mis facturas").click()
    expect(page.get_by_role("heading", level=1)).to_have_text("Mis facturas")
    expect(rows(page)).to_have_count(PAGE_SIZE)
    # The newest are the ones just stamped through the portal.
    newest = stamped[-1]
    expect(rows(page).first.locator('input[name="f"]')).to_have_value(newest)

    page.get_by_role("link", name="Cargar más").click()
    expect(rows(page)).to_have_count(2 * PAGE_SIZE)
    assert "c=" not in page.url  # more rows, same list

    search = page.get_by_label("Buscar")
    search.fill("farmacias")
    page.wait_for_url(re.compile(r"q=farmacias"))
    expect(rows(page).first).to_contain_text("FARMACIAS DEMO DEL NORTE")
    for text in rows(page).locator("td:nth-child(3)").all_inner_texts():
        assert text == "FARMACIAS DEMO DEL NORTE"
    search.fill("")
    page.get_by_label("Ordenar por").select_option("-total")
    page.wait_for_url(re.compile(r"orden=-total"))
    totals = [
        float(t.replace("$", "").replace(",", "").replace("MX", "").strip())
        for t in rows(page).locator("td.num").all_inner_texts()
    ]
    assert totals == sorted(totals, reverse=True) and len(totals) == PAGE_SIZE
    # The results were swapped in by htmx; the ZIP form still sends its CSRF token.
    page.get_by_label("Ordenar por").select_option("-fecha")
    page.wait_for_url(re.compile(r"orden=-fecha"))
    expect(rows(page).first.locator('input[name="f"]')).to_have_value(newest)
    rows(page).first.locator('input[name="f"]').check()
    with page.expect_download() as download:
        page.get_by_role("button", name="Descargar ZIP de las seleccionadas").click()
    with zipfile.ZipFile(download.value.path()) as archive:
        assert files[newest][0] in [archive.read(name) for name in archive.namelist()]

    page.goto(live_server + "/facturas/")
    row = rows(page).first
    xml, pdf, uuid = files[newest]
    with page.expect_download() as download:
        row.get_by_role("link", name="XML").click()
    assert Path(download.value.path()).read_bytes() == xml
    assert uuid in download.value.suggested_filename
    with page.expect_download() as download:
        row.get_by_role("link", name="PDF").click()
    assert Path(download.value.path()).read_bytes() == pdf

    row.get_by_role("link", name="Reenviar").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_be_visible()
    expect(page.locator("#modal.htmx-settling")).to_have_count(0)
    dialog.get_by_label("Enviar a").fill("conta@example.com, yo@example.com")
    dialog.get_by_role("button", name="Enviar por correo").click()
    expect(dialog.get_by_text("Enviamos la factura por correo")).to_be_visible()
    page.keyboard.press("Escape")
    expect(dialog).to_be_hidden()
    assert page.errors == []


def test_panel_without_javascript(browser, live_server, app, stamped, history):
    files = _stamped_files(app, stamped)
    app.config["WTF_CSRF_ENABLED"] = True  # the forms carry their tokens, as in production
    context = browser.new_context(java_script_enabled=False, accept_downloads=True)
    page = context.new_page()
    try:
        browser_sign_in(page, live_server, PASSWORD)
        page.goto(live_server + "/facturas/")
        expect(rows(page)).to_have_count(PAGE_SIZE)
        page.get_by_label("Estado").select_option("vigente")
        page.get_by_label("Ordenar por").select_option("fecha")
        page.get_by_role("button", name="Filtrar").click()
        page.wait_for_url(re.compile(r"estado=vigente.*orden=fecha|orden=fecha.*estado=vigente"))
        for state in rows(page).locator("td:nth-child(7)").all_inner_texts():
            assert state.startswith("vigente")

        page.goto(live_server + "/facturas/")
        pages = page.get_by_role("navigation", name="Páginas")
        pages.get_by_role("link", name="2", exact=True).click()
        expect(rows(page)).to_have_count(PAGE_SIZE)
        expect(
            page.get_by_role("navigation", name="Páginas").locator("[aria-current]")
        ).to_have_text("2")

        page.goto(live_server + "/facturas/")
        for public_id in stamped[:2]:
            page.locator(f'input[name="f"][value="{public_id}"]').check()
        with page.expect_download() as download:
            page.get_by_role("button", name="Descargar ZIP de las seleccionadas").click()
        with zipfile.ZipFile(download.value.path()) as archive:
            contents = {name: archive.read(name) for name in archive.namelist()}
        assert len(contents) == 4
        for public_id in stamped[:2]:
            xml, pdf, uuid = files[public_id]
            assert xml in contents.values() and pdf in contents.values()

        with page.expect_download() as download:
            page.get_by_role("link", name="CSV").click()
        text = Path(download.value.path()).read_text(encoding="utf-8-sig")
        exported = list(csv.reader(io.StringIO(text)))
        assert len(exported) == 1 + 80 + 3
        assert {files[p][2] for p in stamped} <= {row[5] for row in exported}
    finally:
        context.close()


def test_a_typed_search_is_sent_once_and_cargar_mas_works_at_once(page, live_server, app, history):
    """Typing a search sends one request (leaving the field does not send it again), and
    the first "Cargar más" after it appends rows that stay."""
    browser_sign_in(page, live_server, PASSWORD)
    page.goto(live_server + "/facturas/")
    expect(rows(page)).to_have_count(PAGE_SIZE)
    searches = []
    page.on(
        "request",
        lambda r: "q=DEMO" in r.url and "c=" not in r.url and searches.append(r.url),
    )
    page.get_by_label("Buscar").fill("DEMO")
    page.wait_for_url(re.compile(r"q=DEMO"))
    expect(rows(page)).to_have_count(PAGE_SIZE)
    page.get_by_role("link", name="Cargar más").click()  # the search box loses the focus
    expect(rows(page)).to_have_count(2 * PAGE_SIZE)
    page.wait_for_load_state("networkidle")
    expect(rows(page)).to_have_count(2 * PAGE_SIZE)
    assert len(searches) == 1, searches
    assert page.errors == []
