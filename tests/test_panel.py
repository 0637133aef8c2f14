"""The customer's invoice panel: what it lists, filters, pages, downloads and to whom."""

from __future__ import annotations

import csv
import io
import re
import zipfile
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from tests.flows import PASSWORD, RFC, public_ids, sign_in, stamp
from webapp.extensions import db
from webapp.models import Invoice, InvoiceStatus, MailMessage
from webapp.panel.query import PAGE_SIZE

MX = ZoneInfo("America/Mexico_City")


def test_the_panel_lists_what_the_account_invoiced_newest_first(app, client, stamped):
    r = client.get("/facturas/")
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and "Mis facturas" in html
    assert public_ids(html) == stamped[::-1]
    with app.app_context():
        invoice = db.session.scalar(select(Invoice).where(Invoice.public_id == stamped[0]))
        assert invoice.uuid in html and "TIENDAS DEMO LA GAVIOTA" in html
        assert f"{invoice.serie}-{invoice.folio}" in html
    assert "vigente" in html and "3 facturas" in html


def test_nobody_else_sees_or_downloads_them(app, client, stamped, people):
    other = app.test_client()
    assert sign_in(other, "pedro@example.com", PASSWORD).status_code == 303
    html = other.get("/facturas/").get_data(as_text=True)
    assert public_ids(html) == [] and "Aún no tiene facturas" in html
    for public_id in stamped:
        for url in (f"/facturas/{public_id}.xml", f"/facturas/{public_id}.pdf"):
            assert other.get(url).status_code == 404
        assert other.get(f"/facturas/{public_id}/reenviar").status_code == 404
        resend = other.post(f"/facturas/{public_id}/reenviar", data={"email": "x@e.com"})
        assert resend.status_code == 404
    r = other.post("/facturas/zip", data={"f": stamped})
    assert r.status_code == 404
    # A signed-out visitor is sent to sign in.
    anonymous = app.test_client()
    assert anonymous.get("/facturas/").status_code == 302
    assert anonymous.get(f"/facturas/{stamped[0]}.xml").status_code == 302


def test_an_invoice_to_the_rfc_asked_for_by_someone_else_is_not_listed(app, client, demo, people):
    """An RFC is printed on every invoice: invoicing to it proves nothing."""
    guest = app.test_client()
    stamp(guest, demo["fresh"][0], email="someone@example.com")
    assert sign_in(client, RFC, PASSWORD).status_code == 303
    assert public_ids(client.get("/facturas/").get_data(as_text=True)) == []


def test_an_invoice_delivered_to_the_verified_address_is_listed(app, client, demo, people):
    guest = app.test_client()
    public_id = stamp(guest, demo["fresh"][0])  # delivered to ingrid@example.com
    assert sign_in(client, RFC, PASSWORD).status_code == 303
    assert public_ids(client.get("/facturas/").get_data(as_text=True)) == [public_id]


def test_downloads_are_what_was_stamped(app, client, stamped):
    with app.app_context():
        invoices = {
            i.public_id: (i.xml, i.pdf, i.uuid)
            for i in db.session.scalars(select(Invoice).where(Invoice.public_id.in_(stamped)))
        }
    for public_id, (xml, pdf, uuid) in list(invoices.items()):
        r = client.get(f"/facturas/{public_id}.xml")
        assert r.status_code == 200 and r.data == xml and uuid in r.headers["Content-Disposition"]
        assert pdf is None  # rendered on the first download, then kept
        pdf = client.get(f"/facturas/{public_id}.pdf").data
        assert pdf.startswith(b"%PDF") and client.get(f"/facturas/{public_id}.pdf").data == pdf
        invoices[public_id] = (xml, pdf, uuid)
    r = client.post("/facturas/zip", data={"f": stamped[:2]})
    assert r.status_code == 200 and r.mimetype == "application/zip"
    with zipfile.ZipFile(io.BytesIO(r.data)) as archive:
        names = archive.namelist()
        assert len(names) == 4
        for public_id in stamped[:2]:
            xml, pdf, uuid = invoices[public_id]
            [xml_name] = [n for n in names if uuid in n and n.endswith(".xml")]
            assert archive.read(xml_name) == xml
            [pdf_name] = [n for n in names if uuid in n and n.endswith(".pdf")]
            assert archive.read(pdf_name) == pdf
    r = client.get("/facturas/exportar.zip")
    with zipfile.ZipFile(io.BytesIO(r.data)) as archive:
        assert len(archive.namelist()) == 6


def test_nothing_ticked_says_so(client, stamped):
    r = client.post("/facturas/zip", data={})
    assert r.status_code == 303
    assert "Marque al menos una factura" in client.get(r.headers["Location"]).get_data(as_text=True)


def test_csv_and_xlsx_of_the_filtered_list(app, client, stamped):
    with app.app_context():
        invoices = db.session.scalars(
            select(Invoice).where(Invoice.public_id.in_(stamped)).order_by(Invoice.total)
        ).all()
        expected = [(i.uuid, i.total) for i in invoices]
    r = client.get("/facturas/exportar.csv?orden=total")
    assert r.status_code == 200 and r.mimetype == "text/csv"
    rows = list(csv.reader(io.StringIO(r.data.decode("utf-8-sig"))))
    assert rows[0][0] == "Fecha" and len(rows) == 4
    assert [(row[5], Decimal(row[9])) for row in rows[1:]] == expected
    r = client.get("/facturas/exportar.xlsx?orden=total")
    sheet = load_workbook(io.BytesIO(r.data)).active
    values = list(sheet.iter_rows(values_only=True))
    assert [(row[5], Decimal(str(row[9])).quantize(Decimal("0.01"))) for row in values[1:]] == (
        expected
    )
    only_one = client.get(f"/facturas/exportar.csv?q={expected[0][0][:8]}")
    assert len(list(csv.reader(io.StringIO(only_one.data.decode("utf-8-sig"))))) == 2


def test_keyset_pages_walk_every_row_once(app, client, history):
    assert sign_in(client, RFC, PASSWORD).status_code == 303
    seen, url, pages = [], "/facturas/", 0
    while url:
        html = client.get(url).get_data(as_text=True)
        seen += public_ids(html)
        pages += 1
        more = re.search(r'<a href="([^"]+)" hx-get="[^"]+" hx-target="#mas-\d+"', html)
        url = more.group(1).replace("&amp;", "&") if more else None
    assert pages == 4 and len(seen) == len(set(seen)) == 80
    with app.app_context():
        newest_first = db.session.scalars(
            select(Invoice.public_id).order_by(Invoice.fecha.desc(), Invoice.id.desc())
        ).all()
    assert seen == newest_first


def test_numbered_pages_without_javascript(client, history):
    assert sign_in(client, RFC, PASSWORD).status_code == 303
    html = client.get("/facturas/").get_data(as_text=True)
    noscript = html.split("<noscript>")[1].split("</noscript>")[0]
    links = re.findall(r'href="([^"]+)">(\d+)</a>', noscript)
    assert [n for _, n in links] == ["2", "3", "4"]
    third = client.get(links[1][0].replace("&amp;", "&")).get_data(as_text=True)
    assert len(public_ids(third)) == PAGE_SIZE and "« Primera" in third


def test_load_more_answers_rows_only(client, history):
    assert sign_in(client, RFC, PASSWORD).status_code == 303
    html = client.get("/facturas/").get_data(as_text=True)
    url = re.search(r'hx-get="([^"]+)" hx-target="#mas-1"', html).group(1).replace("&amp;", "&")
    r = client.get(url, headers={"HX-Request": "true", "HX-Target": "mas-1"})
    fragment = r.get_data(as_text=True)
    assert r.status_code == 200 and "HX-Request" in r.headers["Vary"]
    assert "<html" not in fragment and "<table" not in fragment
    assert fragment.lstrip().startswith("<tr") and len(public_ids(fragment)) == PAGE_SIZE
    assert 'id="mas-2"' in fragment


def test_filters(app, client, history):
    assert sign_in(client, RFC, PASSWORD).status_code == 303
    with app.app_context():
        rows = db.session.scalars(select(Invoice)).all()
        issuer_id = rows[0].issuer_id
        cancelled = {r.public_id for r in rows if r.status is InvoiceStatus.CANCELLED}
        archived = {r.public_id for r in rows if r.archived and r.status is InvoiceStatus.STAMPED}
        by_issuer = {r.public_id for r in rows if r.issuer_id == issuer_id}
        cheap = {r.public_id for r in rows if Decimal("50") <= r.total <= Decimal("300")}
        target = rows[17]
        one_year = {r.public_id for r in rows if r.fecha.astimezone(MX).year == 2025}
        pharmacy = {r.public_id for r in rows if r.issuer.slug == "farmacias-norte"}

    def listed(query: str) -> set[str]:
        found, url = [], f"/facturas/?{query}"
        while url:
            html = client.get(url).get_data(as_text=True)
            found += public_ids(html)
            more = re.search(r'<a href="([^"]+)" hx-get="[^"]+" hx-target="#mas-\d+"', html)
            url = more.group(1).replace("&amp;", "&") if more else None
        return set(found)

    assert listed(f"emisor={issuer_id}") == by_issuer
    assert listed("estado=cancelada") == cancelled
    assert listed("estado=archivada") == archived
    assert listed("total_min=50&total_max=300") == cheap
    assert listed("desde=2025-01-01&hasta=2025-12-31") == one_year
    assert target.public_id in listed(f"q={target.uuid[:6].lower()}")
    assert listed(f"q={target.serie}-{target.folio}") >= {target.public_id}
    assert listed("q=farmacias") == pharmacy
    ordered = [r.public_id for r in sorted(rows, key=lambda r: (r.total, r.id))]
    html = client.get("/facturas/?orden=total").get_data(as_text=True)
    assert public_ids(html) == ordered[:PAGE_SIZE]


@pytest.mark.parametrize(
    "query, message",
    [
        ("desde=2025-05-01&hasta=2025-04-01", "La fecha final es anterior a la inicial."),
        ("total_min=500&total_max=100", "El total máximo es menor que el mínimo."),
        ("total_min=abc", "Total desde"),
        ("orden=id", "Ordenar por"),
        ("c=1_2_3", "El enlace de la página no es válido."),
    ],
)
def test_bad_filters_say_what_is_wrong(client, history, query, message):
    assert sign_in(client, RFC, PASSWORD).status_code == 303
    r = client.get(f"/facturas/?{query}")
    assert r.status_code == 400 and message in r.get_data(as_text=True)
    r = client.get(f"/facturas/?{query}", headers={"HX-Request": "true", "HX-Target": "resultados"})
    assert r.status_code == 200 and "Revise los filtros" in r.get_data(as_text=True)


def test_no_results_says_what_to_do(client, history):
    assert sign_in(client, RFC, PASSWORD).status_code == 303
    html = client.get("/facturas/?q=ZZZZZZZZ").get_data(as_text=True)
    assert "Ninguna factura coincide" in html and "Ver todas mis facturas" in html


def test_filter_fragment_for_htmx(client, history):
    assert sign_in(client, RFC, PASSWORD).status_code == 303
    r = client.get(
        "/facturas/?estado=cancelada", headers={"HX-Request": "true", "HX-Target": "resultados"}
    )
    html = r.get_data(as_text=True)
    assert r.status_code == 200 and html.lstrip().startswith('<section id="resultados"')
    assert '<form id="filtros"' not in html and "HX-Request" in r.headers["Vary"]


def test_resend_to_several_addresses(app, client, stamped):
    r = client.post(
        f"/facturas/{stamped[0]}/reenviar",
        data={"email": "conta@example.com, yo@example.com"},
    )
    assert r.status_code == 303 and "aviso=enviada" in r.headers["Location"]
    with app.app_context():
        message = db.session.scalars(select(MailMessage).order_by(MailMessage.id.desc())).first()
        assert {"conta@example.com", "yo@example.com"} <= set(message.to_addrs.split(", "))
        assert len(message.attachments) == 2
    r = client.post(f"/facturas/{stamped[0]}/reenviar", data={"email": "no es correo"})
    assert r.status_code == 422 and "correo" in r.get_data(as_text=True)


def test_archive_warning_and_archived_files_still_download(app, client, stamped):
    from webapp.issuing.retention import archive_due

    with app.app_context():
        invoices = db.session.scalars(select(Invoice).where(Invoice.public_id.in_(stamped))).all()
        for invoice, age in zip(invoices, (80, 120, 1), strict=True):
            invoice.stamped_at = invoice.fecha = datetime.now(UTC) - timedelta(days=age)
        db.session.commit()
        original = {i.public_id: i.xml for i in invoices}
        assert archive_due(db.session, datetime.now(UTC), 90) == 1
    html = client.get("/facturas/").get_data(as_text=True)
    assert "se archivará en 10 días; descárguela" in html
    assert "archivada" in html
    for public_id, xml in original.items():
        assert client.get(f"/facturas/{public_id}.xml").data == xml
