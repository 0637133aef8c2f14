"""What the real providers (Finkok, SW) share: HTTP with a timeout on every call, reading stamps.

satcfdi's PAC clients call `requests` with no timeout at all: a provider that never answers would
hold a worker forever. `Transport` is the only way the providers here reach the network: every
call carries `timeout` seconds (connect and each read), and a timeout or a connection failure
becomes PacError(retryable=True), since whether the provider stamped is then unknown.

A provider's answer becomes a `Stamped` only through `read_stamp`, which insists that the
TimbreFiscalDigital seals the very document that was sent (its SelloCFD is the CFDI's Sello):
a stamp of another document is never recorded as this one's.

Cancellation (CFDI 4.0, Anexo 20): the issuer asks SAT through its PAC with a `Cancelacion`
document (UUID, Motivo, FolioSustitucion for motive 01) signed with the issuer's CSD, built here
by satcfdi (`cancellation_request`); SAT answers each UUID with an EstatusUUID (201 received,
202 previously cancelled, 2xx/3xx refusals: `CANCEL_CODES`). Whether the cancellation is done,
waiting for the receptor or rejected is what SAT's "Servicio de Consulta de CFDI"
(ConsultaCFDIService, `query_sat_status`) reports as Estado and EstatusCancelacion; Finkok
relays the same fields through its `get_sat_status`. `sat_status_result` reads them.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

import requests
from lxml import etree
from satcfdi.create.cancela import cancelacion
from satcfdi.models import Signer

from webapp.cfdi.cadena import find_tfd
from webapp.cfdi.catalogs import MEXICO_CITY
from webapp.cfdi.pac import CANCEL_MOTIVES, CancelResult, PacError, Stamped
from webapp.cfdi.xsd import CFDI_NS, PARSER

DEFAULT_TIMEOUT = 30.0
RETRYABLE_HTTP = frozenset({408, 425, 429})


def retryable_status(status: int) -> bool:
    """Whether an HTTP error status may go away by itself (server errors, throttling)."""
    return status >= 500 or status in RETRYABLE_HTTP


class Transport:
    """HTTP for one provider: a `requests` session per thread, `timeout` seconds on every call."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        if not timeout > 0:
            raise ValueError("the PAC timeout must be a positive number of seconds")
        self.timeout = float(timeout)
        self._local = threading.local()

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def request(self, method: str, url: str, **kwargs: object) -> requests.Response:
        """Send one request; PacError(retryable=True) when the provider cannot be reached."""
        kwargs["timeout"] = self.timeout  # always: no call may wait forever
        try:
            return self._session().request(method, url, **kwargs)  # type: ignore[arg-type]
        except requests.Timeout as exc:
            raise PacError(
                "timeout", f"El PAC no respondió en {self.timeout:g} s", retryable=True
            ) from exc
        except requests.ConnectionError as exc:
            raise PacError(
                "conexion", "No fue posible conectar con el PAC", retryable=True
            ) from exc
        except requests.RequestException as exc:
            raise PacError("http", f"Error de comunicación con el PAC: {exc}", True) from exc


class RawCfdi:
    """A signed CFDI the way satcfdi's PAC clients read one (`xml_bytes()`), sent byte for byte.

    satcfdi's `CFDI` objects re-serialise the document; a signed CFDI is sent exactly as signed.
    """

    def __init__(self, xml: bytes) -> None:
        self._xml = xml

    def xml_bytes(self, *args: object, **kwargs: object) -> bytes:
        return self._xml


def signed_cfdi(xml: bytes) -> etree._Element:
    """The root of a signed CFDI 4.0; PacError 301 (not retryable) when `xml` is not one."""
    try:
        root = etree.fromstring(xml, parser=PARSER)
    except etree.XMLSyntaxError as exc:
        raise PacError("301", f"XML mal formado: {exc}") from exc
    if root.tag != f"{{{CFDI_NS}}}Comprobante" or root.get("Version") != "4.0":
        raise PacError("301", "El documento no es un CFDI 4.0")
    if not root.get("Sello"):
        raise PacError("302", "El CFDI no está sellado")
    return root


def read_stamp(xml: bytes | str, sello: str) -> Stamped:
    """The Stamped in a provider's answer: a CFDI whose TFD seals the document with `sello`.

    An answer that is not such a CFDI raises PacError(retryable=True): the provider may have
    stamped the document, so the invoice stays pending and reconcile asks again.
    """
    if isinstance(xml, str):
        text = xml.strip()
        if text.startswith("&lt;"):  # some answers escape the XML twice
            text = html.unescape(text)
        xml = text.encode("utf-8")
    try:
        root = etree.fromstring(xml, parser=PARSER)
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise PacError("respuesta", "El PAC devolvió un XML ilegible", retryable=True) from exc
    tfd = find_tfd(root) if root.tag == f"{{{CFDI_NS}}}Comprobante" else None
    if tfd is None:
        raise PacError("respuesta", "El PAC devolvió un CFDI sin timbre", retryable=True)
    if tfd.get("SelloCFD") != sello or root.get("Sello") != sello:
        raise PacError("respuesta", "El PAC devolvió el timbre de otro comprobante", retryable=True)
    try:
        fecha = datetime.fromisoformat(tfd.get("FechaTimbrado", ""))
    except ValueError as exc:
        raise PacError("respuesta", "FechaTimbrado ilegible", retryable=True) from exc
    if fecha.tzinfo is None:  # SAT writes the central time of Mexico, without an offset
        fecha = fecha.replace(tzinfo=MEXICO_CITY)
    uuid = (tfd.get("UUID") or "").upper()
    if not uuid:
        raise PacError("respuesta", "El timbre no tiene UUID", retryable=True)
    return Stamped(uuid, fecha, xml, tfd.get("NoCertificadoSAT", ""))


# --- cancellation -------------------------------------------------------------------------------

SignerSource = Signer | Callable[[], Signer] | None
"""The issuer's CSD for signing cancellation requests: a Signer, or a function loading it."""

SAT_STATUS_URL = "https://consultaqr.facturaelectronica.sat.gob.mx/ConsultaCFDIService.svc"
SAT_STATUS_TEST_URL = "https://pruebacfdiconsultaqr.cloudapp.net/ConsultaCFDIService.svc"
SAT_STATUS_ACTION = "http://tempuri.org/IConsultaCFDIService/Consulta"
SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
RECEIVED, PREVIOUSLY_CANCELLED = "201", "202"
RETRYABLE_CANCEL_CODES = frozenset({"708"})  # the PAC could not reach SAT

CANCEL_CODES = {
    "201": "Solicitud de cancelación recibida por el SAT",
    "202": "El CFDI ya tenía una solicitud de cancelación (previamente cancelado)",
    "203": "El UUID no corresponde al RFC del emisor que firma la solicitud",
    "205": "El SAT aún no registra este UUID (puede tardar hasta 72 horas tras el timbrado); "
    "intente más tarde",
    "206": "El UUID no corresponde a un CFDI del sector primario",
    "207": "Falta el motivo de cancelación o no es válido",
    "208": "El folio de sustitución no es válido",
    "209": "Este motivo no lleva folio de sustitución",
    "210": "La fecha de la solicitud es posterior a la fecha de la declaración",
    "211": "La solicitud está fuera del plazo para cancelar la factura global",
    "212": "El folio de sustitución no relaciona a este CFDI (tipo de relación 04)",
    "300": "El PAC no aceptó el usuario de la solicitud",
    "301": "La solicitud de cancelación está mal formada",
    "302": "El UUID tiene un formato incorrecto",
    "303": "El CSD no corresponde al RFC del emisor",
    "304": "El CSD del emisor está revocado o caduco",
    "305": "El certificado del emisor no es válido",
    "310": "El CSD del emisor no es válido para cancelar",
    "311": "Clave de motivo de cancelación no válida",
    "312": "El UUID no está relacionado según el motivo de cancelación",
    "708": "El PAC no pudo conectar con el SAT; intente más tarde",
    "no_cancelable": "El SAT indica que este CFDI no es cancelable (p. ej. tiene documentos "
    "relacionados vigentes)",
}
"""SAT's EstatusUUID codes of a cancellation request (and the PACs' own), in Spanish."""


@dataclass(frozen=True)
class StampedCfdi:
    """What a cancellation request or a status query names of a stamped CFDI."""

    uuid: str
    emisor: str
    receptor: str
    total: str


def stamped_cfdi(xml: bytes) -> StampedCfdi:
    """The UUID, RFCs and total of a stamped CFDI 4.0; PacError 301 when `xml` is not one."""
    root = signed_cfdi(xml)
    tfd = find_tfd(root)
    uuid = (tfd.get("UUID") or "").upper() if tfd is not None else ""
    if not uuid:
        raise PacError("301", "El CFDI no está timbrado: no tiene UUID que cancelar")
    emisor = root.find(f"{{{CFDI_NS}}}Emisor")
    receptor = root.find(f"{{{CFDI_NS}}}Receptor")
    return StampedCfdi(
        uuid=uuid,
        emisor=emisor.get("Rfc", "") if emisor is not None else "",
        receptor=receptor.get("Rfc", "") if receptor is not None else "",
        total=root.get("Total", ""),
    )


def resolve_signer(source: SignerSource) -> Signer:
    """The Signer `source` gives; PacError("sin-csd") when there is none."""
    signer = source() if callable(source) and not isinstance(source, Signer) else source
    if signer is None:
        raise PacError(
            "sin-csd",
            "Para cancelar se necesita el CSD del emisor: súbalo en los ajustes del emisor",
        )
    return signer


def cancellation_request(
    cfdi: StampedCfdi,
    motive: str,
    replacement_uuid: str | None,
    signer: Signer,
    now: datetime | None = None,
) -> cancelacion.Cancelacion:
    """SAT's `Cancelacion` of `cfdi`, signed with the issuer's CSD. Requests SAT would refuse
    (a bad motive, motive 01 without its replacement, another issuer's CSD) raise PacError
    before anything is sent."""
    if motive not in CANCEL_MOTIVES:
        raise PacError("CA-motivo", f"Motivo de cancelación inválido: {motive!r}")
    replacement = (replacement_uuid or "").strip().upper() or None
    if motive == "01" and replacement is None:
        raise PacError(
            "CA-sustitucion",
            "El motivo 01 requiere el folio de sustitución (el UUID del CFDI que sustituye)",
        )
    if motive != "01" and replacement is not None:
        raise PacError("CA-sustitucion", "Sólo el motivo 01 lleva folio de sustitución")
    if replacement == cfdi.uuid:
        raise PacError("CA-sustitucion", "El folio de sustitución no puede ser el mismo CFDI")
    if str(signer.rfc) != cfdi.emisor:
        raise PacError(
            "303", f"El CSD es del RFC {signer.rfc}, no del emisor del CFDI ({cfdi.emisor})"
        )
    fecha = (now or datetime.now(MEXICO_CITY)).astimezone(MEXICO_CITY)
    return cancelacion.Cancelacion(
        signer,
        cancelacion.Folio(cfdi.uuid, motive, replacement),
        fecha=fecha.replace(tzinfo=None, microsecond=0),  # SAT's local time, no offset
    )


def cancel_refusal(code: str, detail: str = "") -> PacError:
    """A refused cancellation request (SAT's EstatusUUID `code`) as a PacError."""
    known = CANCEL_CODES.get(code)
    message = known or detail or f"El SAT rechazó la solicitud (código {code})"
    return PacError(code, message, retryable=code in RETRYABLE_CANCEL_CODES)


def cancel_state(estatus: str | None) -> Literal["cancelled", "pending", "rejected"] | None:
    """SAT's EstatusCancelacion ("En proceso", "Cancelado sin aceptación", "Cancelado con
    aceptación", "Plazo vencido", "Solicitud rechazada") as a CancelResult status."""
    text = (estatus or "").strip().lower()
    if "rechaz" in text:
        return "rejected"
    if "proceso" in text:
        return "pending"
    if "cancelado" in text or "plazo vencido" in text:
        return "cancelled"
    return None


def sat_status_result(estado: str | None, estatus: str | None, codigo: str = "") -> CancelResult:
    """Where a cancellation stands from SAT's Estado and EstatusCancelacion.

    Cancelado: done. Vigente and "En proceso": waiting for the receptor; "Solicitud
    rechazada": the receptor refused. Vigente without a cancellation status: SAT has no
    request (PacError "sin-solicitud": it may be asked again). No Encontrado or an unknown
    answer: PacError(retryable=True), SAT may know it later.
    """
    state = cancel_state(estatus)
    text = (estado or "").strip().lower()
    if text == "cancelado":
        return CancelResult("cancelled", None, (estatus or "").strip() or "Cancelado")
    if text == "vigente":
        if state == "pending":
            return CancelResult("pending", None, "En proceso: el receptor no ha respondido")
        if state == "rejected":
            return CancelResult("rejected", None, "El receptor rechazó la cancelación")
        raise PacError(
            "sin-solicitud",
            "El SAT no registra una solicitud de cancelación de este CFDI; puede pedirla de nuevo",
        )
    if "no encontrado" in text:
        raise PacError(
            "no-encontrado", "El SAT aún no encuentra este CFDI; consulte más tarde", True
        )
    raise PacError("sat", f"El SAT respondió: {codigo or estado or 'sin estado'}", retryable=True)


def query_sat_status(
    transport: Transport, url: str, cfdi: StampedCfdi, *, verify: bool = True
) -> dict[str, str]:
    """SAT's ConsultaCFDIService answer for `cfdi` (CodigoEstatus, Estado, EsCancelable,
    EstatusCancelacion, ValidacionEFOS), as satcfdi's `SAT.status` asks it."""
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={None: SOAP_ENV})
    body = etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body")
    consulta = etree.SubElement(
        body, "{http://tempuri.org/}Consulta", nsmap={"tem": "http://tempuri.org/"}
    )
    expression = etree.SubElement(consulta, "{http://tempuri.org/}expresionImpresa")
    expression.text = etree.CDATA(
        f"?re={cfdi.emisor}&rr={cfdi.receptor}&tt={cfdi.total}&id={cfdi.uuid}"
    )
    response = transport.request(
        "POST",
        url,
        data=etree.tostring(envelope, xml_declaration=True, encoding="UTF-8"),
        headers={
            "Content-Type": 'text/xml;charset="utf-8"',
            "Accept": "text/xml",
            "SOAPAction": SAT_STATUS_ACTION,
        },
        verify=verify,
    )
    if not response.ok:
        raise PacError(
            f"http {response.status_code}",
            f"El servicio de consulta del SAT respondió HTTP {response.status_code}",
            retryable=True,
        )
    try:
        root = etree.fromstring(response.content, parser=PARSER)
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise PacError("respuesta", "El SAT respondió algo que no es SOAP", True) from exc
    result = root.find("{*}Body/{*}ConsultaResponse/{*}ConsultaResult")
    if result is None:
        raise PacError("respuesta", "El SAT respondió sin el estado del CFDI", retryable=True)
    return {etree.QName(child).localname: (child.text or "").strip() for child in result}


def acuse_text(text: str | None) -> bytes | None:
    """An acuse as received (XML, escaped once more by some providers), or None."""
    text = (text or "").strip()
    if not text:
        return None
    if text.startswith("&lt;"):
        text = html.unescape(text)
    return text.encode("utf-8")


__all__ = [
    "CANCEL_CODES",
    "RawCfdi",
    "SignerSource",
    "StampedCfdi",
    "Transport",
    "cancel_refusal",
    "cancel_state",
    "cancellation_request",
    "resolve_signer",
    "query_sat_status",
    "read_stamp",
    "retryable_status",
    "sat_status_result",
    "signed_cfdi",
    "stamped_cfdi",
]
