"""The buyer (comprador) of an Ecuadorian SRI factura as a customer types it: the checks of
each field, with the same `Problem` codes as the Mexican receptor's (webapp.fiscal.receptor),
and the `Receptor` handed to the stamping road.

Which field can get which code:

- id_type (tipo de identificación, sri.catalogs.TIPOS_IDENTIFICACION): EMPTY, UNKNOWN
- identificacion: EMPTY, FORMAT (wrong length or characters), CHECK_DIGIT (a RUC or cédula
  that python-stdnum's ec.ruc / ec.ci refuse)
- total: GENERIC (an invoice to "consumidor final", the generic identification, above
  sri.catalogs.CONSUMIDOR_FINAL_LIMITE)
- nombre (razón social, or nombres y apellidos): EMPTY, TOO_LONG
- direccion: EMPTY (but for a consumidor final, whose address SRI does not ask), TOO_LONG

Typo rules, like the ticket numbers': a RUC or cédula loses its spaces, dashes and dots and
its look-alike letters become digits (O → 0, l → 1); a consumidor final's identification is
always 9999999999999, whatever was typed; the razón social is kept in capitals with single
spaces, as SRI's registry prints it; invisible control characters are dropped everywhere.
"""

from __future__ import annotations

import re
import unicodedata
from decimal import Decimal

from webapp.fiscal.limits import NOMBRE_MAX, is_invisible_control
from webapp.fiscal.problems import Problem
from webapp.fiscal.receptor import Receptor
from webapp.fiscal.ticket_input import normalize_number
from webapp.sri import catalogs

__all__ = [
    "DIRECCION_MAX",
    "check_buyer",
    "check_direccion",
    "check_id_type",
    "check_identificacion",
    "check_nombre",
    "check_total",
    "normalize_identificacion",
    "normalize_text",
    "receptor",
]

DIRECCION_MAX = 300
"""direccionComprador: 1-300 characters (factura_V1.1.0.xsd); Invoice.receptor_address too."""

_DIGITS = {catalogs.RUC: 13, catalogs.CEDULA: 10}
_WHITESPACE = re.compile(r"\s+")


def normalize_text(value: str | None) -> str:
    """Trimmed, single spaces, NFC, without invisible control characters (a line break, which
    the XSD refuses in these fields, becomes a space)."""
    if not value:
        return ""
    value = unicodedata.normalize("NFC", value)
    value = "".join(c for c in value if c.isspace() or not is_invisible_control(c))
    return _WHITESPACE.sub(" ", value).strip()


def normalize_identificacion(id_type: str, value: str | None) -> str:
    """The identification as stored and sent: digits only for a RUC or cédula (look-alike
    letters as digits), the fixed one of a consumidor final, letters and digits in capitals
    otherwise."""
    if id_type == catalogs.CONSUMIDOR_FINAL:
        return catalogs.CONSUMIDOR_FINAL_ID
    if id_type in _DIGITS:
        return normalize_number(value)
    return re.sub(r"[\s\-\u2010-\u2015.]", "", unicodedata.normalize("NFKC", value or "")).upper()


def check_id_type(value: str | None) -> Problem | None:
    """EMPTY or UNKNOWN (not one of SRI's tipos de identificación)."""
    if not value:
        return Problem.EMPTY
    if value not in catalogs.TIPOS_IDENTIFICACION:
        return Problem.UNKNOWN
    return None


def check_identificacion(id_type: str, value: str | None) -> Problem | None:
    """EMPTY, FORMAT or CHECK_DIGIT of the identification for its type (a known type: check
    it first); checked by sri.catalogs.validate_identification (stdnum's ec.ruc, ec.ci)."""
    numero = normalize_identificacion(id_type, value)
    if not numero:
        return Problem.EMPTY
    digits = _DIGITS.get(id_type)
    if digits is not None and (len(numero) != digits or not numero.isdigit()):
        return Problem.FORMAT
    try:
        catalogs.validate_identification(id_type, numero)
    except catalogs.InvalidIdentification:
        return Problem.CHECK_DIGIT if digits is not None else Problem.FORMAT
    return None


def check_total(id_type: str, total: Decimal | None) -> Problem | None:
    """GENERIC when a consumidor final's invoice would exceed SRI's limit."""
    if total is None:
        return None
    try:
        catalogs.check_consumidor_final(id_type, total)
    except catalogs.InvalidIdentification:
        return Problem.GENERIC
    return None


def check_nombre(value: str | None) -> Problem | None:
    """EMPTY or TOO_LONG (more than NOMBRE_MAX once normalised: the column's length)."""
    nombre = normalize_text(value)
    if not nombre:
        return Problem.EMPTY
    if len(nombre) > NOMBRE_MAX:
        return Problem.TOO_LONG
    return None


def check_direccion(value: str | None, id_type: str = "") -> Problem | None:
    """EMPTY (unless consumidor final) or TOO_LONG (more than DIRECCION_MAX)."""
    direccion = normalize_text(value)
    if not direccion:
        return None if id_type == catalogs.CONSUMIDOR_FINAL else Problem.EMPTY
    if len(direccion) > DIRECCION_MAX:
        return Problem.TOO_LONG
    return None


def check_buyer(
    id_type: str,
    identificacion: str | None,
    nombre: str | None,
    direccion: str | None,
    total: Decimal | None = None,
) -> dict[str, Problem]:
    """Problems by field name (see the module's docstring); {} when all pass. A consumidor
    final's razón social is fixed ("CONSUMIDOR FINAL"): `nombre` is not checked then."""
    type_problem = check_id_type(id_type)
    found = {
        "id_type": type_problem,
        "identificacion": None if type_problem else check_identificacion(id_type, identificacion),
        "nombre": None if id_type == catalogs.CONSUMIDOR_FINAL else check_nombre(nombre),
        "direccion": check_direccion(direccion, id_type),
        "total": None if type_problem else check_total(id_type, total),
    }
    return {name: problem for name, problem in found.items() if problem is not None}


def receptor(id_type: str, identificacion: str, nombre: str, direccion: str) -> Receptor:
    """The Receptor of checked data, normalised: identification by its type, razón social in
    capitals ("CONSUMIDOR FINAL" for a consumidor final), no CP, régimen nor uso."""
    if id_type == catalogs.CONSUMIDOR_FINAL:
        nombre = catalogs.CONSUMIDOR_FINAL_NOMBRE
    return Receptor(
        rfc=normalize_identificacion(id_type, identificacion),
        nombre=normalize_text(nombre).upper(),
        cp="",
        regimen="",
        uso_cfdi="",
        id_type=id_type,
        address=normalize_text(direccion),
    )
