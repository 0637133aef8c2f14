"""Stamping providers (PAC): the interface every provider implements.

    stamped = pac.stamp(signed_xml)       # Stamped(uuid, fecha_timbrado, xml, no_certificado_sat)
    stamped = pac.recover(signed_xml)     # the stamp of a document it already stamped, or None

`stamp` of a document the provider already stamped returns that same stamp (it never stamps a
document twice). Failures raise PacError with the provider's code, a message, and whether
retrying later may succeed (a timeout, a provider outage) or never will (a broken CFDI).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class Stamped:
    """A stamped CFDI: `xml` holds the TimbreFiscalDigital; `fecha_timbrado` is aware."""

    uuid: str
    fecha_timbrado: datetime
    xml: bytes
    no_certificado_sat: str


class PacError(Exception):
    """The provider refused the document or could not be reached.

    `code` is the provider's (SAT's validation codes where they apply: 301 XML inválido,
    302 sello inválido, 303 sello no corresponde al emisor, 305 fecha fuera de la vigencia del
    CSD, 306 no es CSD, 307 ya timbrado, 401 fecha fuera del rango de 72 horas); `retryable`
    tells the caller whether the same document may succeed later.
    """

    def __init__(self, code: str, message: str, retryable: bool = False) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable


class Pac(abc.ABC):
    """A stamping provider."""

    name: str

    @abc.abstractmethod
    def stamp(self, xml: bytes) -> Stamped:
        """Validate and stamp a signed CFDI; the same stamp again for a document it stamped."""

    @abc.abstractmethod
    def recover(self, xml: bytes) -> Stamped | None:
        """The stamp of `xml` if the provider stamped it (its answer was lost), else None."""


__all__ = ["Pac", "PacError", "Stamped"]
