"""What an invoice will say, before any XML: a `Draft` with its `Line`s.

Both are frozen dataclasses checked on construction, so a Draft that exists can be built into a
CFDI 4.0 (SAT's catalogs aside: claves, régimen and CP are the caller's and the XSD's business).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal

OBJETO_NO_OBJETO = "01"  # no objeto de impuesto
OBJETO_SI_OBJETO = "02"  # sí objeto de impuesto
TASA = "Tasa"
EXENTO = "Exento"
MAX_DECIMALS = 6  # Cantidad, ValorUnitario and TasaOCuota allow six (cfdv40.xsd)
PUBLICO_EN_GENERAL_RFC = "XAXX010101000"
SUSTITUCION = "04"  # c_TipoRelacion: sustitución de los CFDI previos
_UUID_CHARS = frozenset("0123456789ABCDEF-")
# c_Periodicidad → the c_Meses it may name: 01..12, or 13..18 (enero-febrero ... noviembre-
# diciembre) for bimestral periods.
MONTHLY_MESES = frozenset(f"{m:02d}" for m in range(1, 13))
BIMESTRAL_MESES = frozenset(f"{m:02d}" for m in range(13, 19))
PERIODICIDADES = {
    "01": MONTHLY_MESES,  # diario
    "02": MONTHLY_MESES,  # semanal
    "03": MONTHLY_MESES,  # quincenal
    "04": MONTHLY_MESES,  # mensual
    "05": BIMESTRAL_MESES,  # bimestral
}


def decimals(value: Decimal) -> int:
    """Significant decimal places of `value` (trailing zeros do not count)."""
    exponent = value.normalize().as_tuple().exponent
    return max(0, -exponent) if isinstance(exponent, int) else 0


@dataclass(frozen=True)
class Line:
    """One Concepto: `unit_price` is before tax.

    objeto_imp "02" comes with tax_factor "Tasa" and its tax_rate (0.160000, 0.080000,
    0.000000) or with "Exento" and no rate; "01" carries no tax at all.
    """

    description: str
    clave_prod_serv: str
    clave_unidad: str
    quantity: Decimal
    unit_price: Decimal
    objeto_imp: str
    tax_factor: str | None
    tax_rate: Decimal | None
    no_identificacion: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.quantity, Decimal) or not isinstance(self.unit_price, Decimal):
            raise TypeError("quantity and unit_price are Decimal, never float")
        if self.quantity <= 0:
            raise ValueError("quantity must be positive")
        if self.unit_price < 0:
            raise ValueError("unit_price cannot be negative")
        if decimals(self.quantity) > MAX_DECIMALS or decimals(self.unit_price) > MAX_DECIMALS:
            raise ValueError("quantity and unit_price have at most six decimals")
        if not self.description.strip() or "|" in self.description:
            raise ValueError("description is required and cannot contain '|'")
        if self.objeto_imp == OBJETO_NO_OBJETO:
            if self.tax_factor is not None or self.tax_rate is not None:
                raise ValueError("objeto_imp 01 carries no tax")
        elif self.objeto_imp == OBJETO_SI_OBJETO:
            if self.tax_factor == TASA:
                if self.tax_rate is None or not 0 <= self.tax_rate < 1:
                    raise ValueError("tax_factor Tasa needs a tax_rate between 0 and 1")
                if decimals(self.tax_rate) > MAX_DECIMALS:
                    raise ValueError("tax_rate has at most six decimals")
            elif self.tax_factor == EXENTO:
                if self.tax_rate is not None:
                    raise ValueError("tax_factor Exento has no tax_rate")
            else:
                raise ValueError("objeto_imp 02 needs tax_factor Tasa or Exento")
        else:
            raise ValueError(f"objeto_imp {self.objeto_imp!r} is not supported (01 or 02)")

    @property
    def taxed(self) -> bool:
        """True when the line carries a Traslado (Tasa or Exento)."""
        return self.objeto_imp == OBJETO_SI_OBJETO


@dataclass(frozen=True)
class GlobalInfo:
    """InformacionGlobal of a factura global: c_Periodicidad, c_Meses and the Año."""

    periodicidad: str
    meses: str
    año: int

    def __post_init__(self) -> None:
        allowed = PERIODICIDADES.get(self.periodicidad)
        if allowed is None:
            raise ValueError(f"periodicidad {self.periodicidad!r} is not in c_Periodicidad")
        if self.meses not in allowed:
            raise ValueError(f"meses {self.meses!r} does not fit periodicidad {self.periodicidad}")
        if not 2021 <= self.año <= 9999:
            raise ValueError("año must be 2021 or later")


@dataclass(frozen=True)
class Draft:
    """An Ingreso CFDI to be built: emisor, receptor, payment and lines.

    `fecha` is aware; the CFDI writes it as local time (no offset) of the LugarExpedicion's time
    zone per SAT's c_CodigoPostal (Mexico City for most of the country).
    """

    emisor_rfc: str
    emisor_nombre: str
    emisor_regimen: str
    lugar_expedicion: str
    serie: str
    folio: int
    fecha: datetime
    receptor_rfc: str
    receptor_nombre: str
    receptor_cp: str
    receptor_regimen: str
    uso_cfdi: str
    forma_pago: str
    metodo_pago: str = "PUE"
    moneda: str = "MXN"
    lines: tuple[Line, ...] = ()
    # Only a factura global, whose receptor is the público en general.
    informacion_global: GlobalInfo | None = None
    # The UUIDs of the CFDIs this one replaces (CfdiRelacionados, TipoRelacion 04).
    sustituye: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.fecha.tzinfo is None or self.fecha.utcoffset() is None:
            raise ValueError("fecha must be timezone-aware")
        if not self.lines:
            raise ValueError("a draft needs at least one line")
        if not isinstance(self.lines, tuple):
            object.__setattr__(self, "lines", tuple(self.lines))
        if self.folio < 1:
            raise ValueError("folio must be positive")
        if self.informacion_global is not None and self.receptor_rfc != PUBLICO_EN_GENERAL_RFC:
            raise ValueError("InformacionGlobal is for the público en general (XAXX010101000)")
        if not isinstance(self.sustituye, tuple):
            object.__setattr__(self, "sustituye", tuple(self.sustituye))
        for uuid in self.sustituye:
            if len(uuid) != 36 or not set(uuid) <= _UUID_CHARS:
                raise ValueError(f"{uuid!r} is not an upper-case UUID")
