"""SAT catalogs of CFDI 4.0, read from the copy satcfdi ships.

satcfdi keeps SAT's catalogs in a SQLite file (satcfdi/catalogs/catalogs.db, tables named
"C756_c_<Catalog>" for the CFDI namespace) and exposes `satcfdi.catalogs.select(table, key)` and
`select_all(table)`. It carries the code → description columns only: not the "Física"/"Moral"
columns of c_RegimenFiscal nor the "Régimen Fiscal Receptor" column of c_UsoCFDI (those live in
`webapp.fiscal.matrix`), nor validity dates. So the codes SAT retired for CFDI 4.0 but satcfdi's
table still lists are dropped here, each set naming its source.
"""

from __future__ import annotations

import pickle
from functools import cache, lru_cache

from satcfdi import catalogs as sat

__all__ = [
    "FORMAS_PAGO",
    "REGIMENES",
    "USOS_CFDI",
    "clave_prod_serv_name",
    "clave_unidad_name",
    "cp_exists",
    "forma_pago_name",
    "regimen_name",
    "uso_name",
]

_REGIMEN_TABLE = "C756_c_RegimenFiscal"
_USO_TABLE = "C756_c_UsoCFDI"
_FORMA_PAGO_TABLE = "C756_c_FormaPago"
_CP_TABLE = "C756_c_CodigoPostal"
_PROD_SERV_TABLE = "C756_c_ClaveProdServ"
_UNIDAD_TABLE = "C756_c_ClaveUnidad"

# In satcfdi's c_FormaPago but not in the c_FormaPago enumeration of the CFDI 4.0 schema
# (catCFDI.xsd, also shipped by satcfdi): codes of older catalog versions.
_FORMAS_PAGO_RETIRED = frozenset({"07", "09", "10", "11", "16", "98"})
# "P01 Por definir": still in catCFDI.xsd (shared with CFDI 3.3) but not a row of the CFDI 4.0
# c_UsoCFDI sheet, which gives it no "Régimen Fiscal Receptor": a 4.0 receptor cannot use it.
_USOS_RETIRED = frozenset({"P01"})
# Display order of c_UsoCFDI, as SAT lists it: G.., I.., D.., S01, CP01, CN01.
_USO_GROUPS = ("G", "I", "D", "S", "CP", "CN")
# c_CodigoPostal (and catCFDI.xsd) list "00000", a placeholder no address has: Mexican postal
# codes start at 01000. A receptor's domicilio fiscal is never 00000.
_CP_PLACEHOLDER = "00000"


def _uso_order(code: str) -> tuple[int, str]:
    prefix = code.rstrip("0123456789")
    return (_USO_GROUPS.index(prefix) if prefix in _USO_GROUPS else len(_USO_GROUPS), code)


def _load(table: str, retired: frozenset[str] = frozenset(), order=None) -> dict[str, str]:
    rows = sat.select_all(table)
    return {code: rows[code] for code in sorted(rows, key=order) if code not in retired}


REGIMENES: dict[str, str] = _load(_REGIMEN_TABLE)
"""c_RegimenFiscal: code → Spanish description, ordered by code (all 23 CFDI 4.0 codes)."""
USOS_CFDI: dict[str, str] = _load(_USO_TABLE, _USOS_RETIRED, order=_uso_order)
"""c_UsoCFDI: code → Spanish description, in SAT's order (G01 ... CN01); P01 dropped."""
FORMAS_PAGO: dict[str, str] = _load(_FORMA_PAGO_TABLE, _FORMAS_PAGO_RETIRED)
"""c_FormaPago: code → Spanish description, ordered by code; only the CFDI 4.0 codes."""


def regimen_name(code: str) -> str | None:
    """Description of a c_RegimenFiscal code, None if unknown."""
    return REGIMENES.get(code)


def uso_name(code: str) -> str | None:
    """Description of a c_UsoCFDI code, None if unknown."""
    return USOS_CFDI.get(code)


def forma_pago_name(code: str) -> str | None:
    """Description of a c_FormaPago code, None if unknown."""
    return FORMAS_PAGO.get(code)


@cache
def _cp_bitmap() -> bytes:
    """One bit per number 00000-99999, set when the code is in c_CodigoPostal (12.5 KB).

    Built once per process (about 60 ms) from the keys of satcfdi's table: satcfdi stores keys
    and values pickled, and this is its own packaged data, read the way `select_all` reads it.
    """
    bits = bytearray(100_000 // 8 + 1)
    for (key,) in sat.conn.execute(f"SELECT key FROM {_CP_TABLE}"):  # noqa: S608 (constant)
        code = pickle.loads(key)  # noqa: S301 (satcfdi's packaged catalog, not user data)
        if len(code) == 5 and code.isdigit() and code != _CP_PLACEHOLDER:
            number = int(code)
            bits[number >> 3] |= 1 << (number & 7)
    return bytes(bits)


def cp_exists(cp: str) -> bool:
    """Whether `cp` is a 5-digit code of c_CodigoPostal (a bit test after the first call)."""
    if len(cp) != 5 or not cp.isascii() or not cp.isdigit():
        return False
    number = int(cp)
    return bool(_cp_bitmap()[number >> 3] & (1 << (number & 7)))


@lru_cache(maxsize=4096)
def clave_prod_serv_name(code: str) -> str | None:
    """Description of a c_ClaveProdServ code (8 digits), None if unknown."""
    return sat.select(_PROD_SERV_TABLE, code)


@lru_cache(maxsize=1024)
def clave_unidad_name(code: str) -> str | None:
    """Description of a c_ClaveUnidad code ("H87", "E48"...), None if unknown."""
    return sat.select(_UNIDAD_TABLE, code)
