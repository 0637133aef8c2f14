"""Which régimen fits which person type, and which UsoCFDI fits which régimen of the receptor.

Source: SAT, Anexo 20 of the RMF, CFDI 4.0 catalogs (catCFDI, version in force for CFDI 4.0,
checked against the 2024-04 sheet):

- c_RegimenFiscal, columns "Física" and "Moral" (Sí/No);
- c_UsoCFDI, column "Régimen Fiscal Receptor" (the receptor régimenes each uso accepts; PACs
  reject a CFDI that breaks either column).

satcfdi ships these catalogs without those columns (see `webapp.fiscal.catalogs`), hence this
module. Régimenes 609 (Consolidación, moral), 628 (Hidrocarburos, moral), 629 (Regímenes
Fiscales Preferentes, física) and 630 (Enajenación de acciones en bolsa, física) are in
c_RegimenFiscal, but no UsoCFDI lists them as a receptor's régimen, so a receptor cannot declare
them: they are in NON_RECEPTOR_REGIMENES, not in the lists below.
"""

from __future__ import annotations

from webapp.fiscal.rfc import PersonType

__all__ = [
    "NON_RECEPTOR_REGIMENES",
    "RECEPTOR_REGIMENES",
    "REGIMENES_BY_PERSON_TYPE",
    "REGIMENES_BY_USO",
    "regimen_allowed",
    "regimenes_for",
    "uso_allowed",
    "usos_for",
]

# c_RegimenFiscal, "Física" / "Moral" columns (receptor régimenes only).
_MORAL_ONLY = ("601", "603", "620", "622", "623", "624")
_FISICA_ONLY = ("605", "606", "607", "608", "611", "612", "614", "615", "616", "621", "625")
_BOTH = ("610", "626")

REGIMENES_BY_PERSON_TYPE: dict[PersonType, tuple[str, ...]] = {
    PersonType.MORAL: tuple(sorted(_MORAL_ONLY + _BOTH)),
    PersonType.FISICA: tuple(sorted(_FISICA_ONLY + _BOTH)),
}
"""Régimenes a receptor of each person type can declare, ordered by code."""

RECEPTOR_REGIMENES: frozenset[str] = frozenset(_MORAL_ONLY + _FISICA_ONLY + _BOTH)
"""Every régimen some UsoCFDI accepts for the receptor (19 codes)."""

NON_RECEPTOR_REGIMENES: dict[str, PersonType] = {
    "609": PersonType.MORAL,
    "628": PersonType.MORAL,
    "629": PersonType.FISICA,
    "630": PersonType.FISICA,
}
"""c_RegimenFiscal codes that no UsoCFDI accepts for a receptor, with their person type."""

# c_UsoCFDI, "Régimen Fiscal Receptor" column.
_GASTOS_INVERSIONES = frozenset(
    {"601", "603", "606", "612", "620", "621", "622", "623", "624", "625", "626"}
)
_DEDUCCIONES_PERSONALES = frozenset({"605", "606", "607", "608", "611", "612", "614", "615", "625"})

REGIMENES_BY_USO: dict[str, frozenset[str]] = {
    "G01": _GASTOS_INVERSIONES,
    "G02": _GASTOS_INVERSIONES | {"616"},
    "G03": _GASTOS_INVERSIONES,
    **{f"I{n:02}": _GASTOS_INVERSIONES for n in range(1, 9)},
    **{f"D{n:02}": _DEDUCCIONES_PERSONALES for n in range(1, 11)},
    "S01": RECEPTOR_REGIMENES,
    "CP01": RECEPTOR_REGIMENES,
    "CN01": frozenset({"605"}),
}
"""UsoCFDI → receptor régimenes it accepts, in SAT's order (G01 ... CN01)."""


def regimenes_for(person_type: PersonType) -> list[str]:
    """Receptor régimenes of a person type, ordered by code."""
    return list(REGIMENES_BY_PERSON_TYPE[person_type])


def usos_for(regimen: str) -> list[str]:
    """UsoCFDI codes a receptor with `regimen` may choose, in SAT's order; [] if none."""
    return [uso for uso, regimenes in REGIMENES_BY_USO.items() if regimen in regimenes]


def regimen_allowed(regimen: str, person_type: PersonType) -> bool:
    """Whether a receptor of `person_type` can declare `regimen`."""
    return regimen in REGIMENES_BY_PERSON_TYPE[person_type]


def uso_allowed(uso: str, regimen: str) -> bool:
    """Whether `uso` is allowed for a receptor with `regimen`."""
    return regimen in REGIMENES_BY_USO.get(uso, frozenset())
