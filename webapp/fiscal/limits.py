"""How long, and with which characters, the text of a CFDI 4.0 may be: one place for the limits
every form checks where the value is typed, free of Flask.

The limits come from three places, and a value must fit all of them:

- SAT's schema, cfdv40.xsd (satcfdi ships it): Emisor and Receptor Nombre 1-300 characters,
  Serie 1-25, Folio 1-40, Concepto Descripcion 1-1000, NoIdentificacion 1-100, Unidad 1-20, all
  with the pattern `[^|]{1,n}` (the "|" separates the fields of the cadena original) and
  whiteSpace "collapse". XML 1.0 itself refuses the C0 control characters but tab, line feed and
  carriage return, U+FFFE and U+FFFF; lxml will not write them, so the CFDI cannot be built.
- The columns that keep the values (Issuer.legal_name, CustomerProfile.name and
  Invoice.receptor_nombre are 254 characters; MailMessage.subject is 255).
- The invoice email: its subject, "Factura {serie}-{folio} de {legal name}" (English "Invoice
  {serie}-{folio} from {legal name}"), is queued in the commit that records the stamp, and
  `webapp.mail.outbox.queue_mail` refuses a subject longer than 255 characters or with control
  characters. A legal name that does not leave room for the longest serie and folio would make
  every invoice fail after the PAC stamped it. So the issuer's legal name is shorter than the
  CFDI allows: LEGAL_NAME_MAX.

`check_text` judges one value; the forms show `TEXT_MESSAGES` (msgids marked with N_, the
limit as the `max` parameter) next to the field.
"""

from __future__ import annotations

import unicodedata
from enum import StrEnum

from webapp.i18n_marker import N_

__all__ = [
    "CFDI_NOMBRE_MAX",
    "CP_LENGTH",
    "DESCRIPCION_MAX",
    "FOLIO_DIGITS",
    "FOLIO_MAX",
    "INVOICE_SUBJECT_FIXED",
    "LEGAL_NAME_MAX",
    "MAX_FOLIO",
    "NOMBRE_COLUMN",
    "NOMBRE_MAX",
    "NO_IDENTIFICACION_MAX",
    "SERIE_MAX",
    "SUBJECT_MAX",
    "TEXT_MESSAGES",
    "TextProblem",
    "UNIDAD_MAX",
    "check_text",
    "is_invisible_control",
]

# --- cfdv40.xsd --------------------------------------------------------------------------

CFDI_NOMBRE_MAX = 300
"""Emisor/@Nombre and Receptor/@Nombre: [^|]{1,300}."""
SERIE_MAX = 25
"""Comprobante/@Serie: [^|]{1,25} (the portal allows only A-Z, 0-9 and "-")."""
FOLIO_MAX = 40
"""Comprobante/@Folio: [^|]{1,40}."""
DESCRIPCION_MAX = 1000
"""Concepto/@Descripcion: [^|]{1,1000}."""
NO_IDENTIFICACION_MAX = 100
"""Concepto/@NoIdentificacion: [^|]{1,100}."""
UNIDAD_MAX = 20
"""Concepto/@Unidad: [^|]{1,20}."""
CP_LENGTH = 5
"""Receptor/@DomicilioFiscalReceptor and LugarExpedicion: [0-9]{5}, in c_CodigoPostal."""

# --- The columns -------------------------------------------------------------------------

NOMBRE_COLUMN = 254
"""Issuer.legal_name, CustomerProfile.name and Invoice.receptor_nombre."""
NOMBRE_MAX = min(CFDI_NOMBRE_MAX, NOMBRE_COLUMN)
"""A receptor's Nombre as the portal keeps it: 254 characters."""

MAX_FOLIO = 2_000_000_000
"""The highest folio: Invoice.folio is a 32-bit integer."""
FOLIO_DIGITS = len(str(MAX_FOLIO))
"""The longest folio written (10 digits, well within FOLIO_MAX)."""

# --- The invoice email's subject ---------------------------------------------------------

SUBJECT_MAX = 255
"""webapp.mail.outbox.SUBJECT_MAX (the MailMessage.subject column); tests check they agree."""
INVOICE_SUBJECT_FIXED = max(len("Factura - de "), len("Invoice - from "))
"""The fixed text of the invoice email's subject (templates/invoicing/email/subject.txt) in the
longest of its translations; a test renders the subject in every one."""
LEGAL_NAME_MAX = min(NOMBRE_MAX, SUBJECT_MAX - INVOICE_SUBJECT_FIXED - SERIE_MAX - FOLIO_DIGITS)
"""The issuer's legal name: 205 characters, so that the subject of every invoice email fits
whatever the serie (up to 25 characters) and folio (up to 10 digits)."""

# --- Characters --------------------------------------------------------------------------


class TextProblem(StrEnum):
    """What `check_text` finds wrong with a value."""

    TOO_LONG = "too_long"
    """Longer than the limit."""
    PIPE = "pipe"
    """Has "|", which the CFDI's patterns forbid."""
    CONTROL = "control"
    """Has an invisible control character (line break, tab, C0 or C1 control, a lone surrogate
    or a noncharacter): XML, PostgreSQL or the email headers refuse them."""


TEXT_MESSAGES = {
    TextProblem.TOO_LONG: N_("Máximo %(max)s caracteres."),
    TextProblem.PIPE: N_("No puede contener el carácter «|»."),
    TextProblem.CONTROL: N_(
        "No puede contener caracteres de control, como saltos de línea o tabuladores."
    ),
}
"""Spanish msgids, to translate with the limit as `max`."""

_LINE_BREAKS = frozenset("\t\n\r")


def is_invisible_control(char: str, *, line_breaks: bool = False) -> bool:
    """Whether `char` is a control character (Unicode Cc: U+0000-U+001F, U+007F-U+009F), a lone
    surrogate, or a noncharacter (U+FDD0-U+FDEF, U+xFFFE, U+xFFFF). With `line_breaks`, tab,
    line feed and carriage return are allowed (a multi-line text area)."""
    if line_breaks and char in _LINE_BREAKS:
        return False
    code = ord(char)
    if 0xFDD0 <= code <= 0xFDEF or (code & 0xFFFE) == 0xFFFE:
        return True
    return unicodedata.category(char) in ("Cc", "Cs")


def check_text(
    value: str | None, max_length: int, *, pipe: bool = False, line_breaks: bool = False
) -> TextProblem | None:
    """TOO_LONG (more than `max_length` characters), PIPE ("|", unless `pipe` allows it) or
    CONTROL (see `is_invisible_control`), in that order; None when `value` passes. An empty
    value passes: whether it is required is the caller's business."""
    text = value or ""
    if len(text) > max_length:
        return TextProblem.TOO_LONG
    if not pipe and "|" in text:
        return TextProblem.PIPE
    if any(is_invisible_control(c, line_breaks=line_breaks) for c in text):
        return TextProblem.CONTROL
    return None
