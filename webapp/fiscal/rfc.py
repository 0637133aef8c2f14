"""RFC (Registro Federal de Contribuyentes): normalisation, validation, person type.

The check digit is verified with python-stdnum (`stdnum.mx.rfc`), whose `validate` checks the
shape and the date by default and the homoclave/check digit only with
`validate_check_digits=True`. stdnum notes that about 1.5 % of RFCs in use carry a wrong check
digit; SAT assigned them anyway. The web layer decides whether CHECK_DIGIT blocks or asks the
customer to confirm against their Constancia de Situación Fiscal.
"""

from __future__ import annotations

import re
import unicodedata
from enum import StrEnum

from stdnum.exceptions import ValidationError
from stdnum.mx import rfc as stdnum_rfc

from webapp.fiscal.problems import Problem

__all__ = [
    "GENERIC_RFCS",
    "RFC_EXTRANJERO",
    "RFC_PUBLICO_EN_GENERAL",
    "PersonType",
    "RfcProblem",
    "check_rfc",
    "normalize_rfc",
    "person_type",
]

RFC_PUBLICO_EN_GENERAL = "XAXX010101000"
"""Generic RFC for sales to the general public (factura global)."""
RFC_EXTRANJERO = "XEXX010101000"
"""Generic RFC for foreign customers without a Mexican RFC."""
GENERIC_RFCS = frozenset({RFC_PUBLICO_EN_GENERAL, RFC_EXTRANJERO})
"""RFCs that name nobody: refused for self-invoicing."""

RfcProblem = Problem
"""`check_rfc` reports `Problem` members: EMPTY, FORMAT, CHECK_DIGIT or GENERIC."""

MORAL_LENGTH = 12
FISICA_LENGTH = 13

# Whitespace (any), dashes (ASCII and Unicode hyphens/dashes/minus) and dots.
_SEPARATORS = re.compile(r"[\s\-\u2010-\u2015\u2212.]+")


class PersonType(StrEnum):
    """Persona moral (company, 12-char RFC) or persona física (individual, 13-char RFC)."""

    MORAL = "moral"
    FISICA = "fisica"


def normalize_rfc(value: str | None) -> str:
    """The RFC as SAT writes it: capitals, no spaces, dashes or dots; Ñ and & kept.

    >>> normalize_rfc(" eku-900317 3c9 ")
    'EKU9003173C9'
    """
    if not value:
        return ""
    # NFKC: full-width letters and digits (phone keyboards) become the ASCII SAT writes.
    value = unicodedata.normalize("NFKC", value)
    return _SEPARATORS.sub("", value).upper()


def check_rfc(value: str | None) -> tuple[str, Problem | None]:
    """The normalised RFC and its problem, or None when it is a valid, non-generic RFC.

    Problems: EMPTY; GENERIC (XAXX010101000, XEXX010101000); FORMAT (not 12 chars for a moral
    or 13 for a física, wrong letters/digits, impossible date, a name part SAT never assigns);
    CHECK_DIGIT (homoclave or check digit wrong).
    """
    rfc = normalize_rfc(value)
    if not rfc:
        return rfc, Problem.EMPTY
    if rfc in GENERIC_RFCS:
        return rfc, Problem.GENERIC
    if len(rfc) not in (MORAL_LENGTH, FISICA_LENGTH):
        return rfc, Problem.FORMAT
    try:
        stdnum_rfc.validate(rfc)
    except ValidationError:
        return rfc, Problem.FORMAT
    try:
        stdnum_rfc.validate(rfc, validate_check_digits=True)
    except ValidationError:
        return rfc, Problem.CHECK_DIGIT
    return rfc, None


def person_type(rfc: str) -> PersonType:
    """MORAL for a 12-character RFC, FISICA for 13; ValueError for any other length."""
    length = len(normalize_rfc(rfc))
    if length == MORAL_LENGTH:
        return PersonType.MORAL
    if length == FISICA_LENGTH:
        return PersonType.FISICA
    raise ValueError(f"an RFC has 12 or 13 characters, not {length}")
