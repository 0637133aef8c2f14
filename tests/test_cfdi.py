"""webapp.cfdi: amounts, Draft → CFDI 4.0 (build, sign), the SAT XSD, amounts in words."""

from __future__ import annotations

import base64
import os
import re
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree
from satcfdi.transform import SCHEMA_ROOT

from webapp.cfdi import (
    Draft,
    InvalidCfdi,
    Line,
    amount_in_words,
    build,
    line_importe,
    line_tax,
    samples,
    sign,
    ticket_total,
    totals,
    validate,
)
from webapp.cfdi.builder import BuildError
from webapp.cfdi.catalogs import postal_code_exists
from webapp.cfdi.xsd import schema
from webapp.demo.data import generate_tickets

D = Decimal
NS = {"cfdi": "http://www.sat.gob.mx/cfd/4"}
# SAT's XSLT as shipped, loaded here on its own: the test does not trust webapp.cfdi.cadena.
CADENA_XSLT = os.path.join(
    SCHEMA_ROOT, "www.sat.gob.mx/sitio_internet/cfd/4/cadenaoriginal_4_0/cadenaoriginal_4_0.xslt"
)


def line(qty: str, price: str, factor: str | None = "Tasa", rate: str | None = "0.16") -> Line:
    objeto = "01" if factor is None else "02"
    return Line("ARTICULO", "01010101", "H87", D(qty), D(price), objeto, factor,
                None if rate is None else D(rate))  # fmt: skip


@pytest.fixture(scope="module")
def signed() -> bytes:
    return sign(build(samples.draft(6)), samples.signer())


def test_sample_parties_exist_in_sat_catalogs():
    assert postal_code_exists("76028") and postal_code_exists("06600")
    assert not postal_code_exists("00001")


# --- amounts ------------------------------------------------------------------------------


def test_line_amounts_round_half_up():
    assert line_importe(line("0.5", "0.25")) == D("0.13")  # 0.125: half even would say 0.12
    assert line_importe(line("2.5", "10.05")) == D("25.13")  # 25.125
    assert line_tax(line("1", "15.65")) == D("2.50")  # 2.504
    assert line_tax(line("1", "15.66")) == D("2.51")  # 2.5056
    assert line_tax(line("1", "10", "Exento", None)) is None
    assert line_tax(line("1", "10", None, None)) is None
    assert line_tax(line("1", "10", "Tasa", "0")) == D("0.00")


def test_totals_group_taxes_by_factor_and_rate():
    lines = [
        line("1", "100"),
        line("2", "10.005"),  # 20.01 → IVA 3.20
        line("1", "50", "Tasa", "0"),
        line("1", "30", "Exento", None),
        line("1", "5", None, None),
    ]
    result = totals(lines)
    assert result.subtotal == D("205.01")
    assert [(t.factor, t.rate, t.base, t.amount) for t in result.taxes] == [
        ("Tasa", D("0.16"), D("120.01"), D("19.20")),
        ("Tasa", D("0"), D("50"), D("0.00")),
        ("Exento", None, D("30"), None),
    ]
    assert result.tax_total == D("19.20")
    assert result.total == D("224.21") == ticket_total(lines)
    assert result.tax(D("0.160000")).base == D("120.01")
    assert result.exempt.base == D("30")


def test_only_exempt_lines_have_no_tax_total():
    result = totals([line("1", "30", "Exento", None)])
    assert result.tax_total is None and result.total == D("30.00")


def test_line_checks_its_shape():
    with pytest.raises(TypeError):
        Line("X", "01010101", "H87", 1.5, D("1"), "02", "Tasa", D("0.16"))  # type: ignore[arg-type]
    for bad in (
        dict(objeto_imp="02", tax_factor="Tasa", tax_rate=None),
        dict(objeto_imp="02", tax_factor="Exento", tax_rate=D("0.16")),
        dict(objeto_imp="02", tax_factor=None, tax_rate=None),
        dict(objeto_imp="01", tax_factor="Tasa", tax_rate=D("0.16")),
        dict(objeto_imp="03", tax_factor=None, tax_rate=None),
        dict(quantity=D("0")),
        dict(quantity=D("1.0000001")),
        dict(description="A|B"),
    ):
        fields = dict(description="X", clave_prod_serv="01010101", clave_unidad="H87",
                      quantity=D("1"), unit_price=D("1"), objeto_imp="02", tax_factor="Tasa",
                      tax_rate=D("0.16"))  # fmt: skip
        fields.update(bad)
        with pytest.raises(ValueError):
            Line(**fields)


def test_draft_needs_an_aware_date_and_lines():
    with pytest.raises(ValueError, match="aware"):
        samples.draft(fecha=datetime(2025, 1, 1, 12, 0))
    with pytest.raises(ValueError, match="line"):
        samples.draft(lines=())


# --- build and sign -----------------------------------------------------------------------


def test_signed_cfdi_is_xsd_valid_and_says_what_the_draft_says(signed):
    validate(signed)
    root = etree.fromstring(signed)
    draft = samples.draft(6)
    expected = totals(draft.lines)
    assert root.tag == "{http://www.sat.gob.mx/cfd/4}Comprobante"
    assert {k: root.get(k) for k in ("Version", "TipoDeComprobante", "Exportacion", "Serie",
            "Folio", "FormaPago", "MetodoPago", "Moneda", "LugarExpedicion")} == {
        "Version": "4.0", "TipoDeComprobante": "I", "Exportacion": "01", "Serie": "A",
        "Folio": "1", "FormaPago": "01", "MetodoPago": "PUE", "Moneda": "MXN",
        "LugarExpedicion": "06600",
    }  # fmt: skip
    assert D(root.get("SubTotal")) == expected.subtotal
    assert D(root.get("Total")) == expected.total == ticket_total(draft.lines)
    assert root.get("NoCertificado") == samples.signer().certificate_number
    emisor, receptor = root.find("cfdi:Emisor", NS), root.find("cfdi:Receptor", NS)
    assert dict(emisor.attrib) == {
        "Rfc": "EKU9003173C9", "Nombre": "ESCUELA KEMPER URGATE", "RegimenFiscal": "601"
    }  # fmt: skip
    assert dict(receptor.attrib) == {
        "Rfc": "XOJI740919U48", "Nombre": "INGRID XODAR JIMENEZ",
        "DomicilioFiscalReceptor": "76028", "RegimenFiscalReceptor": "612", "UsoCFDI": "G03",
    }  # fmt: skip


def test_concepts_carry_their_own_iva_and_the_summary_is_their_sum(signed):
    root = etree.fromstring(signed)
    conceptos = root.findall("cfdi:Conceptos/cfdi:Concepto", NS)
    assert len(conceptos) == 6
    first = conceptos[0]
    assert {k: first.get(k) for k in ("ClaveProdServ", "Cantidad", "ClaveUnidad",
            "ValorUnitario", "Importe", "ObjetoImp", "NoIdentificacion")} == {
        "ClaveProdServ": "50202306", "Cantidad": "2", "ClaveUnidad": "H87",
        "ValorUnitario": "15.52", "Importe": "31.04", "ObjetoImp": "02",
        "NoIdentificacion": "7501055300075",
    }  # fmt: skip
    traslado = first.find("cfdi:Impuestos/cfdi:Traslados/cfdi:Traslado", NS)
    assert dict(traslado.attrib) == {
        "Base": "31.04", "Impuesto": "002", "TipoFactor": "Tasa", "TasaOCuota": "0.160000",
        "Importe": "4.97",
    }  # fmt: skip
    exempt = conceptos[2].find("cfdi:Impuestos/cfdi:Traslados/cfdi:Traslado", NS)
    assert dict(exempt.attrib) == {"Base": "15.00", "Impuesto": "002", "TipoFactor": "Exento"}
    assert conceptos[5].get("ObjetoImp") == "01"
    assert conceptos[5].find("cfdi:Impuestos", NS) is None

    # SAT: each summary Traslado is the sum of the concepts' Base and Importe of its
    # Impuesto/TipoFactor/TasaOCuota; TotalImpuestosTrasladados the sum of the Importes.
    sums: dict[tuple, list[Decimal]] = {}
    for t in root.iterfind("cfdi:Conceptos/cfdi:Concepto/cfdi:Impuestos/cfdi:Traslados/"
                           "cfdi:Traslado", NS):  # fmt: skip
        key = (t.get("Impuesto"), t.get("TipoFactor"), t.get("TasaOCuota"))
        base, amount = sums.setdefault(key, [D(0), D(0)])
        sums[key] = [base + D(t.get("Base")), amount + D(t.get("Importe", "0"))]
    summary = root.find("cfdi:Impuestos", NS)
    found = {
        (t.get("Impuesto"), t.get("TipoFactor"), t.get("TasaOCuota")): [
            D(t.get("Base")),
            D(t.get("Importe", "0")),
        ]
        for t in summary.iterfind("cfdi:Traslados/cfdi:Traslado", NS)
    }
    assert found == sums
    assert D(summary.get("TotalImpuestosTrasladados")) == sum(a for _, a in sums.values())
    subtotal = sum(D(c.get("Importe")) for c in conceptos)
    assert D(root.get("SubTotal")) == subtotal
    assert D(root.get("Total")) == subtotal + D(summary.get("TotalImpuestosTrasladados"))


def test_sello_verifies_over_the_cadena_of_sats_xslt(signed):
    root = etree.fromstring(signed)
    cadena = str(etree.XSLT(etree.parse(CADENA_XSLT))(etree.ElementTree(root)))
    assert cadena.startswith("||4.0|A|1|") and cadena.endswith("||")
    certificate = x509.load_der_x509_certificate(base64.b64decode(root.get("Certificado")))
    certificate.public_key().verify(
        base64.b64decode(root.get("Sello")), cadena.encode(), padding.PKCS1v15(), hashes.SHA256()
    )


def test_fecha_is_local_time_of_the_lugar_de_expedicion():
    moment = datetime(2025, 3, 10, 18, 30, 15, 123456, tzinfo=UTC)
    mexico = etree.fromstring(build(samples.draft(1, fecha=moment)).xml_bytes())
    assert mexico.get("Fecha") == "2025-03-10T12:30:15"  # UTC-6
    cancun = build(samples.draft(1, fecha=moment, lugar_expedicion="77500"))
    assert etree.fromstring(cancun.xml_bytes()).get("Fecha") == "2025-03-10T13:30:15"  # UTC-5


def test_half_up_importe_survives_satcfdi():
    draft = samples.draft(lines=(line("0.5", "0.25"), line("2.5", "10.05", "Exento", None)))
    root = etree.fromstring(sign(build(draft), samples.signer()))
    assert [c.get("Importe") for c in root.iterfind("cfdi:Conceptos/cfdi:Concepto", NS)] == [
        "0.13", "25.13"
    ]  # fmt: skip
    assert D(root.get("Total")) == ticket_total(draft.lines) == D("25.28")


def test_generic_rfc_receptor_builds():
    draft = samples.draft(2, receptor_rfc="XAXX010101000", receptor_nombre="PUBLICO EN GENERAL",
                          receptor_regimen="616", uso_cfdi="S01", receptor_cp="06600")  # fmt: skip
    validate(sign(build(draft), samples.signer()))


def test_taxed_line_without_amount_is_refused():
    with pytest.raises(BuildError):
        build(samples.draft(lines=(line("1", "0"),)))


def test_csd_of_another_rfc_cannot_sign():
    with pytest.raises(BuildError, match="TDG150312K46"):
        sign(build(samples.draft(1)), samples.signer("TDG150312K46", "TIENDAS DEMO LA GAVIOTA"))


def test_every_demo_ticket_is_invoiceable_to_the_cent():
    for ticket in generate_tickets(datetime.now(UTC), count=300):
        lines = tuple(demo_line.as_line() for demo_line in ticket.lines)
        comprobante = build(samples.draft(lines=lines))
        assert comprobante["Total"] == ticket.total == ticket_total(lines)


# --- XSD ------------------------------------------------------------------------------------


def test_schema_is_compiled_once():
    assert schema() is schema()


def test_xsd_errors_are_reported(signed):
    with pytest.raises(InvalidCfdi) as caught:
        validate(b"<cfdi:Comprobante xmlns:cfdi='http://www.sat.gob.mx/cfd/4'")
    assert "mal formado" in caught.value.errors[0]
    broken = signed.replace(b'Rfc="XOJI740919U48"', b'Rfc="NOT-AN-RFC"')
    broken = broken.replace(b'UsoCFDI="G03"', b'UsoCFDI="Z99"')
    with pytest.raises(InvalidCfdi) as caught:
        validate(broken)
    assert len(caught.value.errors) >= 2
    assert all(len(e) < 320 for e in caught.value.errors)  # not SAT's 52,000 claves
    assert any("Rfc" in e for e in caught.value.errors)
    assert any("UsoCFDI" in e for e in caught.value.errors)
    with pytest.raises(InvalidCfdi, match="raíz"):
        validate(b"<a/>")


def test_parser_refuses_entities():
    evil = b'<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>'
    with pytest.raises(InvalidCfdi):
        validate(evil)


# --- amounts in words -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "words"),
    [
        ("0.50", "CERO PESOS 50/100 M.N."),
        ("1", "UN PESO 00/100 M.N."),
        ("16.00", "DIECISÉIS PESOS 00/100 M.N."),
        ("21", "VEINTIÚN PESOS 00/100 M.N."),
        ("100", "CIEN PESOS 00/100 M.N."),
        ("116.00", "CIENTO DIECISÉIS PESOS 00/100 M.N."),
        ("1001", "MIL UN PESOS 00/100 M.N."),
        ("21345.67", "VEINTIÚN MIL TRESCIENTOS CUARENTA Y CINCO PESOS 67/100 M.N."),
        ("500999.99", "QUINIENTOS MIL NOVECIENTOS NOVENTA Y NUEVE PESOS 99/100 M.N."),
        ("1000000", "UN MILLÓN DE PESOS 00/100 M.N."),
        ("2500000.10", "DOS MILLONES QUINIENTOS MIL PESOS 10/100 M.N."),
        ("1000000000", "MIL MILLONES DE PESOS 00/100 M.N."),
        ("0.005", "CERO PESOS 01/100 M.N."),
    ],
)
def test_amount_in_words(amount, words):
    assert amount_in_words(D(amount)) == words


def test_amount_in_words_other_currency_and_negative():
    assert amount_in_words(D("100"), "USD") == "CIEN USD 00/100"
    with pytest.raises(ValueError):
        amount_in_words(D("-1"))


def test_draft_is_a_value():
    draft = samples.draft(1, fecha=datetime(2025, 1, 1, tzinfo=UTC))
    assert draft == samples.draft(1, fecha=datetime(2025, 1, 1, tzinfo=UTC))
    assert isinstance(draft, Draft) and isinstance(draft.lines, tuple)


def test_large_catalogs_are_still_enforced(signed):
    broken = (
        signed.replace(b'ClaveProdServ="50202306"', b'ClaveProdServ="99999999"', 1)
        .replace(b'ClaveUnidad="KGM"', b'ClaveUnidad="ZZZ"')
        .replace(b'LugarExpedicion="06600"', b'LugarExpedicion="00001"')
    )
    with pytest.raises(InvalidCfdi) as caught:
        validate(broken)
    assert [re.search(r"set (c_\w+)", e).group(1) for e in caught.value.errors] == [
        "c_ClaveProdServ",
        "c_ClaveUnidad",
        "c_CodigoPostal",
    ]
    # The XSD collapses whitespace before comparing: so does the check.
    with pytest.raises(InvalidCfdi, match="ClaveProdServ"):
        validate(signed.replace(b'ClaveProdServ="50202306"', b'ClaveProdServ="   "', 1))


@pytest.mark.parametrize(
    "lines",
    [
        (line("1", "10", None, None), line("2", "3.5", None, None)),  # no Impuestos at all
        (line("1", "30", "Exento", None),),  # Traslados without TotalImpuestosTrasladados
    ],
)
def test_drafts_without_iva_amounts_are_valid(lines):
    xml = sign(build(samples.draft(lines=lines)), samples.signer())
    validate(xml)
    root = etree.fromstring(xml)
    summary = root.find("cfdi:Impuestos", NS)
    if lines[0].objeto_imp == "01":
        assert summary is None
    else:
        assert summary.get("TotalImpuestosTrasladados") is None
    assert D(root.get("Total")) == ticket_total(lines)
