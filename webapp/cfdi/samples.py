"""Sample drafts and a test CSD, for tests, benchmarks and previews (never for real invoices).

The emisor is SAT's published test taxpayer ESCUELA KEMPER URGATE, signing with a CSD from
`webapp.cfdi.testcsd.make_test_csd` (a made-up authority: no PAC but the sandbox accepts it).
"""

from __future__ import annotations

import functools
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal

from satcfdi.models import Signer

from webapp.cfdi.draft import Draft, Line
from webapp.cfdi.testcsd import make_test_csd

EMISOR_RFC = "EKU9003173C9"
EMISOR_NOMBRE = "ESCUELA KEMPER URGATE"
RECEPTOR_RFC = "XOJI740919U48"
RECEPTOR_NOMBRE = "INGRID XODAR JIMENEZ"
PASSWORD = "12345678a"  # noqa: S105 - the password of a throwaway test CSD

_LINES = (
    Line("REFRESCO DE COLA 600 ML", "50202306", "H87", Decimal("2"), Decimal("15.52"), "02",
         "Tasa", Decimal("0.160000"), "7501055300075"),
    Line("TORTILLA DE MAIZ", "50221300", "KGM", Decimal("1.255"), Decimal("24.00"), "02",
         "Tasa", Decimal("0.000000")),
    Line("PERIODICO DEL DIA", "55101504", "H87", Decimal("1"), Decimal("15.00"), "02",
         "Exento", None),
    Line("DETERGENTE EN POLVO 1 KG", "47131811", "H87", Decimal("1"), Decimal("38.79"), "02",
         "Tasa", Decimal("0.160000")),
    Line("LECHE ENTERA 1 L", "50131702", "LTR", Decimal("3"), Decimal("28.50"), "02",
         "Tasa", Decimal("0.000000")),
    Line("DONATIVO REDONDEO", "84101600", "ACT", Decimal("1"), Decimal("0.50"), "01",
         None, None),
)  # fmt: skip


@functools.cache
def signer(rfc: str = EMISOR_RFC, nombre: str = EMISOR_NOMBRE) -> Signer:
    """A test CSD for `rfc`, generated once per process."""
    cer, key = make_test_csd(rfc, nombre, PASSWORD)
    return Signer.load(certificate=cer, key=key, password=PASSWORD)


def lines(count: int) -> tuple[Line, ...]:
    """`count` lines cycling through 16 %, 0 %, exempt and not-subject samples."""
    return tuple(
        replace(
            _LINES[i % len(_LINES)], description=f"{_LINES[i % len(_LINES)].description} #{i + 1}"
        )
        for i in range(count)
    )


def draft(count: int = 5, *, fecha: datetime | None = None, **overrides: object) -> Draft:
    """A Draft from EKU9003173C9 to XOJI740919U48 (régimen 612, CP 76028, uso G03)."""
    fields: dict[str, object] = {
        "emisor_rfc": EMISOR_RFC,
        "emisor_nombre": EMISOR_NOMBRE,
        "emisor_regimen": "601",
        "lugar_expedicion": "06600",
        "serie": "A",
        "folio": 1,
        "fecha": fecha or datetime.now(UTC),
        "receptor_rfc": RECEPTOR_RFC,
        "receptor_nombre": RECEPTOR_NOMBRE,
        "receptor_cp": "76028",
        "receptor_regimen": "612",
        "uso_cfdi": "G03",
        "forma_pago": "01",
        "lines": lines(count),
    }
    fields.update(overrides)
    return Draft(**fields)  # type: ignore[arg-type]
