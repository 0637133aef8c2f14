"""The Receptor of a CFDI 4.0 (the customer) and the checks its data must pass before stamping.

Each `check_*` judges one field as the customer typed it and returns a `Problem` or None;
`check_receptor` runs them all. `normalize_receptor` gives the values to store and to put in
the CFDI.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from satcfdi.models.certificate import REGIMEN_SOCIETARIOS

from webapp.fiscal import catalogs, matrix
from webapp.fiscal.limits import NOMBRE_MAX, is_invisible_control
from webapp.fiscal.problems import Problem
from webapp.fiscal.rfc import PersonType, check_rfc, normalize_rfc, person_type

__all__ = [
    "COMPANY_SUFFIXES",
    "NOMBRE_MAX_LENGTH",
    "Receptor",
    "check_cp",
    "check_nombre",
    "check_receptor",
    "check_regimen",
    "check_uso",
    "company_suffix",
    "normalize_nombre",
    "normalize_receptor",
    "strip_company_suffix",
]

NOMBRE_MAX_LENGTH = NOMBRE_MAX
"""254: the columns' length (customer_profile.name, invoice.receptor_nombre); CFDI 4.0's XSD
allows up to 300 (see webapp.fiscal.limits)."""


@dataclass
class Receptor:
    """Receptor data of a CFDI 4.0: Rfc, Nombre, DomicilioFiscalReceptor (CP),
    RegimenFiscalReceptor and UsoCFDI.

    An SRI factura's comprador (Ecuador) uses `rfc` for the identificación, `nombre` for the
    razón social, `id_type` for SRI's tipo de identificación (webapp.sri.catalogs) and
    `address` for the dirección; cp, regimen and uso_cfdi stay empty."""

    rfc: str
    nombre: str
    cp: str
    regimen: str
    uso_cfdi: str
    id_type: str = ""
    address: str = ""


# Company-type suffixes ("régimen societario" / "régimen de capital"), written without dots or
# commas. The Constancia de Situación Fiscal prints the denominación without them and CFDI 4.0
# wants the Nombre exactly as there. satcfdi's list (from SAT certificates) plus a few other
# common types and the spelled-out forms.
COMPANY_SUFFIXES: tuple[str, ...] = (
    *REGIMEN_SOCIETARIOS,
    "SAPIB DE CV",
    "SC DE RL",
    "SC DE RL DE CV",
    "SC DE RS",
    "SPR DE RL",
    "SPR DE RI",
    "S DE PR DE RL",
    "S DE PR DE RI",
    "S DE SS",
    "IAP",
    "IBP",
    "ABP",
    "ASOCIACION CIVIL",
    "SOCIEDAD CIVIL",
    "SOCIEDAD ANONIMA",
    "SOCIEDAD ANONIMA DE CAPITAL VARIABLE",
    "SOCIEDAD ANONIMA BURSATIL",
    "SOCIEDAD ANONIMA BURSATIL DE CAPITAL VARIABLE",
    "SOCIEDAD ANONIMA PROMOTORA DE INVERSION",
    "SOCIEDAD ANONIMA PROMOTORA DE INVERSION DE CAPITAL VARIABLE",
    "SOCIEDAD DE RESPONSABILIDAD LIMITADA",
    "SOCIEDAD DE RESPONSABILIDAD LIMITADA DE CAPITAL VARIABLE",
    "SOCIEDAD POR ACCIONES SIMPLIFICADA",
    "SOCIEDAD POR ACCIONES SIMPLIFICADA DE CAPITAL VARIABLE",
    "SOCIEDAD COOPERATIVA DE RESPONSABILIDAD LIMITADA",
    "INSTITUCION DE ASISTENCIA PRIVADA",
)

_WORD = re.compile(r"[^\s.,]+")
_WHITESPACE = re.compile(r"\s+")


def _fold(text: str) -> str:
    """Capitals without accents, for comparisons only (Ñ becomes N)."""
    decomposed = unicodedata.normalize("NFD", text.upper())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


# A suffix is compared with its words glued together, so "S.A. DE C.V.", "SA DE CV" and
# "S. A. DE C. V." all read "SADECV".
_SUFFIX_KEYS = frozenset(_fold(s).replace(" ", "") for s in COMPANY_SUFFIXES)
_MAX_SUFFIX_WORDS = max(len(key) for key in _SUFFIX_KEYS)  # one letter per word at most


def normalize_nombre(value: str | None) -> str:
    """The nombre as the Constancia prints it: trimmed, single spaces, capitals (accents, Ñ and
    punctuation kept; invisible control characters dropped).

    Control characters that are whitespace (tab, line breaks) become a space; the others (the
    C0 controls XML 1.0 forbids, which lxml will not write in the CFDI; DEL and the C1 controls,
    which the invoice email's subject refuses; noncharacters) are dropped.
    """
    if not value:
        return ""
    value = unicodedata.normalize("NFC", value)
    value = "".join(c for c in value if c.isspace() or not is_invisible_control(c))
    return _WHITESPACE.sub(" ", value).strip().upper()


def _suffix_start(nombre: str) -> int | None:
    """Index where a trailing company-type suffix starts in `nombre`, or None."""
    words = list(_WORD.finditer(nombre))
    keys = [_fold(w.group()) for w in words]
    # The longest suffix wins; at least one word must remain before it.
    for count in range(min(len(words) - 1, _MAX_SUFFIX_WORDS), 0, -1):
        if "".join(keys[-count:]) in _SUFFIX_KEYS:
            return words[-count].start()
    return None


def company_suffix(nombre: str) -> str | None:
    """The trailing company-type suffix as written ("S.A. DE C.V.", "sa de cv", "A.C."), or None.

    Meaningful only for a persona moral's nombre: `check_nombre` asks only then.
    """
    start = _suffix_start(nombre)
    return None if start is None else nombre[start:].strip()


def strip_company_suffix(nombre: str) -> str:
    """`nombre` without its trailing company-type suffix and the comma or spaces before it."""
    start = _suffix_start(nombre)
    return nombre if start is None else nombre[:start].rstrip(" ,\t")


def check_nombre(
    value: str | None, person: PersonType | None = None, max_length: int = NOMBRE_MAX_LENGTH
) -> Problem | None:
    """EMPTY, FORMAT ("|", forbidden in CFDI), TOO_LONG (more than `max_length` characters once
    normalised), HAS_SUFFIX (persona moral with a company-type suffix) or NOT_UPPERCASE
    (lowercase letters typed), in that order.

    An issuer's legal name passes `max_length=limits.LEGAL_NAME_MAX`: it must also fit in the
    subject of the invoice email.
    """
    nombre = normalize_nombre(value)
    if not nombre:
        return Problem.EMPTY
    if "|" in nombre:
        return Problem.FORMAT
    if len(nombre) > max_length:
        return Problem.TOO_LONG
    if person is PersonType.MORAL and company_suffix(nombre) is not None:
        return Problem.HAS_SUFFIX
    if any(c.islower() for c in value or ""):
        return Problem.NOT_UPPERCASE
    return None


def check_cp(value: str | None) -> Problem | None:
    """EMPTY, FORMAT (not 5 digits) or UNKNOWN (not in c_CodigoPostal)."""
    cp = (value or "").strip()
    if not cp:
        return Problem.EMPTY
    if len(cp) != 5 or not cp.isascii() or not cp.isdigit():
        return Problem.FORMAT
    if not catalogs.cp_exists(cp):
        return Problem.UNKNOWN
    return None


def check_regimen(value: str | None, person: PersonType | None = None) -> Problem | None:
    """EMPTY, UNKNOWN (not in c_RegimenFiscal), NOT_FOR_RECEPTOR (609, 628, 629, 630) or
    WRONG_PERSON_TYPE (when the person type is known)."""
    regimen = (value or "").strip()
    if not regimen:
        return Problem.EMPTY
    if regimen not in catalogs.REGIMENES:
        return Problem.UNKNOWN
    if regimen not in matrix.RECEPTOR_REGIMENES:
        return Problem.NOT_FOR_RECEPTOR
    if person is not None and not matrix.regimen_allowed(regimen, person):
        return Problem.WRONG_PERSON_TYPE
    return None


def check_uso(value: str | None, regimen: str | None = None) -> Problem | None:
    """EMPTY, UNKNOWN (not a CFDI 4.0 c_UsoCFDI code) or NOT_FOR_REGIMEN (when a valid régimen
    is given)."""
    uso = (value or "").strip()
    if not uso:
        return Problem.EMPTY
    if uso not in catalogs.USOS_CFDI:
        return Problem.UNKNOWN
    if regimen and not matrix.uso_allowed(uso, regimen):
        return Problem.NOT_FOR_REGIMEN
    return None


def check_receptor(r: Receptor) -> dict[str, Problem]:
    """Problems by field name ("rfc", "nombre", "cp", "regimen", "uso_cfdi"); {} when all pass.

    The person type comes from the RFC whenever its shape is right (even with a wrong check
    digit); the uso is matched against the régimen only when the régimen itself passes.
    """
    rfc, rfc_problem = check_rfc(r.rfc)
    person = None if rfc_problem in (Problem.EMPTY, Problem.FORMAT) else person_type(rfc)
    regimen_problem = check_regimen(r.regimen, person)
    found = {
        "rfc": rfc_problem,
        "nombre": check_nombre(r.nombre, person),
        "cp": check_cp(r.cp),
        "regimen": regimen_problem,
        "uso_cfdi": check_uso(r.uso_cfdi, None if regimen_problem else (r.regimen or "").strip()),
    }
    return {name: problem for name, problem in found.items() if problem is not None}


def normalize_receptor(r: Receptor) -> Receptor:
    """The values to store and to write in the CFDI: RFC and nombre normalised, codes trimmed."""
    return Receptor(
        rfc=normalize_rfc(r.rfc),
        nombre=normalize_nombre(r.nombre),
        cp=r.cp.strip(),
        regimen=r.regimen.strip(),
        uso_cfdi=r.uso_cfdi.strip(),
    )
