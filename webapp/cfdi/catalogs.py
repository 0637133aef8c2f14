"""SAT catalog look-ups through satcfdi's shipped catalog database: names and time zones."""

from __future__ import annotations

import functools
from zoneinfo import ZoneInfo

from satcfdi import catalogs

MEXICO_CITY = ZoneInfo("America/Mexico_City")

# c_CodigoPostal's "huso horario" → IANA zone. (satcfdi's own map sends "Tiempo del Noroeste"
# to Matamoros; Baja California is Tijuana.)
_ZONES = {
    "Tiempo del Centro": "America/Mexico_City",
    "Tiempo del Centro en Frontera": "America/Matamoros",
    "Tiempo del Noroeste": "America/Tijuana",
    "Tiempo del Pacífico": "America/Mazatlan",
    "Tiempo del Sureste": "America/Cancun",
}


@functools.lru_cache(maxsize=4096)
def _select(catalog: str, key: str) -> object:
    return catalogs.select(catalog, key)


def postal_code_exists(cp: str) -> bool:
    """True when `cp` is in SAT's c_CodigoPostal."""
    return _select("C756_c_CodigoPostal", cp) is not None


@functools.lru_cache(maxsize=4096)
def local_zone(cp: str) -> ZoneInfo:
    """The time zone of a CP per c_CodigoPostal; Mexico City when the CP is unknown."""
    row = _select("C756_c_CodigoPostal", cp)
    if isinstance(row, list) and len(row) > 4 and row[4] in _ZONES:
        return ZoneInfo(_ZONES[row[4]])
    return MEXICO_CITY


def _name(catalog: str, code: str) -> str:
    value = _select(catalog, code)
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple) and value and isinstance(value[0], str):
        return value[0]
    return ""


def regimen_name(code: str) -> str:
    """c_RegimenFiscal: "612" → "Personas Físicas con Actividades Empresariales y ..."."""
    return _name("C756_c_RegimenFiscal", code)


def uso_cfdi_name(code: str) -> str:
    """c_UsoCFDI: "G03" → "Gastos en general"."""
    return _name("C756_c_UsoCFDI", code)


def forma_pago_name(code: str) -> str:
    """c_FormaPago: "01" → "Efectivo"."""
    return _name("C756_c_FormaPago", code)


def metodo_pago_name(code: str) -> str:
    """c_MetodoPago: "PUE" → "Pago en una sola exhibición"."""
    return _name("C756_c_MetodoPago", code)


def unidad_name(code: str) -> str:
    """c_ClaveUnidad: "H87" → "Pieza"."""
    return _name("C756_c_ClaveUnidad", code)


def objeto_imp_name(code: str) -> str:
    """c_ObjetoImp: "02" → "Sí objeto de impuesto"."""
    return _name("C756_c_ObjetoImp", code)


def moneda_name(code: str) -> str:
    """c_Moneda: "MXN" → "Peso Mexicano"."""
    return _name("C756_c_Moneda", code)
