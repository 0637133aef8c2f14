"""The clave de acceso: the 49 digits that name one SRI comprobante.

SRI's ficha técnica (section "Clave de acceso") composes it as

    field                   digits  here
    fecha de emisión        8       ddmmaaaa
    tipo de comprobante     2       codDoc, "01" factura (catalogs.TIPOS_COMPROBANTE)
    RUC del emisor          13
    tipo de ambiente        1       "1" pruebas, "2" producción
    serie                   6       estab (3) + ptoEmi (3)
    secuencial              9
    código numérico         8       chosen by the issuer
    tipo de emisión         1       "1" normal
    dígito verificador      1       módulo 11 over the 48 digits before it

The check digit: weights 2, 3, 4, 5, 6, 7, 2, 3, … from the rightmost of the 48 digits
leftwards; r = 11 − (Σ digit × weight) mod 11; r = 11 gives 0 and r = 10 gives 1.
SRI refuses a comprobante whose key is malformed or whose check digit is wrong.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import date

from webapp.sri.catalogs import AMBIENTES, TIPOS_COMPROBANTE, TIPOS_EMISION

LENGTH = 49
FACTURA = "01"
PRUEBAS = "1"
PRODUCCION = "2"
EMISION_NORMAL = "1"

_DIGITS = re.compile(r"[0-9]+")


class InvalidAccessKey(ValueError):
    """A clave de acceso (or one of its parts) is malformed; the message says what, in Spanish."""


def check_digit(digits: str) -> str:
    """The módulo 11 check digit of the first 48 digits of a clave de acceso."""
    if len(digits) != LENGTH - 1 or not _DIGITS.fullmatch(digits):
        raise InvalidAccessKey("se esperaban 48 dígitos para calcular el dígito verificador")
    total = sum(int(d) * (2 + i % 6) for i, d in enumerate(reversed(digits)))
    r = 11 - total % 11
    return "0" if r == 11 else "1" if r == 10 else str(r)


@dataclass(frozen=True)
class AccessKey:
    """The parts of a clave de acceso; `str(key)` is its 49 digits."""

    fecha: date
    cod_doc: str
    ruc: str
    ambiente: str
    estab: str
    pto_emi: str
    secuencial: str
    codigo_numerico: str
    tipo_emision: str

    @property
    def serie(self) -> str:
        return self.estab + self.pto_emi

    @property
    def numero(self) -> str:
        """The comprobante's number as printed: estab-ptoEmi-secuencial (001-001-000000123)."""
        return f"{self.estab}-{self.pto_emi}-{self.secuencial}"

    def __str__(self) -> str:
        digits = (
            f"{self.fecha:%d%m%Y}{self.cod_doc}{self.ruc}{self.ambiente}{self.serie}"
            f"{self.secuencial}{self.codigo_numerico}{self.tipo_emision}"
        )
        return digits + check_digit(digits)


def digits(value: str | int, size: int, name: str) -> str:
    """`value` as exactly `size` digits; an int is zero-padded, a string must already be."""
    if isinstance(value, bool):
        raise InvalidAccessKey(f"{name}: se esperaba un número")
    if isinstance(value, int):
        if value < 0 or value >= 10**size:
            raise InvalidAccessKey(f"{name}: debe tener a lo sumo {size} dígitos")
        return str(value).zfill(size)
    if len(value) != size or not _DIGITS.fullmatch(value):
        raise InvalidAccessKey(f"{name}: debe tener exactamente {size} dígitos")
    return value


def _check_parts(key: AccessKey) -> AccessKey:
    if key.cod_doc not in TIPOS_COMPROBANTE:
        raise InvalidAccessKey(f"tipo de comprobante desconocido: {key.cod_doc}")
    if key.ambiente not in AMBIENTES:
        raise InvalidAccessKey(f"tipo de ambiente desconocido: {key.ambiente}")
    if key.tipo_emision not in TIPOS_EMISION:
        raise InvalidAccessKey(f"tipo de emisión desconocido: {key.tipo_emision}")
    if not key.ruc.endswith("001"):
        raise InvalidAccessKey("el RUC del emisor debe terminar en 001")
    return key


def build(
    *,
    fecha: date,
    ruc: str,
    ambiente: str,
    estab: str | int,
    pto_emi: str | int,
    secuencial: str | int,
    codigo_numerico: str | int,
    cod_doc: str = FACTURA,
    tipo_emision: str = EMISION_NORMAL,
) -> str:
    """The 49-digit clave de acceso of a comprobante (check digit included).

    `estab`, `pto_emi`, `secuencial` and `codigo_numerico` may be ints (zero-padded) or
    strings of exactly 3, 3, 9 and 8 digits.
    """
    key = AccessKey(
        fecha=fecha,
        cod_doc=digits(cod_doc, 2, "tipo de comprobante"),
        ruc=digits(ruc, 13, "RUC"),
        ambiente=digits(ambiente, 1, "ambiente"),
        estab=digits(estab, 3, "establecimiento"),
        pto_emi=digits(pto_emi, 3, "punto de emisión"),
        secuencial=digits(secuencial, 9, "secuencial"),
        codigo_numerico=digits(codigo_numerico, 8, "código numérico"),
        tipo_emision=digits(tipo_emision, 1, "tipo de emisión"),
    )
    return str(_check_parts(key))


def parse(value: str) -> AccessKey:
    """The parts of a clave de acceso; InvalidAccessKey when its length, digits, date, codes
    or check digit are wrong. Surrounding whitespace is ignored."""
    value = value.strip() if isinstance(value, str) else value
    if not isinstance(value, str) or not _DIGITS.fullmatch(value):
        raise InvalidAccessKey("la clave de acceso solo puede tener dígitos")
    if len(value) != LENGTH:
        raise InvalidAccessKey(f"la clave de acceso tiene {len(value)} dígitos, no {LENGTH}")
    if check_digit(value[:-1]) != value[-1]:
        raise InvalidAccessKey("el dígito verificador de la clave de acceso no es correcto")
    try:
        fecha = date(int(value[4:8]), int(value[2:4]), int(value[0:2]))
    except ValueError:
        raise InvalidAccessKey("la fecha de emisión de la clave de acceso no existe") from None
    return _check_parts(
        AccessKey(
            fecha=fecha,
            cod_doc=value[8:10],
            ruc=value[10:23],
            ambiente=value[23],
            estab=value[24:27],
            pto_emi=value[27:30],
            secuencial=value[30:39],
            codigo_numerico=value[39:47],
            tipo_emision=value[47],
        )
    )


def is_valid(value: str) -> bool:
    """Whether `value` is a well-formed clave de acceso with the right check digit."""
    try:
        parse(value)
    except InvalidAccessKey:
        return False
    return True


def new_codigo_numerico() -> str:
    """Eight random digits for the código numérico (keep the key: it cannot be rebuilt)."""
    return f"{secrets.randbelow(10**8):08d}"
