"""A client of SRI's offline web services: reception and authorisation of comprobantes.

SRI (Servicio de Rentas Internas, Ecuador) takes electronic documents in two SOAP 1.1 services
("offline" scheme of the Ficha Técnica de Comprobantes Electrónicos), both document/literal with
``soapAction=""`` and ``elementFormDefault="unqualified"`` (only the operation element is in the
service's namespace, its children are not), as their WSDLs define them:

- **RecepcionComprobantesOffline** (namespace ``http://ec.gob.sri.ws.recepcion``), operation
  ``validarComprobante(xml: base64Binary)``: the signed XML, byte for byte, in base64. Its answer
  ``validarComprobanteResponse/RespuestaRecepcionComprobante`` has ``estado`` RECIBIDA (taken for
  authorisation) or DEVUELTA (returned) with ``comprobantes/comprobante`` (``claveAcceso``,
  ``mensajes/mensaje``: ``identificador``, ``mensaje``, ``informacionAdicional``, ``tipo`` ERROR |
  ADVERTENCIA | INFORMATIVO).
- **AutorizacionComprobantesOffline** (namespace ``http://ec.gob.sri.ws.autorizacion``),
  operation ``autorizacionComprobante(claveAccesoComprobante)``. Its answer
  ``RespuestaAutorizacionComprobante`` has ``claveAccesoConsultada``, ``numeroComprobantes`` and
  ``autorizaciones/autorizacion`` (``estado`` AUTORIZADO | NO AUTORIZADO | EN PROCESO,
  ``numeroAutorizacion``, ``fechaAutorizacion`` xs:dateTime, ``ambiente`` PRUEBAS | PRODUCCIÓN,
  ``comprobante``: the authorised XML as a string, in CDATA or escaped, and ``mensajes``). An
  empty list means SRI has not (yet) anything under that key. SRI may list several
  authorisations for one key (an old NO AUTORIZADO and a later AUTORIZADO): the authorised one
  wins, then one still in process, then the latest refusal.

Test environment (ambiente 1) at https://celcer.sri.gob.ec, production (ambiente 2) at
https://cel.sri.gob.ec, both under ``/comprobantes-electronicos-ws/<Service>`` (``?wsdl`` gives
the WSDL; the SOAP calls go to the service address itself). ``base_url`` points the client
elsewhere (a loopback server in tests, the app's sandbox SRI).

Recovery by clave de acceso
---------------------------
The clave de acceso (49 digits, inside the signed XML) names the document at SRI. Whatever
happens on the wire, **a document is never issued again under a new clave because an answer was
lost**: that would make two invoices of one sale. The rules:

1. ``send`` is never retried here. When the request may have reached SRI and no usable answer
   came back (read timeout, connection cut after sending, an unreadable answer or a SOAP fault),
   it raises an ``SriError`` with ``after_send=True`` (``SriTimeout(after_send=True)`` for the
   timeout) carrying ``access_key``. Only a connection that never opened (refused, DNS, TLS,
   connect timeout) gives ``after_send=False``: nothing left, sending again is plainly safe.
2. After ``after_send=True`` the caller asks ``authorise(access_key)``: AUTORIZADO or NO
   AUTORIZADO settle the document; EN PROCESO means SRI has it (ask again later); an empty list
   (``AuthorisationState.NOT_FOUND``) after a while means SRI never took it, and the caller sends
   **the same signed XML** again (same clave), never a re-signed one under a new clave.
3. Sending a clave SRI already has is harmless: it answers DEVUELTA with message 43 "CLAVE
   ACCESO REGISTRADA" (or 70 "CLAVE DE ACCESO EN PROCESAMIENTO" while it is still working on
   it). ``send`` reports that as ``ReceptionState.ALREADY_RECEIVED`` (``received`` is true): the
   document was received, go and ask for its authorisation; it is not an error to fix.

``authorise`` is idempotent (it only reads), so it retries by itself a few times
(``authorise_attempts``, exponential backoff from ``backoff`` seconds) when SRI cannot be
reached, times out or its gateway answers 502/503/504. Every call has explicit connect and read
timeouts; an answer larger than ``MAX_ANSWER_BYTES`` is refused.
"""

from __future__ import annotations

import base64
import enum
import logging
import re
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import requests
from lxml import etree
from urllib3.exceptions import MaxRetryError, NewConnectionError, ReadTimeoutError

log = logging.getLogger(__name__)

TEST_BASE_URL = "https://celcer.sri.gob.ec/comprobantes-electronicos-ws"
PRODUCTION_BASE_URL = "https://cel.sri.gob.ec/comprobantes-electronicos-ws"
RECEPTION_SERVICE = "RecepcionComprobantesOffline"
AUTHORISATION_SERVICE = "AutorizacionComprobantesOffline"
TEST_RECEPTION_WSDL = f"{TEST_BASE_URL}/{RECEPTION_SERVICE}?wsdl"
TEST_AUTHORISATION_WSDL = f"{TEST_BASE_URL}/{AUTHORISATION_SERVICE}?wsdl"
PRODUCTION_RECEPTION_WSDL = f"{PRODUCTION_BASE_URL}/{RECEPTION_SERVICE}?wsdl"
PRODUCTION_AUTHORISATION_WSDL = f"{PRODUCTION_BASE_URL}/{AUTHORISATION_SERVICE}?wsdl"

SOAP_ENV = "http://schemas.xmlsoap.org/soap/envelope/"
RECEPTION_NS = "http://ec.gob.sri.ws.recepcion"
AUTHORISATION_NS = "http://ec.gob.sri.ws.autorizacion"

DEFAULT_CONNECT_TIMEOUT = 10.0
DEFAULT_READ_TIMEOUT = 30.0
DEFAULT_AUTHORISE_ATTEMPTS = 3
DEFAULT_BACKOFF = 1.0
MAX_ANSWER_BYTES = 10 * 1024 * 1024  # an authorisation carries the comprobante: a few hundred KB

# Reception messages meaning "SRI already has this clave": the document was received before.
ALREADY_REGISTERED = "43"  # CLAVE ACCESO REGISTRADA
IN_PROCESSING = "70"  # CLAVE DE ACCESO EN PROCESAMIENTO
ALREADY_RECEIVED_CODES = frozenset({ALREADY_REGISTERED, IN_PROCESSING})

GATEWAY_STATUSES = frozenset({502, 503, 504})  # authorise retries these
RETRYABLE_HTTP = frozenset({408, 425, 429})
ECUADOR = timezone(timedelta(hours=-5), "ECT")  # mainland Ecuador, no daylight saving time
ACCESS_KEY = re.compile(r"\d{49}")

PARSER = etree.XMLParser(
    resolve_entities=False, no_network=True, load_dtd=False, remove_comments=True
)


class Environment(enum.StrEnum):
    """SRI's ambiente (the digit in the clave de acceso and the XML's infoTributaria)."""

    TEST = "1"  # pruebas
    PRODUCTION = "2"  # producción

    @property
    def base_url(self) -> str:
        return TEST_BASE_URL if self is Environment.TEST else PRODUCTION_BASE_URL


# --- errors -----------------------------------------------------------------------------------


class SriError(Exception):
    """SRI could not be asked or its answer could not be read.

    `after_send`: the request may have reached SRI (recover by clave de acceso before anything
    else, see the module docstring). `retryable`: asking again later may work. `access_key`:
    the clave the call was about.
    """

    def __init__(
        self,
        message: str,
        *,
        after_send: bool,
        retryable: bool = True,
        access_key: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.after_send = after_send
        self.retryable = retryable
        self.access_key = access_key

    def __str__(self) -> str:
        return self.message


class SriUnreachable(SriError):
    """No connection to SRI (refused, name resolution, TLS), or it broke before the answer."""


class SriTimeout(SriError):
    """SRI did not answer in time: connecting (`after_send=False`) or reading the answer."""


class SriBadAnswer(SriError):
    """An answer that is not the SOAP answer of the operation (HTTP error, garbage, shape)."""

    def __init__(self, message: str, *, status: int | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("after_send", True)
        super().__init__(message, **kwargs)
        self.status = status


class SriFault(SriBadAnswer):
    """A SOAP Fault (`faultcode`, `faultstring`)."""

    def __init__(self, code: str, text: str, **kwargs: Any) -> None:
        kwargs.setdefault("retryable", "client" not in code.lower())
        super().__init__(f"SRI respondió un SOAP Fault {code}: {text}", **kwargs)
        self.code = code
        self.text = text


# --- results ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """One of SRI's `mensaje`: identificador, mensaje, informacionAdicional, tipo."""

    identifier: str
    message: str
    additional_information: str = ""
    kind: str = ""  # ERROR | ADVERTENCIA | INFORMATIVO

    def __str__(self) -> str:
        text = f"{self.identifier} {self.message}".strip()
        return f"{text}: {self.additional_information}" if self.additional_information else text


class ReceptionState(enum.StrEnum):
    RECEIVED = "RECIBIDA"
    RETURNED = "DEVUELTA"
    # DEVUELTA with 43 CLAVE ACCESO REGISTRADA or 70 CLAVE DE ACCESO EN PROCESAMIENTO: SRI
    # already had this clave, the document was received (recovery, not an error).
    ALREADY_RECEIVED = "YA RECIBIDA"


@dataclass(frozen=True)
class Reception:
    """What `validarComprobante` answered for one document."""

    state: ReceptionState
    access_key: str
    messages: tuple[Message, ...] = ()

    @property
    def received(self) -> bool:
        """SRI has the document: ask for its authorisation (never send it under a new clave)."""
        return self.state is not ReceptionState.RETURNED

    @property
    def errors(self) -> tuple[Message, ...]:
        return tuple(m for m in self.messages if m.kind.upper() == "ERROR")


class AuthorisationState(enum.StrEnum):
    AUTHORISED = "AUTORIZADO"
    NOT_AUTHORISED = "NO AUTORIZADO"
    IN_PROCESS = "EN PROCESO"
    NOT_FOUND = ""  # an empty list: SRI has nothing under this clave (yet)


_STATES = {
    "AUTORIZADO": AuthorisationState.AUTHORISED,
    "NO AUTORIZADO": AuthorisationState.NOT_AUTHORISED,
    "RECHAZADA": AuthorisationState.NOT_AUTHORISED,  # older Fichas Técnicas' wording
    "RECHAZADO": AuthorisationState.NOT_AUTHORISED,
    "EN PROCESO": AuthorisationState.IN_PROCESS,
    "EN PROCESAMIENTO": AuthorisationState.IN_PROCESS,
}
_PREFERENCE = (
    AuthorisationState.AUTHORISED,
    AuthorisationState.IN_PROCESS,
    AuthorisationState.NOT_AUTHORISED,
)


@dataclass(frozen=True)
class Authorisation:
    """What `autorizacionComprobante` answered for one clave de acceso."""

    access_key: str
    state: AuthorisationState
    number: str | None = None  # numeroAutorizacion (the clave itself in the offline scheme)
    authorised_at: datetime | None = None  # fechaAutorizacion, timezone-aware
    environment: str | None = None  # ambiente as SRI writes it: PRUEBAS | PRODUCCIÓN
    comprobante: bytes | None = None  # the XML SRI keeps, as it returned it (UTF-8)
    messages: tuple[Message, ...] = ()

    @property
    def final(self) -> bool:
        """SRI decided on what it received (a refused document is corrected and sent again;
        SRI then lists both decisions, and the authorisation wins)."""
        return self.state in (AuthorisationState.AUTHORISED, AuthorisationState.NOT_AUTHORISED)

    @property
    def pending(self) -> bool:
        """Not decided yet (in process, or nothing under the clave yet): ask again later."""
        return not self.final


# --- the client ---------------------------------------------------------------------------------


class SriClient:
    """SRI's offline reception and authorisation services over HTTP (`requests`)."""

    def __init__(
        self,
        environment: Environment | str = Environment.TEST,
        *,
        base_url: str | None = None,
        connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
        read_timeout: float = DEFAULT_READ_TIMEOUT,
        authorise_attempts: int = DEFAULT_AUTHORISE_ATTEMPTS,
        backoff: float = DEFAULT_BACKOFF,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        if not (connect_timeout > 0 and read_timeout > 0):
            raise ValueError("the SRI timeouts must be positive numbers of seconds")
        if authorise_attempts < 1 or backoff < 0:
            raise ValueError("authorise_attempts must be at least 1 and backoff not negative")
        self.environment = Environment(environment)
        self.base_url = (base_url or self.environment.base_url).rstrip("/")
        self.connect_timeout = float(connect_timeout)
        self.read_timeout = float(read_timeout)
        self.authorise_attempts = int(authorise_attempts)
        self.backoff = float(backoff)
        self._sleep = sleep
        self._local = threading.local()

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> SriClient:
        """Build from settings: SRI_ENVIRONMENT ("1"/"test" or "2"/"production"), SRI_URL,
        SRI_CONNECT_TIMEOUT_SECONDS, SRI_READ_TIMEOUT_SECONDS."""
        environment = str(settings.get("SRI_ENVIRONMENT") or "1").strip().lower()
        environment = {"test": "1", "pruebas": "1", "production": "2", "produccion": "2"}.get(
            environment, environment
        )
        return cls(
            environment,
            base_url=settings.get("SRI_URL") or None,
            connect_timeout=float(
                settings.get("SRI_CONNECT_TIMEOUT_SECONDS") or DEFAULT_CONNECT_TIMEOUT
            ),
            read_timeout=float(settings.get("SRI_READ_TIMEOUT_SECONDS") or DEFAULT_READ_TIMEOUT),
        )

    @property
    def reception_url(self) -> str:
        return f"{self.base_url}/{RECEPTION_SERVICE}"

    @property
    def authorisation_url(self) -> str:
        return f"{self.base_url}/{AUTHORISATION_SERVICE}"

    # --- operations ---------------------------------------------------------------------------

    def send(self, signed_xml: bytes) -> Reception:
        """`validarComprobante`: hand the signed document to SRI, once.

        Never retried: an `SriError` with `after_send=True` means SRI may have it, and the
        caller recovers with `authorise(error.access_key)` (module docstring).
        """
        access_key = access_key_of(signed_xml)
        self._check_environment(access_key)
        envelope = soap_envelope(
            RECEPTION_NS,
            "validarComprobante",
            "xml",
            base64.b64encode(signed_xml).decode("ascii"),
        )
        root = self._call(self.reception_url, envelope, access_key)
        return read_reception(root, access_key)

    def authorise(self, access_key: str) -> Authorisation:
        """`autorizacionComprobante`: SRI's decision on the document named `access_key`.

        Retried up to `authorise_attempts` times, with backoff, while SRI cannot be reached.
        """
        if not ACCESS_KEY.fullmatch(access_key or ""):
            raise ValueError("a clave de acceso has 49 digits")
        self._check_environment(access_key)
        envelope = soap_envelope(
            AUTHORISATION_NS, "autorizacionComprobante", "claveAccesoComprobante", access_key
        )
        for attempt in range(1, self.authorise_attempts + 1):
            try:
                root = self._call(self.authorisation_url, envelope, access_key)
            except SriError as error:
                if attempt == self.authorise_attempts or not _transient(error):
                    raise
                delay = self.backoff * 2 ** (attempt - 1)
                log.warning(
                    "SRI authorisation of %s, attempt %d/%d: %s; again in %.1f s",
                    access_key,
                    attempt,
                    self.authorise_attempts,
                    error,
                    delay,
                )
                self._sleep(delay)
                continue
            return read_authorisation(root, access_key)
        raise AssertionError("unreachable")  # pragma: no cover

    def _check_environment(self, access_key: str) -> None:
        """A clave of the other ambiente (its 24th digit) is a configuration error: a test
        document never goes to production, and production is never asked about a test one."""
        if access_key[23] != self.environment.value:
            raise ValueError(
                f"the clave de acceso is of ambiente {access_key[23]}, "
                f"this client of ambiente {self.environment.value}"
            )

    # --- transport ----------------------------------------------------------------------------

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = self._local.session = requests.Session()
        return session

    def _call(self, url: str, envelope: bytes, access_key: str) -> etree._Element:
        """POST one SOAP request; the answer's Body, or an SriError saying what happened."""
        timeout = (self.connect_timeout, self.read_timeout)
        try:
            with self._session().post(
                url,
                data=envelope,
                headers={"Content-Type": "text/xml; charset=utf-8", "SOAPAction": '""'},
                timeout=timeout,
                stream=True,
            ) as response:
                status = response.status_code
                content = _read_capped(response, access_key)
        except requests.RequestException as exc:
            raise _transport_error(exc, self, access_key) from exc
        return _soap_body(content, status, access_key)


def _read_capped(response: requests.Response, key: str) -> bytes:
    chunks, size = [], 0
    for chunk in response.iter_content(64 * 1024):
        size += len(chunk)
        if size > MAX_ANSWER_BYTES:
            raise SriBadAnswer(
                f"La respuesta del SRI excede {MAX_ANSWER_BYTES} bytes",
                status=response.status_code,
                access_key=key,
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _transient(error: SriError) -> bool:
    """Whether `authorise` tries again at once: no connection, a timeout, a gateway error."""
    if isinstance(error, SriUnreachable | SriTimeout):
        return True
    return isinstance(error, SriBadAnswer) and error.status in GATEWAY_STATUSES


def _transport_error(exc: requests.RequestException, client: SriClient, key: str) -> SriError:
    """The SriError of a failed request; `after_send` unless the connection never opened."""
    if isinstance(exc, requests.ConnectTimeout):
        return SriTimeout(
            f"No se pudo conectar con el SRI en {client.connect_timeout:g} s",
            after_send=False,
            access_key=key,
        )
    if isinstance(exc, requests.ReadTimeout) or _caused_by(exc, ReadTimeoutError):
        return SriTimeout(
            f"El SRI no respondió en {client.read_timeout:g} s",
            after_send=True,
            access_key=key,
        )
    if isinstance(exc, requests.exceptions.SSLError) or _never_connected(exc):
        return SriUnreachable(
            "No fue posible conectar con el SRI", after_send=False, access_key=key
        )
    return SriUnreachable(
        f"La conexión con el SRI se cortó: {exc}", after_send=True, access_key=key
    )


def _never_connected(exc: BaseException) -> bool:
    """A refused connection or an unresolvable name: nothing was sent."""
    reason = exc.args[0] if exc.args else None
    return isinstance(reason, MaxRetryError) and isinstance(reason.reason, NewConnectionError)


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: BaseException | None = exc
    for _ in range(5):
        if seen is None:
            return False
        if isinstance(seen, kind) or any(isinstance(arg, kind) for arg in seen.args):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


# --- SOAP ---------------------------------------------------------------------------------------


def soap_envelope(namespace: str, operation: str, field: str, value: str) -> bytes:
    """A SOAP 1.1 request: `<ns:operation><field>value</field></ns:operation>` (the field
    unqualified, as the services' schemas say)."""
    envelope = etree.Element(
        etree.QName(SOAP_ENV, "Envelope"), nsmap={"soapenv": SOAP_ENV, "ec": namespace}
    )
    etree.SubElement(envelope, etree.QName(SOAP_ENV, "Header"))
    body = etree.SubElement(envelope, etree.QName(SOAP_ENV, "Body"))
    call = etree.SubElement(body, etree.QName(namespace, operation))
    etree.SubElement(call, field).text = value
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def access_key_of(signed_xml: bytes) -> str:
    """The claveAcceso of a comprobante (infoTributaria/claveAcceso); ValueError without one."""
    try:
        root = etree.fromstring(signed_xml, parser=PARSER)
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise ValueError(f"the comprobante is not well-formed XML: {exc}") from exc
    key = (root.findtext("infoTributaria/claveAcceso") or "").strip()
    if not ACCESS_KEY.fullmatch(key):
        raise ValueError("the comprobante has no 49-digit infoTributaria/claveAcceso")
    return key


def _soap_body(content: bytes, status: int, key: str) -> etree._Element:
    """The SOAP Body of an answer; SriFault for a Fault, SriBadAnswer for anything else."""
    try:
        root = etree.fromstring(content, parser=PARSER) if content.strip() else None
    except (etree.XMLSyntaxError, ValueError):
        root = None
    body = root.find(f"{{{SOAP_ENV}}}Body") if root is not None else None
    if body is not None and root.tag == f"{{{SOAP_ENV}}}Envelope":
        fault = body.find(f"{{{SOAP_ENV}}}Fault")
        if fault is not None:
            raise SriFault(
                (fault.findtext("faultcode") or "").strip() or "soap:Server",
                (fault.findtext("faultstring") or "").strip() or "sin detalle",
                status=status,
                access_key=key,
            )
        if 200 <= status < 300:
            return body
    if not 200 <= status < 300:
        raise SriBadAnswer(
            f"El SRI respondió HTTP {status}",
            status=status,
            retryable=status >= 500 or status in RETRYABLE_HTTP,
            access_key=key,
        )
    raise SriBadAnswer("El SRI respondió algo que no es SOAP", status=status, access_key=key)


def _child(parent: etree._Element, name: str) -> etree._Element | None:
    """The first child named `name` in any namespace (SRI qualifies some, not others)."""
    for element in parent:
        if isinstance(element.tag, str) and etree.QName(element).localname == name:
            return element
    return None


def _children(parent: etree._Element | None, name: str) -> Iterable[etree._Element]:
    if parent is None:
        return ()
    return [e for e in parent if isinstance(e.tag, str) and etree.QName(e).localname == name]


def _text(parent: etree._Element | None, name: str) -> str:
    element = _child(parent, name) if parent is not None else None
    return (element.text or "").strip() if element is not None else ""


def _messages(parent: etree._Element | None) -> tuple[Message, ...]:
    return tuple(
        Message(
            identifier=_text(m, "identificador"),
            message=_text(m, "mensaje"),
            additional_information=_text(m, "informacionAdicional"),
            kind=_text(m, "tipo"),
        )
        for m in _children(_child(parent, "mensajes") if parent is not None else None, "mensaje")
    )


def _answer(
    body: etree._Element, namespace: str, operation: str, result: str, key: str
) -> etree._Element:
    response = body.find(f"{{{namespace}}}{operation}Response")
    answer = _child(response, result) if response is not None else None
    if answer is None:
        raise SriBadAnswer(
            f"El SRI respondió sin {operation}Response/{result}", status=200, access_key=key
        )
    return answer


def read_reception(body: etree._Element, key: str) -> Reception:
    """The Reception in a `validarComprobanteResponse` Body, for the document `key`."""
    answer = _answer(body, RECEPTION_NS, "validarComprobante", "RespuestaRecepcionComprobante", key)
    estado = _text(answer, "estado").upper()
    messages: list[Message] = []
    for comprobante in _children(_child(answer, "comprobantes"), "comprobante"):
        answered_key = _text(comprobante, "claveAcceso")
        if answered_key and answered_key != key:
            raise SriBadAnswer(
                f"El SRI respondió por otra clave de acceso ({answered_key})",
                status=200,
                access_key=key,
            )
        messages.extend(_messages(comprobante))
    if estado == ReceptionState.RECEIVED:
        return Reception(ReceptionState.RECEIVED, key, tuple(messages))
    if estado == ReceptionState.RETURNED:
        if any(m.identifier in ALREADY_RECEIVED_CODES for m in messages):
            return Reception(ReceptionState.ALREADY_RECEIVED, key, tuple(messages))
        return Reception(ReceptionState.RETURNED, key, tuple(messages))
    raise SriBadAnswer(
        f"Estado de recepción desconocido: {estado or 'vacío'}", status=200, access_key=key
    )


def read_authorisation(body: etree._Element, key: str) -> Authorisation:
    """The Authorisation in an `autorizacionComprobanteResponse` Body, for the clave `key`."""
    answer = _answer(
        body, AUTHORISATION_NS, "autorizacionComprobante", "RespuestaAutorizacionComprobante", key
    )
    asked = _text(answer, "claveAccesoConsultada")
    if asked and asked != key:
        raise SriBadAnswer(
            f"El SRI respondió por otra clave de acceso ({asked})", status=200, access_key=key
        )
    found = [
        _authorisation(a, key) for a in _children(_child(answer, "autorizaciones"), "autorizacion")
    ]
    if not found:
        return Authorisation(key, AuthorisationState.NOT_FOUND)
    for state in _PREFERENCE:
        candidates = [a for a in found if a.state is state]
        if candidates:
            # the latest of them (fechaAutorizacion), SRI's order for ties
            floor = datetime.min.replace(tzinfo=UTC)
            return max(candidates, key=lambda a: a.authorised_at or floor)
    raise AssertionError("unreachable")  # pragma: no cover


def _authorisation(element: etree._Element, key: str) -> Authorisation:
    estado = " ".join(_text(element, "estado").upper().split())
    state = _STATES.get(estado)
    if state is None:
        raise SriBadAnswer(
            f"Estado de autorización desconocido: {estado or 'vacío'}", status=200, access_key=key
        )
    number = _text(element, "numeroAutorizacion") or None
    authorised_at = _datetime(_text(element, "fechaAutorizacion"))
    if state is AuthorisationState.AUTHORISED and (number is None or authorised_at is None):
        raise SriBadAnswer(
            "El SRI autorizó sin número o fecha de autorización legibles",
            status=200,
            access_key=key,
        )
    comprobante_element = _child(element, "comprobante")
    comprobante_text = (
        (comprobante_element.text or "").strip() if comprobante_element is not None else ""
    )
    return Authorisation(
        access_key=key,
        state=state,
        number=number,
        authorised_at=authorised_at,
        environment=_text(element, "ambiente") or None,
        comprobante=comprobante_text.encode("utf-8") if comprobante_text else None,
        messages=_messages(element),
    )


def _datetime(text: str) -> datetime | None:
    """xs:dateTime (2024-05-02T10:15:30-05:00, with or without fractions) or SRI's older
    dd/mm/yyyy hh:mm:ss; a time without offset is Ecuador's."""
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            moment = datetime.strptime(text, "%d/%m/%Y %H:%M:%S")
        except ValueError:
            return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=ECUADOR)


__all__ = [
    "ALREADY_RECEIVED_CODES",
    "Authorisation",
    "AuthorisationState",
    "Environment",
    "Message",
    "PRODUCTION_AUTHORISATION_WSDL",
    "PRODUCTION_RECEPTION_WSDL",
    "Reception",
    "ReceptionState",
    "SriBadAnswer",
    "SriClient",
    "SriError",
    "SriFault",
    "SriTimeout",
    "SriUnreachable",
    "TEST_AUTHORISATION_WSDL",
    "TEST_RECEPTION_WSDL",
    "access_key_of",
]
