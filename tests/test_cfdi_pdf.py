"""The PDF of a stamped CFDI: what it prints, its QR, how it pages."""

from __future__ import annotations

import io
import re
from decimal import Decimal

import pytest
import zxingcpp
from lxml import etree
from pypdf import PdfReader

from tests.flows import text_of
from webapp.cfdi import amount_in_words, build, render_pdf, samples, sign, verification_url
from webapp.cfdi.draft import GlobalInfo
from webapp.cfdi.pac.sandbox import SandboxPac
from webapp.cfdi.pdf import format_total, render_html
from webapp.cfdi.xsd import InvalidCfdi

pytestmark = pytest.mark.run_once  # the same on both databases: run once

NS = {"cfdi": "http://www.sat.gob.mx/cfd/4", "tfd": "http://www.sat.gob.mx/TimbreFiscalDigital"}


@pytest.fixture(scope="module")
def pac(tmp_path_factory) -> SandboxPac:
    return SandboxPac(tmp_path_factory.mktemp("instance"))


def stamped_xml(pac: SandboxPac, lines: int, folio: int) -> bytes:
    return pac.stamp(sign(build(samples.draft(lines, folio=folio)), samples.signer())).xml


@pytest.fixture(scope="module")
def invoice(pac) -> bytes:
    return stamped_xml(pac, 5, 1)


@pytest.fixture(scope="module")
def pdf(invoice) -> bytes:
    return render_pdf(invoice, branch_name="Sucursal Centro Histórico", sandbox=True)


def test_pdf_prints_the_fiscal_data(invoice, pdf):
    root = etree.fromstring(invoice)
    tfd = root.find("cfdi:Complemento/tfd:TimbreFiscalDigital", NS)
    total = Decimal(root.get("Total"))
    text = text_of(pdf)
    assert len(PdfReader(io.BytesIO(pdf)).pages) == 1
    for needle in (
        tfd.get("UUID"),
        "EKU9003173C9",
        "ESCUELA KEMPER URGATE",
        "XOJI740919U48",
        "INGRID XODAR JIMENEZ",
        "76028",
        "612 - Personas Físicas con Actividades Empresariales y Profesionales",
        "601 - General de Ley Personas Morales",
        "G03 - Gastos en general",
        "01 - Efectivo",
        "PUE - Pago en una sola exhibición",
        "A-1",
        root.get("Fecha"),
        tfd.get("FechaTimbrado"),
        root.get("NoCertificado"),
        tfd.get("NoCertificadoSAT"),
        "Sucursal Centro Histórico",
        "06600",
        "TORTILLA DE MAIZ #2",
        "KGM Kilogramo",
        "$30.12",
        "IVA 16 %",
        "IVA 0 %",
        "IVA exento",
        f"${total:,.2f}",
        amount_in_words(total),
        "Este documento es una representación impresa de un CFDI",
        "SIN VALIDEZ FISCAL — PRUEBAS",
        "Cadena original del complemento de certificación digital del SAT",
    ):
        assert needle in text, needle
    compact = text.replace(" ", "")  # seals wrap anywhere: compare without the breaks
    assert tfd.get("SelloCFD") in compact
    assert tfd.get("SelloSAT") in compact
    cadena = (
        f"||1.1|{tfd.get('UUID')}|{tfd.get('FechaTimbrado')}|{tfd.get('RfcProvCertif')}|"
        f"{tfd.get('SelloCFD')}|{tfd.get('NoCertificadoSAT')}||"
    )
    assert cadena.replace(" ", "") in compact


def test_qr_holds_the_verification_url(invoice, pdf):
    root = etree.fromstring(invoice)
    tfd = root.find("cfdi:Complemento/tfd:TimbreFiscalDigital", NS)
    expected = verification_url(
        tfd.get("UUID"),
        "EKU9003173C9",
        "XOJI740919U48",
        Decimal(root.get("Total")),
        root.get("Sello"),
    )
    images = PdfReader(io.BytesIO(pdf)).pages[0].images
    decoded = [b.text for image in images for b in zxingcpp.read_barcodes(image.image)]
    assert decoded == [expected]
    assert expected.startswith("https://verificacfdi.facturaelectronica.sat.gob.mx/default.aspx?")
    assert expected.endswith(f"&fe={root.get('Sello')[-8:]}")


def test_verification_url_format():
    url = verification_url("AB", "A&B010101AAA", "XOJI740919U48", Decimal("116.00"), "x" * 20)
    assert url == (
        "https://verificacfdi.facturaelectronica.sat.gob.mx/default.aspx?id=AB"
        "&re=A&amp;B010101AAA&rr=XOJI740919U48&tt=116.0&fe=xxxxxxxx"
    )
    assert format_total(Decimal("1234.50")) == "1234.5"
    assert format_total(Decimal("0.07")) == "0.07"
    assert format_total(Decimal("1000000")) == "1000000.0"


def test_pdf_without_sandbox_has_no_warning(invoice):
    text = text_of(render_pdf(invoice, branch_name=None, sandbox=False))
    assert "SIN VALIDEZ" not in text
    assert "representación impresa de un CFDI" in text


def test_many_lines_flow_onto_more_pages_with_the_header_again(pac):
    assert len(PdfReader(io.BytesIO(render_pdf(stamped_xml(pac, 15, 2), branch_name=None,
                                               sandbox=True))).pages) == 1  # fmt: skip
    twenty = PdfReader(io.BytesIO(render_pdf(stamped_xml(pac, 20, 3), branch_name=None,
                                             sandbox=True)))  # fmt: skip
    assert len(twenty.pages) == 2
    many = PdfReader(io.BytesIO(render_pdf(stamped_xml(pac, 45, 4), branch_name=None,
                                           sandbox=True)))  # fmt: skip
    pages = [p.extract_text() for p in many.pages]
    assert len(pages) >= 2
    assert all("Valor unitario" in page for page in pages[:2])  # the table header repeats
    assert "#45" in "".join(pages) and "Página 2" in pages[1]


def test_html_escapes_what_the_xml_says(pac):
    draft = samples.draft(1, folio=5, receptor_nombre="INGRID <b>XODAR</b> & JIMENEZ")
    xml = pac.stamp(sign(build(draft), samples.signer())).xml
    html = render_html(xml)
    assert "INGRID &lt;b&gt;XODAR&lt;/b&gt; &amp; JIMENEZ" in html
    assert "<b>XODAR</b>" not in html


def test_unstamped_xml_is_refused():
    with pytest.raises(InvalidCfdi, match="timbrado"):
        render_pdf(sign(build(samples.draft(1)), samples.signer()), branch_name=None, sandbox=True)


def test_pdf_is_a_pdf(pdf):
    assert pdf.startswith(b"%PDF-") and re.search(rb"%%EOF\s*$", pdf)


def test_a_factura_global_prints_its_informacion_global(pac):
    draft = samples.draft(
        2,
        folio=7,
        receptor_rfc="XAXX010101000",
        receptor_nombre="PUBLICO EN GENERAL",
        receptor_cp="06600",
        receptor_regimen="616",
        uso_cfdi="S01",
        informacion_global=GlobalInfo("05", "13", 2026),
    )
    xml = pac.stamp(sign(build(draft), samples.signer())).xml
    text = text_of(render_pdf(xml, branch_name=None, sandbox=True))
    assert "Información global" in text
    assert "Periodicidad: 05 - Bimestral" in text
    assert "Meses: 13 - Enero-Febrero" in text
    assert "Año: 2026" in text


def test_an_ordinary_invoice_prints_no_informacion_global(pdf):
    assert "Información global" not in text_of(pdf)
    assert "Periodicidad" not in text_of(pdf)
