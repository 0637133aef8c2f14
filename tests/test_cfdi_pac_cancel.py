"""The sandbox PAC's cancellation: SAT's acceptance rules, motive 01's replacement, the
receptor's answer and the three-day deadline."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from lxml import etree

from webapp.cfdi import build, samples, sign
from webapp.cfdi.draft import GlobalInfo
from webapp.cfdi.pac import CancelResult, Pac, PacError
from webapp.cfdi.pac.sandbox import SandboxPac

pytestmark = pytest.mark.run_once  # the same on both databases: run once

BIG = (replace(samples.lines(4)[3], quantity=Decimal("100")),)  # about 4,500 MXN
_folio = iter(range(1, 10**6))


@pytest.fixture(scope="module")
def pac(tmp_path_factory) -> SandboxPac:
    return SandboxPac(tmp_path_factory.mktemp("cancel-pac"))


def stamped(pac: SandboxPac, *, big: bool = False, rfc: str | None = None, **overrides) -> bytes:
    fields = dict(folio=next(_folio), **overrides)
    if big:
        fields["lines"] = BIG
    signer = samples.signer()
    if rfc:
        fields.update(emisor_rfc=rfc, emisor_nombre="OTRA EMPRESA")
        signer = samples.signer(rfc, "OTRA EMPRESA")
    return pac.stamp(sign(build(samples.draft(2, **fields)), signer)).xml


def uuid_of(xml: bytes) -> str:
    root = etree.fromstring(xml)
    return root.find(".//{http://www.sat.gob.mx/TimbreFiscalDigital}TimbreFiscalDigital").get(
        "UUID"
    )


def test_every_pac_has_the_interface_and_says_when_it_cannot():
    class Minimal(Pac):
        name = "minimal"

        def stamp(self, xml):  # pragma: no cover
            raise NotImplementedError

        def recover(self, xml):  # pragma: no cover
            raise NotImplementedError

    with pytest.raises(PacError, match="aún no"):
        Minimal().cancel(b"", "02")
    with pytest.raises(PacError, match="aún no"):
        Minimal().cancel_status(b"")
    minimal = Minimal()
    assert minimal.with_signer(samples.signer()) is minimal  # signs nothing with the CSD


def test_the_sandbox_needs_no_issuer_csd(pac):
    assert pac.with_signer(samples.signer()) is pac


def test_small_total_needs_no_acceptance(pac):
    xml = stamped(pac)
    result = pac.cancel(xml, "02")
    assert isinstance(result, CancelResult) and result.status == "cancelled"
    acuse = etree.fromstring(result.acuse)
    assert acuse.findtext("Folios/UUID") == uuid_of(xml)
    assert acuse.findtext("Folios/Motivo") == "02"
    assert "PRUEBAS" in acuse.get("Autoridad")
    # Asking again answers the same (SAT: previamente cancelado), never a second request.
    assert pac.cancel(xml, "02").status == "cancelled"
    assert pac.cancel_status(xml).status == "cancelled"


@pytest.mark.parametrize(
    "overrides",
    [
        {"receptor_rfc": "XAXX010101000", "receptor_nombre": "PUBLICO EN GENERAL",
         "receptor_regimen": "616", "uso_cfdi": "S01", "receptor_cp": "06600"},
        {"receptor_rfc": "XEXX010101000", "receptor_nombre": "CLIENTE EXTRANJERO",
         "receptor_regimen": "616", "uso_cfdi": "S01", "receptor_cp": "06600"},
        {"receptor_rfc": "XAXX010101000", "receptor_nombre": "PUBLICO EN GENERAL",
         "receptor_regimen": "616", "uso_cfdi": "S01", "receptor_cp": "06600",
         "informacion_global": GlobalInfo("01", "12", 2026)},
    ],
)  # fmt: skip
def test_publico_en_general_and_global_need_no_acceptance(pac, overrides):
    xml = stamped(pac, big=True, **overrides)
    assert pac.cancel(xml, "04" if "informacion_global" in overrides else "02").status == (
        "cancelled"
    )


def test_large_total_waits_for_the_receptor(pac):
    accepted, rejected = stamped(pac, big=True), stamped(pac, big=True)
    assert pac.cancel(accepted, "02").status == "pending"
    assert pac.cancel(accepted, "02").status == "pending"  # not a second request
    assert pac.cancel_status(accepted).status == "pending"
    pac.receptor_answers(uuid_of(accepted), accept=True)
    assert pac.cancel_status(accepted).status == "cancelled"
    pac.cancel(rejected, "03")
    pac.receptor_answers(uuid_of(rejected).lower(), accept=False)
    assert pac.cancel_status(rejected).status == "rejected"
    # After a rejection the issuer may ask again.
    assert pac.cancel(rejected, "03").status == "pending"


def test_receptor_answers_only_pending_requests(pac):
    xml = stamped(pac)
    with pytest.raises(ValueError):
        pac.receptor_answers(uuid_of(xml), accept=True)
    pac.cancel(xml, "02")
    with pytest.raises(ValueError):
        pac.receptor_answers(uuid_of(xml), accept=False)  # already cancelled


def test_three_days_without_an_answer_cancel(pac):
    xml = stamped(pac, big=True)
    pac.cancel(xml, "02")
    later = SandboxPac(pac.directory, now=lambda: datetime.now(UTC) + timedelta(days=3, hours=1))
    result = later.cancel_status(xml)
    assert result.status == "cancelled" and "plazo" in result.message.lower()


def test_motive_01_replacement_rules(pac):
    xml, replacement = stamped(pac), stamped(pac)
    with pytest.raises(PacError, match="requiere"):
        pac.cancel(xml, "01")
    with pytest.raises(PacError, match="no existe"):
        pac.cancel(xml, "01", "12345678-1234-1234-1234-123456789012")
    with pytest.raises(PacError, match="mismo"):
        pac.cancel(xml, "01", uuid_of(xml))
    foreign = stamped(pac, rfc="AAA010101AAA")
    with pytest.raises(PacError, match="otro emisor"):
        pac.cancel(xml, "01", uuid_of(foreign))
    result = pac.cancel(xml, "01", uuid_of(replacement).lower())
    assert result.status == "cancelled"
    assert etree.fromstring(result.acuse).findtext("Folios/FolioSustitucion") == uuid_of(
        replacement
    )


@pytest.mark.parametrize("motive", ["02", "03", "04"])
def test_other_motives_refuse_a_replacement(pac, motive):
    xml, other = stamped(pac), stamped(pac)
    with pytest.raises(PacError, match="Sólo el motivo 01"):
        pac.cancel(xml, motive, uuid_of(other))


def test_bad_requests(pac, tmp_path):
    xml = stamped(pac)
    with pytest.raises(PacError, match="inválido"):
        pac.cancel(xml, "05")
    with pytest.raises(PacError) as caught:
        SandboxPac(tmp_path).cancel(xml, "02")  # another installation never stamped it
    assert caught.value.code == "205"
    with pytest.raises(PacError):
        pac.cancel(b"not xml", "02")
    unsigned = sign(build(samples.draft(1, folio=next(_folio))), samples.signer())
    with pytest.raises(PacError, match="timbrado"):
        pac.cancel(unsigned, "02")
    with pytest.raises(PacError) as caught:
        pac.cancel_status(stamped(pac))
    assert caught.value.code == "sin-solicitud"
