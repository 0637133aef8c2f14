"""SRI signing: the .p12 checks on upload and the XAdES-BES signature of a comprobante.

The signature is checked by tests/xades.py's `verify`, written for the tests with lxml and
cryptography only (no signxml, nothing of webapp.sri.signing).
"""

from __future__ import annotations

import base64
import dataclasses
from datetime import UTC, datetime, timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import NameOID
from lxml import etree

from tests.xades import (
    C14N,
    DS,
    NS,
    SIGNED_PROPERTIES,
    Invalid,
    c14n,
    digest,
    verify,
    without_signature,
)
from webapp.sri.p12 import P12_PROBLEMS, P12Error, certificate_ruc, load_p12
from webapp.sri.signing import SigningError, sign
from webapp.sri.testp12 import TEST_AUTHORITY, make_test_p12

pytestmark = pytest.mark.run_once  # the same on both databases: run once

RUC = "1790012345001"
OTHER_RUC = "0992345678001"
PASSWORD = "Clave-de-prueba-2024"
NOW = datetime(2025, 3, 14, 15, 0, tzinfo=UTC)

FACTURA = """<?xml version="1.0" encoding="UTF-8"?>
<factura id="comprobante" version="1.1.0">
  <infoTributaria>
    <ambiente>1</ambiente>
    <tipoEmision>1</tipoEmision>
    <razonSocial>TELECOMUNICACIONES ANDINAS DEMO S.A.</razonSocial>
    <ruc>1790012345001</ruc>
    <claveAcceso>1403202501179001234500110010010000000011234567813</claveAcceso>
    <codDoc>01</codDoc>
    <estab>001</estab>
    <ptoEmi>001</ptoEmi>
    <secuencial>000000001</secuencial>
    <dirMatriz>Av. Amazonas N34-451 y Atahualpa, Quito</dirMatriz>
  </infoTributaria>
  <infoFactura>
    <fechaEmision>14/03/2025</fechaEmision>
    <razonSocialComprador>José Núñez Peña</razonSocialComprador>
    <identificacionComprador>1710034065</identificacionComprador>
    <totalSinImpuestos>10.00</totalSinImpuestos>
    <importeTotal>11.50</importeTotal>
    <moneda>DOLAR</moneda>
  </infoFactura>
  <detalles>
    <detalle>
      <descripcion>Plan móvil 10 GB — marzo</descripcion>
      <precioTotalSinImpuesto>10.00</precioTotalSinImpuesto>
    </detalle>
  </detalles>
</factura>
""".encode()


# -- fixtures ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def p12() -> bytes:
    return make_test_p12(RUC, "TELECOMUNICACIONES ANDINAS DEMO S.A.", PASSWORD, now=NOW)


@pytest.fixture(scope="module")
def key(p12):
    return load_p12(p12, PASSWORD, RUC, NOW)


@pytest.fixture(scope="module")
def other_key():
    data = make_test_p12(OTHER_RUC, "OTRA EMPRESA S.A.", PASSWORD, now=NOW)
    return load_p12(data, PASSWORD, OTHER_RUC, NOW)


@pytest.fixture(scope="module")
def signed(key) -> bytes:
    return sign(FACTURA, key, now=NOW + timedelta(minutes=5))


# -- the signature ----------------------------------------------------------------------------


def test_a_signed_factura_verifies_with_its_certificate(signed, key):
    assert verify(signed, key.certificate) == key.certificate


def test_the_signature_is_the_roots_last_child_and_the_factura_is_unchanged(signed):
    root = etree.fromstring(signed)
    assert root.tag == "factura" and root.get("id") == "comprobante"
    assert root[-1].tag == f"{{{DS}}}Signature"
    assert len(root.findall(f"{{{DS}}}Signature")) == 1
    assert etree.tostring(without_signature(signed), method="c14n") == etree.tostring(
        etree.fromstring(FACTURA), method="c14n"
    )
    assert "José Núñez Peña" in signed.decode("utf-8")


def test_the_signature_has_sris_shape(signed):
    signature = etree.fromstring(signed)[-1]
    info = signature.find("ds:SignedInfo", NS)
    assert info.find("ds:CanonicalizationMethod", NS).get("Algorithm") == (
        "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
    )
    assert info.find("ds:SignatureMethod", NS).get("Algorithm") == (
        "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
    )
    references = info.findall("ds:Reference", NS)
    assert len(references) == 3
    assert {r.find("ds:DigestMethod", NS).get("Algorithm") for r in references} == {
        "http://www.w3.org/2000/09/xmldsig#sha1"
    }
    types = {r.get("URI"): r.get("Type") for r in references}
    assert "#comprobante" in types
    key_info_id = signature.find("ds:KeyInfo", NS).get("Id")
    assert f"#{key_info_id}" in types
    assert SIGNED_PROPERTIES in types.values()
    properties = signature.find("ds:Object/xades:QualifyingProperties", NS)
    assert properties.get("Target") == f"#{signature.get('Id')}"
    assert properties.findtext(
        "xades:SignedProperties/xades:SignedSignatureProperties/xades:SigningTime", namespaces=NS
    ) == ("2025-03-14T10:05:00-05:00")
    data_format = properties.find(
        "xades:SignedProperties/xades:SignedDataObjectProperties/xades:DataObjectFormat", NS
    )
    comprobante_ref = next(r for r in references if r.get("URI") == "#comprobante")
    assert data_format.get("ObjectReference") == f"#{comprobante_ref.get('Id')}"
    assert data_format.findtext("xades:MimeType", namespaces=NS) == "text/xml"


def test_a_changed_amount_fails(signed):
    tampered = signed.replace(b"<importeTotal>11.50<", b"<importeTotal>1.50<")
    assert tampered != signed
    with pytest.raises(Invalid, match="#comprobante"):
        verify(tampered)


def test_a_changed_signing_time_fails(signed):
    tampered = signed.replace(b"2025-03-14T10:05:00-05:00", b"2025-03-13T10:05:00-05:00")
    assert tampered != signed
    with pytest.raises(Invalid, match="SignedProperties"):
        verify(tampered)


def test_a_changed_signed_properties_with_its_digest_recomputed_fails(signed):
    """Whoever edits SignedProperties and fixes its Reference still breaks SignatureValue."""
    root = etree.fromstring(signed)
    signing_time = root.find(".//xades:SigningTime", NS)
    signing_time.text = "2025-03-13T10:05:00-05:00"
    properties = root.find(".//xades:SignedProperties", NS)
    reference = root.find(f".//ds:Reference[@URI='#{properties.get('Id')}']", NS)
    reference.find("ds:DigestValue", NS).text = base64.b64encode(
        digest(c14n(properties, next(iter(C14N))), "http://www.w3.org/2000/09/xmldsig#sha1")
    ).decode()
    with pytest.raises(Invalid, match="SignatureValue"):
        verify(etree.tostring(root))


def test_another_key_fails(key, other_key, signed):
    with pytest.raises(Invalid, match="another certificate"):
        verify(signed, other_key.certificate)
    # Signed with another key while naming our certificate: SignatureValue does not verify.
    forged = sign(FACTURA, dataclasses.replace(other_key, certificate=key.certificate), now=NOW)
    with pytest.raises(Invalid, match="SignatureValue"):
        verify(forged)


def test_a_pretty_printed_comprobante_without_declaration_signs_too(key):
    xml = b'<factura id="comprobante" version="2.1.0">\n\t<infoTributaria/>\n</factura>\n'
    assert verify(sign(xml, key)) == key.certificate


@pytest.mark.parametrize(
    "xml",
    [b"<factura version='1.1.0'/>", b"not xml", b'<!DOCTYPE x [<!ENTITY e "1">]><factura/>'],
)
def test_what_is_not_a_comprobante_is_refused(key, xml):
    with pytest.raises(SigningError):
        sign(xml, key)


def test_a_signed_comprobante_is_not_signed_twice(key, signed):
    with pytest.raises(SigningError, match="already signed"):
        sign(signed, key)


# -- the .p12 on upload -----------------------------------------------------------------------


def test_a_good_p12_opens(key):
    assert key.ruc == RUC
    assert key.holder == "TELECOMUNICACIONES ANDINAS DEMO S.A."
    assert key.issuer == TEST_AUTHORITY
    assert key.valid_from == NOW and key.valid_to == NOW.replace(year=2027)
    assert key.private_key.key_size == 2048
    assert [c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value for c in key.chain] == [
        TEST_AUTHORITY
    ]
    assert key.certificate.issuer == key.chain[0].subject
    assert not key.expires_soon(NOW) and key.expires_soon(NOW.replace(year=2027) - timedelta(1))


def _refusal(data, password=PASSWORD, ruc=RUC, now=NOW) -> P12Error:
    with pytest.raises(P12Error) as caught:
        load_p12(data, password, ruc, now)
    assert caught.value.code in P12_PROBLEMS
    return caught.value


def test_a_wrong_password_is_refused(p12):
    error = _refusal(p12, password="otra clave")
    assert error.code == "password" and "contraseña" in str(error)


@pytest.mark.parametrize(
    "data",
    [b"", b"hola", b"\x30\x03\x02\x01\x03", b"-----BEGIN CERTIFICATE-----\nMII=\n"],
)
def test_what_is_not_a_p12_is_refused(data):
    error = _refusal(data)
    assert error.code == "format" and ".p12" in str(error)


def test_a_certificate_of_the_p12_as_der_is_not_a_p12(key):
    assert _refusal(key.certificate.public_bytes(Encoding.DER)).code == "format"


def test_a_p12_without_its_private_key_is_refused():
    data = make_test_p12(RUC, "SIN CLAVE S.A.", PASSWORD, now=NOW, with_key=False)
    error = _refusal(data)
    assert error.code == "no_key" and "clave privada" in str(error)


def test_an_encryption_certificate_is_refused():
    data = make_test_p12(RUC, "CIFRADO S.A.", PASSWORD, now=NOW, signing=False)
    error = _refusal(data)
    assert error.code == "not_signing" and "firma digital" in str(error)


def test_another_rucs_certificate_is_refused(p12):
    error = _refusal(p12, ruc=OTHER_RUC)
    assert error.code == "ruc" and error.ruc == RUC
    assert str(error) == f"El certificado pertenece al RUC {RUC}, no al {OTHER_RUC}."


def test_a_certificate_without_ruc_is_refused():
    error = _refusal(make_test_p12(None, "SIN RUC S.A.", PASSWORD, now=NOW))
    assert error.code == "no_ruc"


def test_a_natural_persons_certificate_names_the_cedulas_ruc():
    data = make_test_p12(None, "MARIA PEREZ", PASSWORD, now=NOW, cedula="1710034065")
    assert load_p12(data, PASSWORD, "1710034065001", NOW).ruc == "1710034065001"


def test_an_expired_certificate_is_refused():
    data = make_test_p12(RUC, "VENCIDA S.A.", PASSWORD, now=NOW.replace(year=2022))
    error = _refusal(data)
    assert error.code == "expired" and "vencido" in str(error)
    assert error.valid_to == NOW.replace(year=2024)


def test_a_certificate_not_valid_yet_is_refused(p12):
    error = _refusal(p12, now=NOW - timedelta(seconds=1))
    assert error.code == "not_yet_valid" and error.valid_from == NOW


def test_the_ruc_is_read_where_the_banco_central_writes_it(key):
    """BCE: 1.3.6.1.4.1.37947.3.11, a PrintableString."""
    key = key.private_key
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "EMPRESA BCE")])
    value = b"\x13\x0d" + RUC.encode()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + timedelta(days=1))
        .add_extension(
            x509.UnrecognizedExtension(x509.ObjectIdentifier("1.3.6.1.4.1.37947.3.11"), value),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    assert certificate_ruc(cert) == RUC
