"""Finkok, through satcfdi's client (`satcfdi.pacs.finkok.Finkok`), with a timeout on every call.

Finkok's stamping web service ("Timbrado", SOAP at /servicios/soap/stamp.wsdl; demo
environment https://demo-facturacion.finkok.com, production https://facturacion.finkok.com)
is used through two of its methods, as documented in Finkok's wiki (wiki.finkok.com):

- `stamp` timbra a signed CFDI. Its answer (`stampResult`) carries the stamped `xml`, `UUID`,
  `CodEstatus` and `Incidencias` (each with `CodigoError` and `MensajeIncidencia`: SAT's
  validation codes 301–308 and 401–403, Finkok's 7xx such as 702 RFC not registered in the
  account, 705 invalid XML structure, 708 could not reach the SAT). Sending a document Finkok
  already stamped answers incidence **307 "El CFDI contiene un timbre previo"** and, per the
  documentation, the previous stamped XML with it ("el web service de forma automática
  recupera el XML"); the XML may also come back empty for a few seconds after the first stamp.
- `stamped` "recupera un XML que fue timbrado con anterioridad" when the first answer was lost:
  given the same signed XML it answers the previous stamped `xml` and `UUID`, or incidence
  **603 "El CFDI no contiene un timbre previo"** when Finkok never stamped it.

So `stamp` returns the stamp in the answer (the previous one for a 307), asks `stamped` when a
307 came without its XML, and never causes a second UUID (Finkok refuses to stamp a document
twice). `recover` is `stamped`: the previous stamp, or None on 603. (`query_pending`, the
other recovery method, looks a stamp up by its UUID, which is what a lost answer lacks.)

satcfdi builds the SOAP envelopes and knows the endpoints; its transport (`requests.post`
without a timeout) and its error reading (codes flattened into one message, the XML of a 307
dropped) are replaced here. Refusals raise PacError(code, message, retryable=False), except
708 (SAT unreachable); timeouts, connection failures, HTTP 5xx and SOAP server faults raise
PacError(retryable=True).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lxml import etree
from satcfdi.pacs import Environment
from satcfdi.pacs.finkok import Finkok

from webapp.cfdi.pac import CancelResult, Pac, PacError, Stamped
from webapp.cfdi.pac.remote import (
    DEFAULT_TIMEOUT,
    RawCfdi,
    Transport,
    read_stamp,
    retryable_status,
    signed_cfdi,
)
from webapp.cfdi.xsd import PARSER

PREVIOUS_STAMP = "307"  # El CFDI contiene un timbre previo
NOT_STAMPED = "603"  # El CFDI no contiene un timbre previo (answer of `stamped`)
RETRYABLE_CODES = frozenset({"708"})  # No se pudo conectar al SAT
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"


@dataclass(frozen=True)
class Answer:
    """What Finkok's `stamp` or `stamped` answered."""

    xml: str
    uuid: str
    status: str
    incidents: tuple[tuple[str, str], ...]  # (CodigoError, MensajeIncidencia)

    @property
    def codes(self) -> frozenset[str]:
        return frozenset(code for code, _ in self.incidents)

    def error(self) -> PacError:
        """The refusal this answer carries, as a PacError."""
        if not self.incidents:
            return PacError(
                "finkok",
                self.status or "Finkok respondió sin XML ni incidencias",
                retryable=True,
            )
        code = self.incidents[0][0]
        message = "; ".join(f"{c} {m}".strip() for c, m in self.incidents)
        return PacError(code, message, retryable=code in RETRYABLE_CODES)


class FinkokClient(Finkok):
    """satcfdi's Finkok client, sending through a `Transport` and to an overridable host."""

    def __init__(
        self,
        username: str,
        password: str,
        environment: Environment,
        transport: Transport,
        url: str | None = None,
    ) -> None:
        super().__init__(username=username, password=password, environment=environment)
        self.transport = transport
        self.url = url.rstrip("/") if url else None

    @property
    def host(self) -> str:
        return self.url or super().host

    def _perform_request(self, url: str, envelope: etree._Element) -> etree._Element:
        response = self.transport.request(
            "POST",
            url,
            data=etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"),
            headers={"Content-Type": "text/xml; charset=utf-8"},
        )
        try:
            root = etree.fromstring(response.content, parser=PARSER)
        except (etree.XMLSyntaxError, ValueError):
            root = None
        fault = root.find(f".//{{{SOAP_ENV}}}Fault") if root is not None else None
        if fault is not None:
            code = fault.findtext("faultcode") or "soap"
            text = fault.findtext("faultstring") or "SOAP Fault"
            raise PacError("soap", f"{code}: {text}", retryable="Client" not in code)
        if not response.ok:
            raise PacError(
                f"http {response.status_code}",
                f"Finkok respondió HTTP {response.status_code}",
                retryable=retryable_status(response.status_code),
            )
        if root is None:
            raise PacError("respuesta", "Finkok respondió algo que no es SOAP", retryable=True)
        return root

    def call(self, operation: str, xml: bytes) -> Answer:
        """Send `xml` to the stamp service's `operation` ("stamp" or "stamped")."""
        envelope = self._build_xml_envelope(RawCfdi(xml), operation)
        root = self._perform_request(self.get_service_url("stamp"), envelope)
        ns = self.namespaces
        incidents = []
        for group in root.iterfind(".//apps:Incidencias", ns):
            for incident in group:
                code = (incident.findtext("apps:CodigoError", "", ns) or "").strip()
                message = (incident.findtext("apps:MensajeIncidencia", "", ns) or "").strip()
                if code or message:
                    incidents.append((code or "finkok", message))
        return Answer(
            xml=(root.findtext(".//apps:xml", "", ns) or "").strip(),
            uuid=(root.findtext(".//apps:UUID", "", ns) or "").strip(),
            status=(root.findtext(".//apps:CodEstatus", "", ns) or "").strip(),
            incidents=tuple(incidents),
        )


class FinkokPac(Pac):
    """Finkok behind the `Pac` interface; the demo environment unless `production`."""

    name = "finkok"

    def __init__(
        self,
        username: str,
        password: str,
        *,
        url: str | None = None,
        production: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        environment = Environment.PRODUCTION if production else Environment.TEST
        self.client = FinkokClient(username, password, environment, Transport(timeout), url)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> FinkokPac:
        """Build from the app's settings (PAC_USERNAME, PAC_PASSWORD, PAC_URL, …)."""
        return cls(
            settings["PAC_USERNAME"],
            settings["PAC_PASSWORD"],
            url=settings.get("PAC_URL") or None,
            production=bool(settings.get("PAC_PRODUCTION")),
            timeout=float(settings.get("PAC_TIMEOUT_SECONDS") or DEFAULT_TIMEOUT),
        )

    @property
    def endpoint(self) -> str:
        """The URL of the stamp service this instance calls."""
        return self.client.get_service_url("stamp")

    def stamp(self, xml: bytes) -> Stamped:
        """Stamp `xml`; the previous stamp when Finkok already stamped it (307)."""
        sello = signed_cfdi(xml).get("Sello")
        answer = self.client.call("stamp", xml)
        if answer.xml:  # a new stamp, or the previous one with its 307
            return read_stamp(answer.xml, sello)
        if PREVIOUS_STAMP in answer.codes:
            previous = self.client.call("stamped", xml)
            if previous.xml:
                return read_stamp(previous.xml, sello)
            raise PacError(
                PREVIOUS_STAMP,
                "El CFDI ya fue timbrado y Finkok aún no entrega ese timbre; se recuperará después",
                retryable=True,
            )
        raise answer.error()

    def recover(self, xml: bytes) -> Stamped | None:
        """The stamp Finkok made of `xml` (method `stamped`), None if it never stamped it."""
        sello = signed_cfdi(xml).get("Sello")
        answer = self.client.call("stamped", xml)
        if answer.xml:
            return read_stamp(answer.xml, sello)
        if NOT_STAMPED in answer.codes:
            return None
        raise answer.error()

    # Cancellation is not wired to Finkok yet: satcfdi's client (`cancel_comprobante`) sends
    # a `Cancelacion` signed with the issuer's CSD (not only the PAC account), and its answer
    # (CancelationAcknowledgment) must be read into a CancelResult and polled for the
    # receptor's answer; until that is built and tested, these say so clearly.

    def cancel(self, xml: bytes, motive: str, replacement_uuid: str | None = None) -> CancelResult:
        raise PacError(
            "no-soportado",
            "Cancelar con Finkok aún no está disponible en Autofactura; cancele en el portal "
            "de Finkok o del SAT",
            retryable=False,
        )

    def cancel_status(self, xml: bytes) -> CancelResult:
        raise PacError(
            "no-soportado",
            "Consultar cancelaciones en Finkok aún no está disponible en Autofactura",
            retryable=False,
        )


__all__ = ["FinkokPac"]
