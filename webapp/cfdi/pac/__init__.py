"""Stamping providers (PAC): the interface every provider implements.

    stamped = pac.stamp(signed_xml)       # Stamped(uuid, fecha_timbrado, xml, no_certificado_sat)
    stamped = pac.recover(signed_xml)     # the stamp of a document it already stamped, or None
    result = pac.cancel(stamped_xml, "02")                  # CancelResult(status, acuse, message)
    result = pac.cancel(stamped_xml, "01", replacement_uuid=uuid_of_the_new_one)
    result = pac.cancel_status(stamped_xml)  # a pending request: the receptor answered yet?

`stamp` of a document the provider already stamped returns that same stamp (it never stamps a
document twice). Failures raise PacError with the provider's code, a message, and whether
retrying later may succeed (a timeout, a provider outage) or never will (a broken CFDI).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

CANCEL_MOTIVES = ("01", "02", "03", "04")


@dataclass(frozen=True)
class Stamped:
    """A stamped CFDI: `xml` holds the TimbreFiscalDigital; `fecha_timbrado` is aware."""

    uuid: str
    fecha_timbrado: datetime
    xml: bytes
    no_certificado_sat: str


@dataclass(frozen=True)
class CancelResult:
    """SAT's answer to a cancellation request, through the provider.

    `status`: "cancelled" (done), "pending" (en proceso: the receptor must accept or reject
    it within three business days) or "rejected" (the receptor refused it; the invoice stays
    valid). `acuse` is the acknowledgement the provider gave (XML or text), as received.
    """

    status: Literal["cancelled", "pending", "rejected"]
    acuse: bytes | str | None = None
    message: str = ""


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


class DocumentRefused(PacError):
    """The authority has decided on the document and refused it (SRI's NO AUTORIZADO), found
    when recovering it: the document is released (reconcile), never left waiting."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message, retryable=False)


class Pac(abc.ABC):
    """A stamping provider.

    `test`: whether its stamps are test stamps (a sandbox, a provider's test environment),
    without fiscal validity; recorded on each invoice it stamps (Invoice.test_stamp).
    """

    name: str
    test: bool = True

    @abc.abstractmethod
    def stamp(self, xml: bytes) -> Stamped:
        """Validate and stamp a signed CFDI; the same stamp again for a document it stamped."""

    @abc.abstractmethod
    def recover(self, xml: bytes) -> Stamped | None:
        """The stamp of `xml` if the provider stamped it (its answer was lost), else None."""

    def cancel(self, xml: bytes, motive: str, replacement_uuid: str | None = None) -> CancelResult:
        """Ask SAT to cancel the stamped CFDI `xml` with `motive` (01 names the replacing
        CFDI's UUID). Refusals of the request itself (a bad motive, an unknown replacement,
        an invoice already cancelled elsewhere) raise PacError."""
        raise PacError(
            "no-soportado",
            f"El PAC {self.name} aún no permite cancelar desde Autofactura",
            retryable=False,
        )

    def with_signer(self, signer: object) -> Pac:
        """This provider acting for the issuer whose CSD `signer` is (a satcfdi Signer, or a
        function returning one, called when needed): providers that sign cancellation
        requests with the issuer's CSD return a copy that does; the others, themselves."""
        return self

    def cancel_status(self, xml: bytes) -> CancelResult:
        """Where a cancellation request of the stamped CFDI `xml` stands now."""
        raise PacError(
            "no-soportado",
            f"El PAC {self.name} aún no permite consultar cancelaciones desde Autofactura",
            retryable=False,
        )


__all__ = ["CANCEL_MOTIVES", "CancelResult", "DocumentRefused", "Pac", "PacError", "Stamped"]
