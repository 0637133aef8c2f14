"""Problem codes reported by the fiscal checks.

One enum for every field: the web layer looks up a message by (field, code), so the same code
("empty", "unknown"...) reads right next to each field. Values are stable lowercase strings; store
or compare them freely, never show them to customers.
"""

from __future__ import annotations

from enum import StrEnum


class Problem(StrEnum):
    """What is wrong with one field. Which field can get which code:

    - rfc: EMPTY, FORMAT, CHECK_DIGIT, GENERIC
    - nombre: EMPTY, FORMAT (has "|", which CFDI forbids), TOO_LONG, HAS_SUFFIX, NOT_UPPERCASE
    - cp: EMPTY, FORMAT, UNKNOWN
    - regimen: EMPTY, UNKNOWN, NOT_FOR_RECEPTOR, WRONG_PERSON_TYPE
    - uso_cfdi: EMPTY, UNKNOWN, NOT_FOR_REGIMEN
    """

    EMPTY = "empty"
    """Nothing typed or chosen."""
    FORMAT = "format"
    """Wrong shape: length or characters."""
    CHECK_DIGIT = "check_digit"
    """RFC with the right shape whose homoclave/check digit does not verify."""
    GENERIC = "generic"
    """A generic RFC (XAXX010101000, XEXX010101000): refused for self-invoicing."""
    NOT_UPPERCASE = "not_uppercase"
    """Nombre typed with lowercase letters; the Constancia prints it in capitals."""
    HAS_SUFFIX = "has_suffix"
    """Persona moral's nombre ending with its company type ("S.A. DE C.V.")."""
    TOO_LONG = "too_long"
    """Longer than the column and the CFDI allow."""
    UNKNOWN = "unknown"
    """Not in the SAT catalog."""
    NOT_FOR_RECEPTOR = "not_for_receptor"
    """A régimen of c_RegimenFiscal that no UsoCFDI accepts for a receptor (609, 628-630)."""
    WRONG_PERSON_TYPE = "wrong_person_type"
    """Régimen not available to the RFC's person type (moral: 12 chars, física: 13)."""
    NOT_FOR_REGIMEN = "not_for_regimen"
    """UsoCFDI not allowed for the chosen régimen."""
