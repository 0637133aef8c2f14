"""The RIDE of an SRI factura: what it prints, its paper, its barcode (decoded back)."""

from __future__ import annotations

import dataclasses
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
import zxingcpp
from PIL import Image
from pypdf import PdfReader

from tests import sri_samples as samples
from tests.flows import text_of
from webapp.sri import access_key, catalogs
from webapp.sri.factura import Comprador, Factura, FacturaError, Linea, Pago
from webapp.sri.ride import SANDBOX_MARK, barcode_png, render_html, render_ride

pytestmark = pytest.mark.run_once  # the same on both databases: run once

D = Decimal
RUC, FECHA = samples.RUC, samples.FECHA
AUTHORISED_AT = datetime(2025, 3, 14, 15, 16, 17, tzinfo=UTC)  # 10:16:17 in Ecuador

EMISOR = dataclasses.replace(samples.EMISOR, rimpe=catalogs.RIMPE_EMPRENDEDOR)
COMPRADOR = samples.COMPRADOR
LINEAS = (
    *samples.LINEAS,
    Linea("MUL-04", "Multa por mora", D("1"), D("2.00"), catalogs.NO_OBJETO_IVA),
)
TOTAL = D("54.52")  # 30.00 + 4.50 IVA + 10.25 + 7.77 + 2.00


def _factura(**changes) -> Factura:
    """The sample with a RIMPE emisor, a fourth line (no objeto de IVA), in producción."""
    base = {"emisor": EMISOR, "lineas": LINEAS, "ambiente": access_key.PRODUCCION, "pto_emi": "001"}
    return samples.factura(**(base | changes))


_key = samples.key


def _ride(factura: Factura, paper: str = "A4") -> tuple[str, bytes]:
    key = _key(factura)
    return key, render_ride(factura, key, key, AUTHORISED_AT, factura.ambiente, paper=paper)


@pytest.fixture(scope="module")
def ride() -> tuple[str, bytes]:
    return _ride(_factura())


def test_ride_prints_the_authorised_factura(ride):
    key, pdf = ride
    assert pdf.startswith(b"%PDF")
    text = text_of(pdf)
    for expected in (
        f"R.U.C.: {RUC}",
        "FACTURA",
        "No. 001-001-000000123",
        "Telefónica Andina de Prueba S.A.",
        "Andinatel Demo",
        "Av. Amazonas N34-120 y Av. Atahualpa, Quito",
        "Av. 9 de Octubre 100, Guayaquil",
        "Contribuyente especial Nro.: 5368",
        "OBLIGADO A LLEVAR CONTABILIDAD: SI",
        "CONTRIBUYENTE RÉGIMEN RIMPE",
        "NÚMERO DE AUTORIZACIÓN",
        "FECHA Y HORA DE AUTORIZACIÓN: 14/03/2025 10:16:17",
        "AMBIENTE: PRODUCCIÓN",
        "EMISIÓN: NORMAL",
        "CLAVE DE ACCESO",
        "María José Pérez Núñez",
        "Identificación: 1710034065",
        "Fecha de emisión: 14/03/2025",
        "PLAN-01 3.00 Plan móvil 30 GB 10.333333 1.00 30.00",
        "REC-02 2.50 Recarga de saldo 4.10 0.00 10.25",
        "SUBTOTAL 15 % 30.00",
        "SUBTOTAL 0 % 10.25",
        "SUBTOTAL NO OBJETO DE IVA 2.00",
        "SUBTOTAL EXENTO DE IVA 7.77",
        "SUBTOTAL SIN IMPUESTOS 50.02",
        "DESCUENTO 1.00",
        "IVA 15 % 4.50",
        f"VALOR TOTAL {TOTAL}",
        f"20 - Otros con utilización del sistema financiero {TOTAL} 30 dias",
        "Email maria@example.com",
        "Teléfono +593 99 123 4567",
        "Dirección Calle Olmedo 12-34, Cuenca",
    ):
        assert expected in text, expected
    assert text.count(key) == 2  # the número de autorización and the digits under the barcode
    assert "PRUEBAS" not in text and "SIN VALIDEZ" not in text


def test_barcode_in_the_pdf_decodes_to_the_access_key(ride):
    key, pdf = ride
    images = PdfReader(io.BytesIO(pdf)).pages[0].images
    decoded = [(b.format, b.text) for image in images for b in zxingcpp.read_barcodes(image.image)]
    assert decoded == [(zxingcpp.BarcodeFormat.Code128, key)]
    assert access_key.is_valid(decoded[0][1])


def test_barcode_png_decodes_for_other_keys():
    # Odd length (49) needs a switch out of code set C; a key ending in 0 too.
    factura = _factura(secuencial=999_999_999, fecha_emision=date(2024, 12, 31))
    for codigo in ("00000000", "98765432"):
        key = access_key.build(
            fecha=factura.fecha_emision,
            ruc=RUC,
            ambiente="1",
            estab="002",
            pto_emi="010",
            secuencial=factura.secuencial,
            codigo_numerico=codigo,
        )
        image = Image.open(io.BytesIO(barcode_png(key)))
        assert [b.text for b in zxingcpp.read_barcodes(image)] == [key]


@pytest.mark.parametrize(("paper", "size"), [("A4", (595, 842)), ("letter", (612, 792))])
def test_paper_size(paper, size):
    _, pdf = _ride(_factura(lineas=LINEAS[:1], pagos=(Pago("01", D("34.50")),)), paper)
    box = PdfReader(io.BytesIO(pdf)).pages[0].mediabox
    assert (round(float(box.width)), round(float(box.height))) == size


def test_pruebas_carries_the_no_tax_validity_mark():
    factura = _factura(ambiente=access_key.PRUEBAS)
    _, pdf = _ride(factura)
    text = text_of(pdf)
    assert SANDBOX_MARK in text and "AMBIENTE: PRUEBAS" in text


def test_consumidor_final_and_other_rates():
    factura = _factura(
        comprador=Comprador(catalogs.CONSUMIDOR_FINAL, "9999999999999", "x"),
        lineas=(Linea("M", "Material", D("1"), D("10.00"), catalogs.IVA_5),),
        pagos=(Pago("01", D("10.50")),),
        info_adicional=(),
    )
    key = _key(factura)
    html = render_html(factura, key, key, AUTHORISED_AT, factura.ambiente)
    assert "CONSUMIDOR FINAL" in html and "9999999999999" in html
    assert "SUBTOTAL 5 %" in html and "IVA 5 %" in html and "SUBTOTAL 15 %" in html
    assert "INFORMACIÓN ADICIONAL" not in html


def test_hostile_text_is_escaped():
    factura = _factura(
        comprador=dataclasses.replace(COMPRADOR, razon_social="<b>Ana</b> & <script>x</script>")
    )
    key = _key(factura)
    html = render_html(factura, key, key, AUTHORISED_AT, factura.ambiente)
    assert "<script>" not in html and "&lt;b&gt;Ana&lt;/b&gt; &amp; &lt;script&gt;" in html


def test_refuses_a_key_of_another_comprobante_or_bad_arguments():
    factura = _factura()
    other = _key(_factura(secuencial=124))
    with pytest.raises(FacturaError):
        render_ride(factura, other, other, AUTHORISED_AT, factura.ambiente)
    key = _key(factura)
    with pytest.raises(ValueError):
        render_ride(factura, key, key, AUTHORISED_AT, access_key.PRUEBAS)
    with pytest.raises(ValueError):
        render_ride(factura, key, key, AUTHORISED_AT, factura.ambiente, paper="legal")


def test_long_invoice_runs_over_pages_with_the_mark_on_each():
    lineas = tuple(
        Linea(f"L{i:02d}", "Minutos adicionales " * 6, D("1"), D("1.00")) for i in range(60)
    )
    factura = _factura(ambiente=access_key.PRUEBAS, lineas=lineas, pagos=(Pago("01", D("69.00")),))
    _, pdf = _ride(factura)
    pages = PdfReader(io.BytesIO(pdf)).pages
    assert len(pages) > 1
    assert all(SANDBOX_MARK in " ".join(page.extract_text().split()) for page in pages)
    text = text_of(pdf)
    assert "L59" in text and "VALOR TOTAL 69.00" in text
