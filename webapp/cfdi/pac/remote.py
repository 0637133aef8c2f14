"""What the real providers (Finkok, SW) share: HTTP with a timeout on every call, reading stamps.

satcfdi's PAC clients call `requests` with no timeout at all: a provider that never answers would
hold a worker forever. `Transport` is the only way the providers here reach the network: every
call carries `timeout` seconds (connect and each read), and a timeout or a connection failure
becomes PacError(retryable=True), since whether the provider stamped is then unknown.

A provider's answer becomes a `Stamped` only through `read_stamp`, which insists that the
TimbreFiscalDigital seals the very document that was sent (its SelloCFD is the CFDI's Sello):
a stamp of another document is never recorded as this one's.
"""

from __future__ import annotations

import html
import threading
from datetime import datetime

import requests
from lxml import etree

from webapp.cfdi.cadena import find_tfd
from webapp.cfdi.catalogs import MEXICO_CITY
from webapp.cfdi.pac import PacError, Stamped
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


__all__ = ["RawCfdi", "Transport", "read_stamp", "retryable_status", "signed_cfdi"]
