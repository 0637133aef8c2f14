"""The SRI factura: totals to the cent, XML valid against SRI's XSD, hostile text, the tables."""

from __future__ import annotations

import dataclasses
from decimal import Decimal

import pytest
from lxml import etree

from tests.sri_samples import COMPRADOR, EMISOR, LINEAS, TOTAL
from tests.sri_samples import factura as _factura
from tests.sri_samples import key as _key
from webapp.sri import catalogs
from webapp.sri.factura import (
    Comprador,
    Factura,
    FacturaError,
    Linea,
    Pago,
    build_xml,
    clean_text,
    totals,
)
from webapp.sri.xsd import DS, InvalidComprobante, validate

pytestmark = pytest.mark.run_once  # the same on both databases: run once

D = Decimal


def _build(factura: Factura) -> tuple[bytes, etree._Element]:
    xml = build_xml(factura, _key(factura))
    return xml, etree.fromstring(xml)


def _text(root: etree._Element, path: str) -> list[str]:
    return [e.text for e in root.iterfind(path)]


def test_totals_to_the_cent():
    figures = totals(LINEAS)
    assert [line.subtotal for line in figures.lineas] == [D("30.00"), D("10.25"), D("7.77")]
    assert [line.iva for line in figures.lineas] == [D("4.50"), D("0.00"), D("0.00")]
    assert figures.total_sin_impuestos == D("48.02")
    assert figures.total_descuento == D("1.00")
    assert [
        (i.codigo_porcentaje, i.tarifa, i.base_imponible, i.valor) for i in figures.impuestos
    ] == [
        ("0", D("0"), D("10.25"), D("0.00")),
        ("4", D("15"), D("30.00"), D("4.50")),
        ("7", D("0"), D("7.77"), D("0.00")),
    ]
    assert figures.subtotal("4") == D("30.00") and figures.subtotal("5") == D("0.00")
    assert figures.iva == D("4.50")
    assert figures.importe_total == TOTAL


def test_iva_is_the_sum_of_the_lines_and_half_cents_round_up():
    # 0.10 × 15 % = 0.015 → 0.02 (half up, not to even) on each of three lines.
    lines = [Linea(str(i), "Minuto", D("1"), D("0.10")) for i in range(3)]
    figures = totals(lines)
    assert [line.iva for line in figures.lineas] == [D("0.02")] * 3
    assert figures.impuestos[0].base_imponible == D("0.30")
    assert figures.impuestos[0].valor == D("0.06")  # Σ lines; 0.30 × 15 % would be 0.045
    assert figures.importe_total == D("0.36")


def test_the_built_invoice_validates_against_sris_xsd():
    factura = _factura()
    xml, root = _build(factura)
    validate(xml)
    assert xml.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    assert root.tag == "factura"
    assert root.get("id") == "comprobante" and root.get("version") == "1.1.0"
    assert _text(root, "infoTributaria/claveAcceso") == [_key(factura)]
    assert _text(root, "infoTributaria/codDoc") == ["01"]
    assert _text(root, "infoTributaria/secuencial") == ["000000123"]
    assert _text(root, "infoFactura/fechaEmision") == ["14/03/2025"]
    assert _text(root, "infoFactura/obligadoContabilidad") == ["SI"]
    assert _text(root, "infoFactura/contribuyenteEspecial") == ["5368"]
    assert _text(root, "infoFactura/totalSinImpuestos") == ["48.02"]
    assert _text(root, "infoFactura/totalDescuento") == ["1.00"]
    assert _text(root, "infoFactura/totalConImpuestos/totalImpuesto/codigoPorcentaje") == [
        "0",
        "4",
        "7",
    ]
    assert _text(root, "infoFactura/totalConImpuestos/totalImpuesto/valor") == [
        "0.00",
        "4.50",
        "0.00",
    ]
    assert _text(root, "infoFactura/propina") == ["0.00"]
    assert _text(root, "infoFactura/importeTotal") == ["52.52"]
    assert _text(root, "infoFactura/moneda") == ["DOLAR"]
    assert _text(root, "infoFactura/pagos/pago/total") == ["52.52"]
    assert _text(root, "detalles/detalle/cantidad") == ["3.000000", "2.500000", "1.000000"]
    assert _text(root, "detalles/detalle/precioUnitario")[0] == "10.333333"
    assert _text(root, "detalles/detalle/precioTotalSinImpuesto") == ["30.00", "10.25", "7.77"]
    assert _text(root, "detalles/detalle/impuestos/impuesto/tarifa") == ["15.00", "0.00", "0.00"]
    adicional = [(e.get("nombre"), e.text) for e in root.iterfind("infoAdicional/campoAdicional")]
    assert adicional[0] == ("Email", "maria@example.com")
    assert ("Teléfono", "+593 99 123 4567") in adicional


def test_optional_parts_left_out_still_validate():
    emisor = dataclasses.replace(
        EMISOR,
        nombre_comercial=None,
        direccion_establecimiento=None,
        contribuyente_especial=None,
        obligado_contabilidad=False,
        rimpe=catalogs.RIMPE_NEGOCIO_POPULAR,
    )
    comprador = Comprador(catalogs.CONSUMIDOR_FINAL, "9999999999999", "cualquiera")
    factura = _factura(
        emisor=emisor,
        comprador=comprador,
        lineas=(Linea("", "Recarga", D("1"), D("10"), catalogs.IVA_5),),
        pagos=(Pago("01", D("10.50")),),
        info_adicional=(),
    )
    xml, root = _build(factura)
    validate(xml)
    assert _text(root, "infoTributaria/contribuyenteRimpe") == [catalogs.RIMPE_NEGOCIO_POPULAR]
    assert _text(root, "infoFactura/razonSocialComprador") == ["CONSUMIDOR FINAL"]
    assert root.find("infoAdicional") is None
    assert root.find("detalles/detalle/codigoPrincipal") is None


def test_hostile_text_is_escaped_and_cut_to_the_xsd():
    long_text = "Ñandú & <b>\"comillas\"</b> 'x' " * 20  # far over 300 characters
    factura = _factura(
        comprador=dataclasses.replace(
            COMPRADOR, razon_social="Pérez & Hijos <S.A.>\nLínea 2\x00\x07", direccion="  \n "
        ),
        lineas=(
            Linea("A" * 40, long_text, D("1"), D("1.00"), catalogs.IVA_0),
            Linea("B&<", "x" * 300, D("1"), D("1.00"), catalogs.IVA_0),
            Linea("C", "Emoji 📱 y tab\tdentro", D("1"), D("1.00"), catalogs.IVA_0),
        ),
        pagos=(Pago("19", D("3.00")),),
        info_adicional=(("Nota", "a\r\nb & c"), ("Vacío", "   ")),
    )
    xml, root = _build(factura)
    validate(xml)
    assert b"&amp;" in xml and b"&lt;" in xml and b"<b>" not in xml
    assert _text(root, "infoFactura/razonSocialComprador") == ["Pérez & Hijos <S.A.> Línea 2"]
    assert root.find("infoFactura/direccionComprador") is None
    descripciones = _text(root, "detalles/detalle/descripcion")
    assert len(descripciones[0]) == 300 and descripciones[0].endswith("…")
    assert descripciones[0].startswith('Ñandú & <b>"comillas"</b>')
    assert descripciones[1] == "x" * 300  # exactly the limit: untouched
    assert descripciones[2] == "Emoji 📱 y tab dentro"
    assert _text(root, "detalles/detalle/codigoPrincipal") == ["A" * 24 + "…", "B&<", "C"]
    adicional = [(e.get("nombre"), e.text) for e in root.iterfind("infoAdicional/campoAdicional")]
    assert ("Nota", "a b & c") in adicional
    assert all(nombre != "Vacío" for nombre, _ in adicional)


def test_clean_text():
    assert clean_text(None, 10) == ""
    assert clean_text(" a \n\t b ", 10) == "a b"
    assert clean_text("\ufffe\x01ok", 10) == "ok"
    assert clean_text("abcdefghijk", 5) == "abcd…"


def test_sums_that_do_not_match_and_bad_figures_are_refused():
    with pytest.raises(FacturaError, match="pagos no suman"):
        build_xml(_factura(pagos=(Pago("20", D("52.51")),)), _key(_factura()))
    with pytest.raises(FacturaError, match="forma de pago"):
        build_xml(_factura(pagos=(Pago("99", TOTAL),)), _key(_factura()))
    with pytest.raises(FacturaError, match="forma de pago"):
        build_xml(_factura(pagos=()), _key(_factura()))
    for linea, message in [
        (Linea("x", "x", D("1.0000001"), D("1")), "6 decimales"),
        (Linea("x", "x", D("1"), D("1.0000001")), "6 decimales"),
        (Linea("x", "x", D("1"), D("1"), descuento=D("0.001")), "2 decimales"),
        (Linea("x", "x", D("0"), D("1")), "mayor que cero"),
        (Linea("x", "x", D("1"), D("-1")), "al menos cero"),
        (Linea("x", "x", D("1"), D("1"), descuento=D("1.01")), "descuento"),
        (Linea("x", "x", 1.5, D("1")), "Decimal"),
        (Linea("x", "x", D("1"), D("1E+20")), "demasiado grande"),
        (Linea("x", "x", D("1"), D("1"), "2"), "no está vigente"),
        (Linea("x", "x", D("1"), D("1"), "99"), "desconocido"),
    ]:
        with pytest.raises(FacturaError, match=message):
            totals([linea])
    with pytest.raises(FacturaError, match="líneas"):
        totals([])


def test_the_key_must_be_the_invoices():
    factura = _factura()
    other = _factura(secuencial=124)
    with pytest.raises(FacturaError, match="secuencial"):
        build_xml(factura, _key(other))
    with pytest.raises(FacturaError, match="dígito verificador"):
        key = _key(factura)
        build_xml(factura, key[:-1] + str((int(key[-1]) + 1) % 10))


def test_buyer_identification_and_the_consumidor_final_limit():
    with pytest.raises(FacturaError, match="cédula"):
        build_xml(
            _factura(comprador=dataclasses.replace(COMPRADOR, identificacion="1710034066")),
            _key(_factura()),
        )
    final = Comprador(catalogs.CONSUMIDOR_FINAL, "9999999999999", "CONSUMIDOR FINAL")
    with pytest.raises(FacturaError, match="consumidor final"):
        build_xml(_factura(comprador=final), _key(_factura()))  # 52.52 > 50.00
    at_limit = _factura(
        comprador=final,
        lineas=(Linea("x", "x", D("1"), D("50.00"), catalogs.IVA_0),),
        pagos=(Pago("01", D("50.00")),),
    )
    validate(build_xml(at_limit, _key(at_limit)))


@pytest.mark.parametrize(
    ("tipo", "numero", "expected"),
    [
        (catalogs.RUC, "1792060346001", "1792060346001"),
        (catalogs.RUC, "179206034-6001", "1792060346001"),
        (catalogs.CEDULA, "1710034065", "1710034065"),
        (catalogs.CEDULA, "171003406-5", "1710034065"),
        (catalogs.PASAPORTE, "ab 123456", "AB123456"),
        (catalogs.EXTERIOR, "X-99", "X99"),
        (catalogs.CONSUMIDOR_FINAL, "9999999999999", "9999999999999"),
    ],
)
def test_valid_identifications(tipo, numero, expected):
    assert catalogs.validate_identification(tipo, numero) == expected


@pytest.mark.parametrize(
    ("tipo", "numero", "code"),
    [
        (catalogs.RUC, "1792060346002", "ruc"),
        (catalogs.RUC, "1710034065", "ruc"),
        (catalogs.CEDULA, "1710034066", "cedula"),
        (catalogs.CEDULA, "1792060346001", "cedula"),
        (catalogs.PASAPORTE, "a", "pasaporte"),
        (catalogs.PASAPORTE, "A" * 21, "pasaporte"),
        (catalogs.EXTERIOR, "", "exterior"),
        (catalogs.CONSUMIDOR_FINAL, "1710034065", "consumidor_final"),
        ("09", "1710034065", "tipo"),
    ],
)
def test_invalid_identifications(tipo, numero, code):
    with pytest.raises(catalogs.InvalidIdentification) as caught:
        catalogs.validate_identification(tipo, numero)
    assert caught.value.code == code
    assert str(caught.value)  # a Spanish sentence for the form


def test_tables():
    assert catalogs.TARIFAS_IVA["4"].tarifa == D("15")
    assert catalogs.TARIFAS_IVA["0"].tarifa == D("0")
    assert catalogs.TARIFAS_IVA["5"].tarifa == D("5")
    assert catalogs.TARIFAS_IVA["6"].nombre == "No objeto de impuesto"
    assert catalogs.TARIFAS_IVA["7"].nombre == "Exento de IVA"
    assert {c for c, t in catalogs.TARIFAS_IVA.items() if t.vigente} == {"0", "4", "5", "6", "7"}
    assert set(catalogs.FORMAS_PAGO) == {"01", "15", "16", "17", "18", "19", "20", "21"}
    assert set(catalogs.TIPOS_IDENTIFICACION) == {"04", "05", "06", "07", "08"}
    assert str(catalogs.CONSUMIDOR_FINAL_LIMITE) == "50.00"
    assert catalogs.IMPUESTOS[catalogs.IVA] == "IVA"


def _signature() -> etree._Element:
    """A schema-valid ds:Signature skeleton (what the signer puts there, values aside)."""
    ds = f"{{{DS}}}"
    signature = etree.Element(f"{ds}Signature", nsmap={"ds": DS})
    info = etree.SubElement(signature, f"{ds}SignedInfo")
    etree.SubElement(
        info,
        f"{ds}CanonicalizationMethod",
        Algorithm="http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
    )
    etree.SubElement(
        info, f"{ds}SignatureMethod", Algorithm="http://www.w3.org/2000/09/xmldsig#rsa-sha1"
    )
    reference = etree.SubElement(info, f"{ds}Reference", URI="#comprobante")
    etree.SubElement(
        reference, f"{ds}DigestMethod", Algorithm="http://www.w3.org/2000/09/xmldsig#sha1"
    )
    etree.SubElement(reference, f"{ds}DigestValue").text = "AAAA"
    etree.SubElement(signature, f"{ds}SignatureValue").text = "AAAA"
    return signature


def test_signed_documents_validate_and_the_signature_is_checked_by_the_xmldsig_schema():
    xml, root = _build(_factura())
    with pytest.raises(InvalidComprobante, match="no está firmada"):
        validate(xml, signed=True)
    root.append(_signature())
    signed = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    validate(signed)
    validate(signed, signed=True)
    # A malformed signature is refused: the xmldsig schema is really imported.
    root.find(f"{{{DS}}}Signature").remove(root.find(f"{{{DS}}}Signature/{{{DS}}}SignedInfo"))
    with pytest.raises(InvalidComprobante, match="SignedInfo"):
        validate(etree.tostring(root))


def test_validate_reports_readable_errors():
    xml, root = _build(_factura())
    root.find("infoFactura/importeTotal").text = "12.345"
    root.find("infoTributaria/estab").text = "1"
    with pytest.raises(InvalidComprobante) as caught:
        validate(etree.tostring(root))
    assert len(caught.value.errors) == 2
    assert all(e.startswith("línea ") for e in caught.value.errors)
    assert "importeTotal" in str(caught.value) and "estab" in str(caught.value)
    with pytest.raises(InvalidComprobante, match="mal formado"):
        validate(b"<factura>")
    with pytest.raises(InvalidComprobante, match="raíz"):
        validate(b"<notaCredito/>")
    with pytest.raises(InvalidComprobante, match="versión"):
        validate(xml.replace(b'version="1.1.0"', b'version="2.1.0"'))


def test_validate_refuses_doctypes_and_entities():
    evil = (
        b'<?xml version="1.0"?><!DOCTYPE factura [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
        b'<factura id="comprobante" version="1.1.0">&x;</factura>'
    )
    with pytest.raises(InvalidComprobante, match="DOCTYPE") as caught:
        validate(evil)
    assert "root:" not in str(caught.value)
    # An element tree handed over directly, with an unresolved entity, is refused too.
    root = etree.fromstring(evil, parser=etree.XMLParser(resolve_entities=False))
    with pytest.raises(InvalidComprobante):
        validate(root)
