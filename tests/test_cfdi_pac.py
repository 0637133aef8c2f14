"""The sandbox PAC: validates like a PAC, stamps a TFD 1.1, never stamps a document twice."""

from __future__ import annotations

import base64
import os
import re
import stat
import threading
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from lxml import etree
from satcfdi.models import Certificate, Signer
from satcfdi.transform import SCHEMA_ROOT

from webapp.cfdi import build, samples, sign, ticket_total, validate
from webapp.cfdi.pac import Pac, PacError, Stamped
from webapp.cfdi.pac.sandbox import RFC_PROV_CERTIF, SandboxPac
from webapp.cfdi.testcsd import make_test_csd

pytestmark = pytest.mark.run_once  # the same on both databases: run once

NS = {
    "cfdi": "http://www.sat.gob.mx/cfd/4",
    "tfd": "http://www.sat.gob.mx/TimbreFiscalDigital",
}
TFD_XSLT = os.path.join(
    SCHEMA_ROOT, "www.sat.gob.mx/sitio_internet/cfd/TimbreFiscalDigital/cadenaoriginal_TFD_1_1.xslt"
)
CADENA_XSLT = os.path.join(
    SCHEMA_ROOT, "www.sat.gob.mx/sitio_internet/cfd/4/cadenaoriginal_4_0/cadenaoriginal_4_0.xslt"
)
MEXICO_CITY = ZoneInfo("America/Mexico_City")


@pytest.fixture(scope="module")
def pac_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("instance")


@pytest.fixture(scope="module")
def pac(pac_dir) -> SandboxPac:
    return SandboxPac(pac_dir)


def signed(folio: int = 1, **overrides) -> bytes:
    return sign(build(samples.draft(5, folio=folio, **overrides)), samples.signer())


@pytest.fixture(scope="module")
def stamped(pac) -> tuple[bytes, Stamped]:
    xml = signed(folio=1)
    return xml, pac.stamp(xml)


def test_sandbox_is_a_pac(pac):
    assert isinstance(pac, Pac) and pac.name == "sandbox"


def test_stamp_adds_a_valid_tfd_11(stamped):
    original, result = stamped
    validate(result.xml)  # CFDI 4.0 and TFD 1.1 XSDs
    root = etree.fromstring(result.xml)
    tfd = root.find("cfdi:Complemento/tfd:TimbreFiscalDigital", NS)
    assert tfd is not None
    assert tfd.get("Version") == "1.1"
    assert tfd.get("UUID") == result.uuid
    assert re.fullmatch(r"[0-9A-F]{8}-[0-9A-F]{4}-4[0-9A-F]{3}-[89AB][0-9A-F]{3}-[0-9A-F]{12}",
                        result.uuid)  # fmt: skip
    assert tfd.get("RfcProvCertif") == RFC_PROV_CERTIF
    assert tfd.get("SelloCFD") == etree.fromstring(original).get("Sello")
    assert tfd.get("NoCertificadoSAT") == result.no_certificado_sat
    assert re.fullmatch(r"\d{20}", result.no_certificado_sat)
    # FechaTimbrado is Mexico City local time without offset; Stamped carries it aware.
    assert tfd.get("FechaTimbrado") == result.fecha_timbrado.strftime("%Y-%m-%dT%H:%M:%S")
    assert (
        result.fecha_timbrado.utcoffset()
        == result.fecha_timbrado.astimezone(MEXICO_CITY).utcoffset()
    )
    assert abs(datetime.now(UTC) - result.fecha_timbrado) < timedelta(minutes=1)


def test_sello_sat_verifies_with_the_sandbox_certificate(pac, stamped):
    _, result = stamped
    tfd = etree.fromstring(result.xml).find("cfdi:Complemento/tfd:TimbreFiscalDigital", NS)
    standalone = etree.Element(tfd.tag, attrib=dict(tfd.attrib), nsmap={"tfd": NS["tfd"]})
    cadena = str(etree.XSLT(etree.parse(TFD_XSLT))(etree.ElementTree(standalone)))
    assert (
        cadena
        == "||"
        + "|".join(
            [
                "1.1",
                result.uuid,
                tfd.get("FechaTimbrado"),
                RFC_PROV_CERTIF,
                tfd.get("SelloCFD"),
                result.no_certificado_sat,
            ]
        )
        + "||"
    )
    certificate = x509.load_der_x509_certificate(pac.certificate_der())
    certificate.public_key().verify(
        base64.b64decode(tfd.get("SelloSAT")), cadena.encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    assert Certificate.load_certificate(pac.certificate_der()).certificate_number == (
        result.no_certificado_sat
    )


def test_stamping_leaves_the_signed_cfdi_untouched(stamped):
    original, result = stamped
    transform = etree.XSLT(etree.parse(CADENA_XSLT))
    before = etree.fromstring(original)
    after = etree.fromstring(result.xml)
    assert str(transform(etree.ElementTree(after))) == str(transform(etree.ElementTree(before)))
    assert {k: v for k, v in after.attrib.items()} == {k: v for k, v in before.attrib.items()}


def test_the_same_document_is_stamped_once(pac, stamped):
    original, first = stamped
    assert pac.stamp(original) == first
    assert pac.recover(original) == first
    # Another process (another instance on the same directory) knows it too.
    assert SandboxPac(pac.directory).recover(original) == first


def test_recover_of_a_document_never_stamped_is_none(pac):
    assert pac.recover(signed(folio=2)) is None


def test_different_documents_get_different_uuids(pac, stamped):
    _, first = stamped
    assert pac.stamp(signed(folio=3)).uuid != first.uuid


def test_concurrent_stamps_of_one_document_agree(pac):
    xml = signed(folio=4)
    results: list[Stamped] = []

    def stamp() -> None:
        results.append(SandboxPac(pac.directory).stamp(xml))

    threads = [threading.Thread(target=stamp) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 4 and len({r.uuid for r in results}) == 1


def test_tampered_cfdi_is_refused(pac, stamped):
    original, _ = stamped
    total = etree.fromstring(original).get("Total")
    tampered = original.replace(f'Total="{total}"'.encode(), b'Total="1.00"')
    with pytest.raises(PacError) as caught:
        pac.stamp(tampered)
    assert caught.value.code == "302" and not caught.value.retryable
    assert pac.recover(tampered) is None


def test_schema_breaking_cfdi_is_refused(pac):
    broken = signed(folio=5).replace(b'UsoCFDI="G03"', b'UsoCFDI="X99"')
    with pytest.raises(PacError) as caught:
        pac.stamp(broken)
    assert caught.value.code == "301"
    with pytest.raises(PacError) as caught:
        pac.stamp(b"not xml")
    assert caught.value.code == "301"


def test_cfdi_older_than_72_hours_is_refused(pac):
    old = signed(folio=6, fecha=datetime.now(UTC) - timedelta(hours=72, minutes=5))
    with pytest.raises(PacError) as caught:
        pac.stamp(old)
    assert caught.value.code == "401" and not caught.value.retryable
    # 71 hours is fine (with a CSD already valid then: make_test_csd's start yesterday).
    cer, key = make_test_csd(samples.EMISOR_RFC, samples.EMISOR_NOMBRE, "pw",
                             now=datetime.now(UTC) - timedelta(days=5))  # fmt: skip
    draft = samples.draft(5, folio=7, fecha=datetime.now(UTC) - timedelta(hours=71))
    fresh_enough = sign(build(draft), Signer.load(certificate=cer, key=key, password="pw"))
    assert pac.stamp(fresh_enough).uuid


def test_cfdi_from_the_future_is_refused(pac):
    with pytest.raises(PacError) as caught:
        pac.stamp(signed(folio=8, fecha=datetime.now(UTC) + timedelta(hours=1)))
    assert caught.value.code == "401"


def test_a_stamped_document_is_not_stamped_again(pac, stamped):
    _, result = stamped
    with pytest.raises(PacError) as caught:
        pac.stamp(result.xml)
    assert caught.value.code == "307"


def test_seal_of_another_rfc_is_refused(pac):
    comprobante = build(samples.draft(2, folio=9))
    comprobante.sign(samples.signer("TDG150312K46", "TIENDAS DEMO LA GAVIOTA"))  # no guard
    with pytest.raises(PacError) as caught:
        pac.stamp(comprobante.xml_bytes())
    assert caught.value.code == "303"


def test_certificate_is_made_once_per_installation(tmp_path):
    first = SandboxPac(tmp_path / "instance")
    der = first.certificate_der()
    cer, key = tmp_path / "instance/sandbox-pac.cer", tmp_path / "instance/sandbox-pac.key"
    assert cer.read_bytes() == der
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    assert SandboxPac(tmp_path / "instance").certificate_der() == der
    assert SandboxPac(tmp_path / "other").certificate_der() != der

    certificate = Certificate.load_certificate(der)
    assert certificate.rfc_pac == RFC_PROV_CERTIF
    assert re.fullmatch(r"\d{20}", certificate.certificate_number)
    assert "PRUEBAS" in certificate.issuer() and "SIN VALIDEZ" in certificate.issuer()
    assert certificate.public_key().key_size == 2048


def test_stamped_total_is_the_drafts(stamped):
    _, result = stamped
    root = etree.fromstring(result.xml)
    assert Decimal(root.get("Total")) == ticket_total(samples.draft(5).lines)
