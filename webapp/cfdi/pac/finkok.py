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

Cancellation uses Finkok's cancel service (/servicios/soap/cancel.wsdl): `cancel_signature`
takes SAT's `Cancelacion` already signed with the issuer's CSD (built by satcfdi, see
remote.cancellation_request: the CSD's key never leaves) and answers `Folios/Folio` with the
`UUID`, SAT's `EstatusUUID` (201 received, 202 previously cancelled, others refusals) and
`EstatusCancelacion` ("Cancelado sin aceptación", "En proceso", …), plus the `Acuse`;
`get_sat_status` (taxpayer_id, rtaxpayer_id, uuid, total) relays SAT's consulta
(`sat/Estado`, `sat/EstatusCancelacion`), which is `cancel_status`. A provider built without
the issuer's signer (see `with_signer`) refuses to cancel with PacError "sin-csd".

satcfdi builds the SOAP envelopes and knows the endpoints; its transport (`requests.post`
without a timeout) and its error reading (codes flattened into one message, the XML of a 307
dropped) are replaced here. Refusals raise PacError(code, message, retryable=False), except
708 (SAT unreachable); timeouts, connection failures, HTTP 5xx and SOAP server faults raise
PacError(retryable=True).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lxml import etree
from satcfdi.pacs import Environment
from satcfdi.pacs.finkok import Finkok
from satcfdi.xelement import XElement

from webapp.cfdi.pac import CancelResult, Pac, PacError, Stamped
from webapp.cfdi.pac.remote import (
    CANCEL_CODES,
    DEFAULT_TIMEOUT,
    PREVIOUSLY_CANCELLED,
    RECEIVED,
    RawCfdi,
    SignerSource,
    StampedCfdi,
    Transport,
    acuse_text,
    cancel_refusal,
    cancel_state,
    cancellation_request,
    read_stamp,
    resolve_signer,
    retryable_status,
    sat_status_result,
    signed_cfdi,
    stamped_cfdi,
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

    def cancel_signature(self, request: XElement) -> etree._Element:
        """Send a signed `Cancelacion` to the cancel service's `cancel_signature`."""
        envelope = self._build_xml_envelope(request, "cancel")
        return self._perform_request(self.get_service_url("cancel"), envelope)

    def sat_status(self, cfdi: StampedCfdi) -> etree._Element:
        """The cancel service's `get_sat_status` of `cfdi` (SAT's consulta, through Finkok)."""
        namespace = self.namespaces["cancel"]
        operation = self._add_auth(
            etree.Element(etree.QName(namespace, "get_sat_status")), namespace
        )
        for name, value in (
            ("taxpayer_id", cfdi.emisor),
            ("rtaxpayer_id", cfdi.receptor),
            ("uuid", cfdi.uuid),
            ("total", cfdi.total),
        ):
            etree.SubElement(operation, etree.QName(namespace, name)).text = value
        return self._perform_request(
            self.get_service_url("cancel"), self._build_envelope(operation)
        )

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
        signer: SignerSource = None,
    ) -> None:
        environment = Environment.PRODUCTION if production else Environment.TEST
        self.test = not production
        self.client = FinkokClient(username, password, environment, Transport(timeout), url)
        self.signer = signer

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

    # --- cancellation ---------------------------------------------------------------------

    def with_signer(self, signer: SignerSource) -> FinkokPac:
        """A copy cancelling with the issuer's CSD `signer` (same account, same connection)."""
        acting = copy.copy(self)
        acting.signer = signer
        return acting

    def cancel(self, xml: bytes, motive: str, replacement_uuid: str | None = None) -> CancelResult:
        """Ask SAT to cancel `xml` through `cancel_signature`, the request signed here with the
        issuer's CSD (the key never leaves). The folio's EstatusUUID 201/202 and
        EstatusCancelacion tell the outcome; another EstatusUUID is a refusal."""
        cfdi = stamped_cfdi(xml)
        request = cancellation_request(cfdi, motive, replacement_uuid, resolve_signer(self.signer))
        root = self.client.cancel_signature(request)
        return _cancel_answer(root, cfdi, self.client.namespaces)

    def cancel_status(self, xml: bytes) -> CancelResult:
        """SAT's status of `xml` as Finkok relays it (`get_sat_status`)."""
        cfdi = stamped_cfdi(xml)
        root = self.client.sat_status(cfdi)
        ns = self.client.namespaces
        _raise_error(root, ns)
        sat = root.find(".//apps:sat", ns)
        if sat is None:
            raise PacError("respuesta", "Finkok respondió sin el estado del SAT", retryable=True)
        return sat_status_result(
            sat.findtext("apps:Estado", "", ns),
            sat.findtext("apps:EstatusCancelacion", "", ns),
            sat.findtext("apps:CodigoEstatus", "", ns),
        )


def _raise_error(root: etree._Element, ns: Mapping[str, str]) -> None:
    """The `error` a cancel service answer carries, as a PacError (retryable for 708)."""
    error = (root.findtext(".//apps:error", "", ns) or "").strip()
    if error:
        code = error.split()[0].rstrip(".:-") if error[:1].isdigit() else "finkok"
        raise PacError(code, f"Finkok: {error}", retryable=code in RETRYABLE_CODES)


def _cancel_answer(root: etree._Element, cfdi: StampedCfdi, ns: Mapping[str, str]) -> CancelResult:
    """A `cancel_signatureResult` as a CancelResult (or the refusal it carries)."""
    acuse = acuse_text(root.findtext(".//apps:Acuse", "", ns))
    for folio in root.iterfind(".//apps:Folio", ns):
        if (folio.findtext("apps:UUID", "", ns) or "").strip().upper() != cfdi.uuid:
            continue
        code = (folio.findtext("apps:EstatusUUID", "", ns) or "").strip()
        estatus = (folio.findtext("apps:EstatusCancelacion", "", ns) or "").strip()
        if code not in (RECEIVED, PREVIOUSLY_CANCELLED):
            raise cancel_refusal(code or "finkok", estatus)
        # Without EstatusCancelacion SAT did not say whether it is done: pending, which
        # cancel_status settles (never "cancelled" on a guess: that would release tickets).
        status = cancel_state(estatus) or "pending"
        return CancelResult(status, acuse, estatus or CANCEL_CODES[code])
    _raise_error(root, ns)
    status_text = (root.findtext(".//apps:CodEstatus", "", ns) or "").strip()
    if status_text:
        code = status_text.split()[0] if status_text[:1].isdigit() else "finkok"
        raise PacError(code, f"Finkok: {status_text}", retryable=code in RETRYABLE_CODES)
    raise PacError("respuesta", "Finkok respondió sin el estado de la cancelación", True)


__all__ = ["FinkokPac"]
