"""The sandbox SRI: an offline SRI of our own, in-process, for development, demos and tests.

    sri = SandboxSri(Path("instance/sandbox-sri"))
    reception = sri.send(signed_xml)          # as webapp.sri.client.SriClient.send
    authorisation = sri.authorise(clave)      # as SriClient.authorise

`SandboxSri` has the interface of `webapp.sri.client.SriClient` (`environment`, `send`,
`authorise`) and answers with the same dataclasses (`Reception`, `Authorisation`, `Message`)
the real client reads from SRI's answers. It is SRI's test environment (ambiente 1, "PRUEBAS")
only: nothing it authorises has tax validity. `reception_answer` and `authorisation_answer`
render its answers as SRI's SOAP services write them, for the app's sandbox web services
(webapp/sandbox_sri), which the real `SriClient` can be pointed at.

What it checks, in SRI's order, and how it answers (SRI's message identifiers and texts):

Reception (`validarComprobante`), a DEVUELTA when the document cannot be taken:
- larger than SRI's 320 KB for one comprobante: 26 "TAMAÑO MÁXIMO SUPERADO";
- not well-formed XML, not a factura 1.1.0 valid against SRI's XSD with its ds:Signature
  (`webapp.sri.xsd.validate(xml, signed=True)`): 35 "ARCHIVO NO CUMPLE ESTRUCTURA XML", the
  first schema error in informacionAdicional;
- a clave de acceso that is malformed, has a wrong módulo 11 digit, is of ambiente 2, or
  disagrees with the XML's fecha de emisión, codDoc, RUC, ambiente, estab, ptoEmi or
  secuencial: 35 too, saying which (SRI reports these as structure errors of the document);
- a clave it already has (received and authorised, or being received by another request at
  this moment): 43 "CLAVE ACCESO REGISTRADA" (70 "CLAVE DE ACCESO EN PROCESAMIENTO" while the
  other request is still at it); a clave whose last decision was NO AUTORIZADO may be sent
  again (corrected), as at SRI;
- a different clave for an estab-ptoEmi-secuencial of the same RUC and codDoc already
  authorised: 45 "SECUENCIAL REGISTRADO".
Anything else is RECIBIDA.

Authorisation (`autorizacionComprobante`), decided when the document is received, so asking is
a pure read: an unknown clave answers the empty list (AuthorisationState.NOT_FOUND); a received
one AUTORIZADO (numeroAutorizacion = the clave, fechaAutorizacion = when it was received, in
Ecuador's time (-05:00), ambiente PRUEBAS, comprobante = the signed XML, and message 60 "ESTE
PROCESO FUE REALIZADO EN EL AMBIENTE DE PRUEBAS"), unless:
- the XAdES signature does not verify against the certificate it carries (signxml's
  XAdESVerifier with that certificate explicitly: the test authority of webapp.sri.testp12 is
  trusted by nobody, so no chain is required), or that certificate is not a signing one, or it
  does not name the emisor's RUC (webapp.sri.p12.certificate_ruc): NO AUTORIZADO, 39 "FIRMA
  INVALIDA". SRI too receives a document whose signature is wrong and refuses it at
  authorisation (the real client's tests model SRI's answers that way);
- the figures do not add up (each line's and the invoice's totals recomputed with
  webapp.sri.factura.totals): NO AUTORIZADO, 52 "ERROR EN DIFERENCIAS";
- the buyer's identification fails SRI's checks (webapp.sri.catalogs.validate_identification:
  a RUC or cédula with a wrong check digit, …) or a "consumidor final" invoice exceeds SRI's
  limit (catalogs.check_consumidor_final): NO AUTORIZADO, 62 "IDENTIFICACION INCORRECTA" with
  the reason. (SRI's catalogue lists 62 as a warning; the sandbox refuses, as the Reglamento
  forbids such an invoice and the lead's road must be able to show a refusal.)
Nothing is ever refused at random, and the answer for a document never changes.

State lives in files under `directory`, so several processes (the app's workers, `flask`
commands, tests) share one sandbox: `comprobantes/<clave>.json` per clave (every attempt at it:
when, the XML, the decision), `secuenciales/<ruc>-<codDoc>-<estab>-<ptoEmi>-<secuencial>` naming
the clave authorised under that number. Files are written to a temporary name and renamed over
(os.replace), and every registration runs under an exclusive lock on `sandbox-sri.lock` (flock),
so two concurrent sends of one clave give one RECIBIDA and one DEVUELTA 43. A clave whose first
send is still being checked is marked by `comprobantes/<clave>.pending`, created with O_EXCL: a
concurrent send of it meets that mark and answers 70.
"""

from __future__ import annotations

import base64
import contextlib
import errno
import fcntl
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import ExtensionOID
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.xades import XAdESSignatureConfiguration, XAdESVerifier

from webapp.sri import access_key as keys
from webapp.sri import catalogs
from webapp.sri.client import (
    ACCESS_KEY,
    AUTHORISATION_NS,
    ECUADOR,
    RECEPTION_NS,
    SOAP_ENV,
    Authorisation,
    AuthorisationState,
    Environment,
    Message,
    Reception,
    ReceptionState,
    access_key_of,
)
from webapp.sri.factura import FacturaError, totals
from webapp.sri.p12 import certificate_ruc
from webapp.sri.reading import ReadingError, factura_from_xml
from webapp.sri.xsd import DS, InvalidComprobante, parse, validate

MAX_COMPROBANTE_BYTES = 320 * 1024  # SRI: 320 KB for one comprobante
PENDING_STALE_SECONDS = 120  # a mark older than this was left by a process that died
PRUEBAS = "PRUEBAS"

ERROR, WARNING, INFO = "ERROR", "ADVERTENCIA", "INFORMATIVO"

# SRI's messages (identificador, mensaje).
TAMANO = ("26", "TAMAÑO MÁXIMO SUPERADO")
ESTRUCTURA = ("35", "ARCHIVO NO CUMPLE ESTRUCTURA XML")
FIRMA = ("39", "FIRMA INVALIDA")
REGISTRADA = ("43", "CLAVE ACCESO REGISTRADA")
SECUENCIAL = ("45", "SECUENCIAL REGISTRADO")
DIFERENCIAS = ("52", "ERROR EN DIFERENCIAS")
AMBIENTE_PRUEBAS = ("60", "ESTE PROCESO FUE REALIZADO EN EL AMBIENTE DE PRUEBAS")
IDENTIFICACION = ("62", "IDENTIFICACION INCORRECTA")
PROCESAMIENTO = ("70", "CLAVE DE ACCESO EN PROCESAMIENTO")

_SIGNATURE_CONFIG = XAdESSignatureConfiguration(
    expect_references=3,
    signature_methods=frozenset({SignatureMethod.RSA_SHA1, SignatureMethod.RSA_SHA256}),
    digest_algorithms=frozenset({DigestAlgorithm.SHA1, DigestAlgorithm.SHA256}),
    default_reference_c14n_method=CanonicalizationMethod.CANONICAL_XML_1_0,
)


def _message(pair: tuple[str, str], info: str = "", kind: str = ERROR) -> Message:
    return Message(pair[0], pair[1], " ".join(info.split())[:300], kind)


class _Returned(Exception):
    """Reception refuses the document (DEVUELTA) with `message`."""

    def __init__(self, message: Message, state: ReceptionState = ReceptionState.RETURNED):
        super().__init__(str(message))
        self.message = message
        self.state = state


@dataclass(frozen=True)
class _Document:
    """What reception read from a well-formed, schema-valid factura."""

    xml: bytes
    root: etree._Element
    access_key: str
    parts: keys.AccessKey


class SandboxSri:
    """An offline SRI (test environment) whose state lives in `directory` (module docstring)."""

    environment = Environment.TEST

    def __init__(self, directory: Path | str, *, now: Callable[[], datetime] | None = None):
        self.directory = Path(directory)
        self._now = now or (lambda: datetime.now(ECUADOR))
        (self.directory / "comprobantes").mkdir(parents=True, exist_ok=True)
        (self.directory / "secuenciales").mkdir(parents=True, exist_ok=True)

    # --- the client's interface ---------------------------------------------------------------

    def send(self, signed_xml: bytes) -> Reception:
        """`validarComprobante`, as SriClient.send: ValueError, like the client, for a document
        without a 49-digit claveAcceso or of ambiente 2 (the client never sends those)."""
        key = access_key_of(signed_xml)
        self._check_environment(key)
        return self.receive(signed_xml)

    def authorise(self, access_key: str) -> Authorisation:
        """`autorizacionComprobante`, as SriClient.authorise: SRI's decision on the clave (the
        preferred one when there were several attempts, as the client chooses)."""
        if not ACCESS_KEY.fullmatch(access_key or ""):
            raise ValueError("a clave de acceso has 49 digits")
        self._check_environment(access_key)
        return preferred(access_key, self.authorisations(access_key))

    # --- SRI's side ---------------------------------------------------------------------------

    def receive(self, xml: bytes) -> Reception:
        """What SRI's reception answers for `xml`, whatever it is (never raises for bad input)."""
        key = _loose_access_key(xml)
        try:
            document = self._check(xml, key)
        except _Returned as returned:
            return Reception(returned.state, key, (returned.message,))
        try:
            with self._pending(document.access_key):
                decision = self._decide(document)
                self._register(document, decision)
        except _Returned as returned:
            return Reception(returned.state, document.access_key, (returned.message,))
        return Reception(ReceptionState.RECEIVED, document.access_key)

    def authorisations(self, access_key: str) -> list[Authorisation]:
        """Every decision on `access_key`, oldest first (what SRI lists); [] if unknown."""
        if not ACCESS_KEY.fullmatch(access_key or ""):
            return []
        record = self._read(access_key)
        if record is None:
            return []
        return [_authorisation(access_key, attempt) for attempt in record["attempts"]]

    # --- reception's checks -------------------------------------------------------------------

    def _check_environment(self, access_key: str) -> None:
        if access_key[23] != self.environment.value:
            raise ValueError(
                f"the clave de acceso is of ambiente {access_key[23]}, "
                f"the sandbox SRI is of ambiente {self.environment.value}"
            )

    def _check(self, xml: bytes, key: str) -> _Document:
        if not isinstance(xml, bytes | bytearray) or not xml.strip():
            raise _Returned(_message(ESTRUCTURA, "El comprobante está vacío"))
        xml = bytes(xml)
        if len(xml) > MAX_COMPROBANTE_BYTES:
            raise _Returned(
                _message(TAMANO, f"El comprobante supera {MAX_COMPROBANTE_BYTES // 1024} KB")
            )
        try:
            root = parse(xml)
            validate(root, signed=True)
        except InvalidComprobante as exc:
            raise _Returned(
                _message(
                    ESTRUCTURA,
                    "Se encontró el siguiente error en la estructura del comprobante: "
                    + (exc.errors[0] if exc.errors else str(exc)),
                )
            ) from None
        try:
            parts = keys.parse(key)
        except keys.InvalidAccessKey as exc:
            raise _Returned(_message(ESTRUCTURA, f"Clave de acceso: {exc}")) from None
        if parts.ambiente != self.environment.value:
            raise _Returned(
                _message(
                    ESTRUCTURA,
                    f"El ambiente del comprobante ({parts.ambiente}) no corresponde al ambiente "
                    f"de pruebas ({self.environment.value})",
                )
            )
        wrong = _disagreements(root, parts)
        if wrong:
            raise _Returned(
                _message(
                    ESTRUCTURA,
                    "La clave de acceso no corresponde al comprobante: " + ", ".join(wrong),
                )
            )
        return _Document(xml, root, key, parts)

    def _decide(self, document: _Document) -> tuple[str, list[Message]]:
        """The authorisation's estado and messages (module docstring)."""
        refusal = (
            _signature_problem(document)
            or _figures_problem(document)
            or _buyer_problem(document.root)
        )
        if refusal is not None:
            return AuthorisationState.NOT_AUTHORISED.value, [refusal]
        return AuthorisationState.AUTHORISED.value, [_message(AMBIENTE_PRUEBAS, kind=INFO)]

    # --- storage ------------------------------------------------------------------------------

    def _record_path(self, access_key: str) -> Path:
        return self.directory / "comprobantes" / f"{access_key}.json"

    def _read(self, access_key: str) -> dict | None:
        try:
            return json.loads(self._record_path(access_key).read_text("utf-8"))
        except FileNotFoundError:
            return None

    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        fd = os.open(self.directory / "sandbox-sri.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # releases the lock

    @contextlib.contextmanager
    def _pending(self, access_key: str) -> Iterator[None]:
        """Mark `access_key` as being received (O_EXCL): a concurrent send of it gets 70."""
        mark = self.directory / "comprobantes" / f"{access_key}.pending"
        try:
            fd = os.open(mark, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            if exc.errno != errno.EEXIST:
                raise
            if not _stale(mark):
                raise _Returned(
                    _message(PROCESAMIENTO, "El comprobante está siendo procesado"),
                    ReceptionState.ALREADY_RECEIVED,
                ) from None
            with contextlib.suppress(FileNotFoundError):
                mark.unlink()
            fd = os.open(mark, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
        try:
            yield
        finally:
            with contextlib.suppress(FileNotFoundError):
                mark.unlink()

    def _register(self, document: _Document, decision: tuple[str, list[Message]]) -> None:
        """Store the attempt under the lock, or _Returned(43 | 45)."""
        estado, messages = decision
        key, parts = document.access_key, document.parts
        number = (
            self.directory
            / "secuenciales"
            / (f"{parts.ruc}-{parts.cod_doc}-{parts.estab}-{parts.pto_emi}-{parts.secuencial}")
        )
        with self._lock():
            record = self._read(key) or {"access_key": key, "attempts": []}
            if any(a["estado"] != AuthorisationState.NOT_AUTHORISED for a in record["attempts"]):
                raise _Returned(
                    _message(REGISTRADA, "La clave de acceso ya fue registrada"),
                    ReceptionState.ALREADY_RECEIVED,
                )
            try:
                holder = number.read_text("ascii").strip()
            except FileNotFoundError:
                holder = ""
            if holder and holder != key:
                raise _Returned(
                    _message(
                        SECUENCIAL,
                        f"El secuencial {parts.numero} ya fue autorizado con la clave {holder}",
                    )
                )
            received_at = self._now().astimezone(ECUADOR).replace(microsecond=0)
            record["attempts"].append(
                {
                    "received_at": received_at.isoformat(),
                    "estado": estado,
                    "xml": document.xml.decode("utf-8"),
                    "messages": [
                        [m.identifier, m.message, m.additional_information, m.kind]
                        for m in messages
                    ],
                }
            )
            _write(self._record_path(key), json.dumps(record, ensure_ascii=False).encode())
            if estado == AuthorisationState.AUTHORISED:
                _write(number, key.encode("ascii"))


# --- helpers ------------------------------------------------------------------------------------


def _write(path: Path, data: bytes) -> None:
    """Write `path` atomically: a temporary file in its directory, fsync'd, renamed over."""
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def _stale(mark: Path) -> bool:
    try:
        return time.time() - mark.stat().st_mtime > PENDING_STALE_SECONDS
    except FileNotFoundError:
        return True


def _loose_access_key(xml: object) -> str:
    """The document's claveAcceso if one can be read (even a wrong one), else ""."""
    try:
        root = parse(bytes(xml))  # type: ignore[arg-type]
    except (InvalidComprobante, TypeError, ValueError):
        return ""
    key = root.findtext("infoTributaria/claveAcceso")
    return (key or "").strip()[:49]


def _disagreements(root: etree._Element, parts: keys.AccessKey) -> list[str]:
    info = root.find("infoTributaria")
    fecha = root.findtext("infoFactura/fechaEmision") or ""
    expected = {
        "fecha de emisión": (f"{parts.fecha:%d/%m/%Y}", fecha.strip()),
        "tipo de comprobante": (parts.cod_doc, info.findtext("codDoc")),
        "RUC": (parts.ruc, info.findtext("ruc")),
        "ambiente": (parts.ambiente, info.findtext("ambiente")),
        "establecimiento": (parts.estab, info.findtext("estab")),
        "punto de emisión": (parts.pto_emi, info.findtext("ptoEmi")),
        "secuencial": (parts.secuencial, info.findtext("secuencial")),
        "tipo de emisión": (parts.tipo_emision, info.findtext("tipoEmision")),
    }
    return [name for name, (want, have) in expected.items() if want != (have or "").strip()]


def _signature_problem(document: _Document) -> Message | None:
    root = document.root
    signature = root.find(f"{{{DS}}}Signature")
    cert_text = (
        signature.findtext(f"{{{DS}}}KeyInfo/{{{DS}}}X509Data/{{{DS}}}X509Certificate")
        if signature is not None
        else None
    )
    if not cert_text:
        return _message(FIRMA, "La firma no incluye el certificado del firmante")
    try:
        cert = x509.load_der_x509_certificate(base64.b64decode("".join(cert_text.split())))
    except ValueError:
        return _message(FIRMA, "El certificado de la firma no es legible")
    uris = [r.get("URI") for r in signature.iterfind(f"{{{DS}}}SignedInfo/{{{DS}}}Reference")]
    if f"#{root.get('id')}" not in uris or root.get("id") != "comprobante":
        return _message(FIRMA, "La firma no cubre el comprobante")
    try:
        XAdESVerifier().verify(document.xml, x509_cert=cert, expect_config=_SIGNATURE_CONFIG)
    except Exception:  # noqa: BLE001 — signxml raises many kinds; all mean "does not verify"
        return _message(FIRMA, "Firma inválida (firma y/o certificados alterados)")
    try:
        usage = cert.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE).value
        signs = usage.digital_signature
    except x509.ExtensionNotFound:
        signs = True
    if not signs:
        return _message(FIRMA, "El certificado utilizado, no es del tipo firma digital")
    ruc = root.findtext("infoTributaria/ruc")
    if certificate_ruc(cert) != ruc:
        return _message(FIRMA, f"El certificado de la firma no pertenece al RUC {ruc}")
    return None


def _figures_problem(document: _Document) -> Message | None:
    """Recompute the totals from the lines (webapp.sri.reading, webapp.sri.factura.totals)."""
    root = document.root
    try:
        factura, _ = factura_from_xml(document.xml)
        figures = totals(factura.lineas)
        stated = {
            "totalSinImpuestos": Decimal(root.findtext("infoFactura/totalSinImpuestos")),
            "importeTotal": Decimal(root.findtext("infoFactura/importeTotal")),
        }
    except (ReadingError, FacturaError, InvalidOperation, TypeError, ValueError) as exc:
        return _message(DIFERENCIAS, f"No se pudieron verificar los valores: {exc}")
    propina = Decimal(root.findtext("infoFactura/propina") or "0")
    expected = {
        "totalSinImpuestos": figures.total_sin_impuestos,
        "importeTotal": figures.importe_total + propina,
    }
    for name, value in expected.items():
        if stated[name] != value:
            return _message(
                DIFERENCIAS, f"{name}: el comprobante dice {stated[name]}, se calcula {value}"
            )
    for line, detalle in zip(figures.lineas, root.iterfind("detalles/detalle"), strict=False):
        if Decimal(detalle.findtext("precioTotalSinImpuesto") or "NaN") != line.subtotal:
            return _message(
                DIFERENCIAS,
                f"precioTotalSinImpuesto de {line.linea.codigo_principal or 'una línea'}: "
                f"se calcula {line.subtotal}",
            )
    return None


def _buyer_problem(root: etree._Element) -> Message | None:
    tipo = (root.findtext("infoFactura/tipoIdentificacionComprador") or "").strip()
    numero = (root.findtext("infoFactura/identificacionComprador") or "").strip()
    try:
        total = Decimal(root.findtext("infoFactura/importeTotal") or "0")
        catalogs.validate_identification(tipo, numero)
        catalogs.check_consumidor_final(tipo, total)
    except catalogs.InvalidIdentification as exc:
        return _message(IDENTIFICACION, str(exc))
    except InvalidOperation:
        return _message(IDENTIFICACION, "Importe total ilegible")
    return None


def _authorisation(access_key: str, attempt: dict) -> Authorisation:
    state = AuthorisationState(attempt["estado"])
    return Authorisation(
        access_key=access_key,
        state=state,
        number=access_key if state is AuthorisationState.AUTHORISED else None,
        authorised_at=datetime.fromisoformat(attempt["received_at"]),
        environment=PRUEBAS,
        comprobante=attempt["xml"].strip().encode("utf-8"),
        messages=tuple(Message(*m) for m in attempt["messages"]),
    )


def preferred(access_key: str, found: Sequence[Authorisation]) -> Authorisation:
    """The decision the client reads from a list (AUTORIZADO, then EN PROCESO, then the latest
    NO AUTORIZADO); NOT_FOUND for none."""
    for state in (
        AuthorisationState.AUTHORISED,
        AuthorisationState.IN_PROCESS,
        AuthorisationState.NOT_AUTHORISED,
    ):
        candidates = [a for a in found if a.state is state]
        if candidates:
            return candidates[-1]
    return Authorisation(access_key, AuthorisationState.NOT_FOUND)


# --- SRI's SOAP answers -------------------------------------------------------------------------


def _envelope() -> tuple[etree._Element, etree._Element]:
    envelope = etree.Element(f"{{{SOAP_ENV}}}Envelope", nsmap={"soap": SOAP_ENV})
    return envelope, etree.SubElement(envelope, f"{{{SOAP_ENV}}}Body")


def _sub(parent: etree._Element, tag: str, text: str | None = None) -> etree._Element:
    element = etree.SubElement(parent, tag)
    if text is not None:
        element.text = text
    return element


def _mensajes(parent: etree._Element, messages: Sequence[Message]) -> None:
    mensajes = _sub(parent, "mensajes")
    for m in messages:
        mensaje = _sub(mensajes, "mensaje")
        _sub(mensaje, "identificador", m.identifier)
        _sub(mensaje, "mensaje", m.message)
        if m.additional_information:
            _sub(mensaje, "informacionAdicional", m.additional_information)
        _sub(mensaje, "tipo", m.kind)


def _serialise(envelope: etree._Element) -> bytes:
    return etree.tostring(envelope, xml_declaration=True, encoding="UTF-8")


def reception_answer(reception: Reception) -> bytes:
    """`validarComprobanteResponse` as SRI writes it (ALREADY_RECEIVED is a DEVUELTA)."""
    envelope, body = _envelope()
    response = etree.SubElement(
        body, f"{{{RECEPTION_NS}}}validarComprobanteResponse", nsmap={"ns2": RECEPTION_NS}
    )
    answer = _sub(response, "RespuestaRecepcionComprobante")
    received = reception.state is ReceptionState.RECEIVED
    _sub(answer, "estado", "RECIBIDA" if received else "DEVUELTA")
    comprobantes = _sub(answer, "comprobantes")
    if reception.messages:
        comprobante = _sub(comprobantes, "comprobante")
        _sub(comprobante, "claveAcceso", reception.access_key)
        _mensajes(comprobante, reception.messages)
    return _serialise(envelope)


def authorisation_answer(
    authorisation: Authorisation | Sequence[Authorisation], access_key: str | None = None
) -> bytes:
    """`autorizacionComprobanteResponse` as SRI writes it: one Authorisation (NOT_FOUND gives
    the empty list) or several (every attempt at the clave, as SRI lists them)."""
    listed = [authorisation] if isinstance(authorisation, Authorisation) else list(authorisation)
    if access_key is None:
        access_key = listed[0].access_key if listed else ""
    listed = [a for a in listed if a.state is not AuthorisationState.NOT_FOUND]
    envelope, body = _envelope()
    response = etree.SubElement(
        body,
        f"{{{AUTHORISATION_NS}}}autorizacionComprobanteResponse",
        nsmap={"ns2": AUTHORISATION_NS},
    )
    answer = _sub(response, "RespuestaAutorizacionComprobante")
    _sub(answer, "claveAccesoConsultada", access_key)
    _sub(answer, "numeroComprobantes", str(len(listed)))
    autorizaciones = _sub(answer, "autorizaciones")
    for a in listed:
        element = _sub(autorizaciones, "autorizacion")
        _sub(element, "estado", a.state.value)
        if a.number:
            _sub(element, "numeroAutorizacion", a.number)
        if a.authorised_at is not None:
            _sub(element, "fechaAutorizacion", a.authorised_at.isoformat())
        _sub(element, "ambiente", a.environment or PRUEBAS)
        if a.comprobante is not None:
            text = a.comprobante.decode("utf-8")
            comprobante = _sub(element, "comprobante")
            # SRI writes the comprobante in CDATA; text that cannot be in one goes escaped.
            comprobante.text = etree.CDATA(text) if "]]>" not in text else text
        _mensajes(element, a.messages)
    return _serialise(envelope)


__all__ = [
    "MAX_COMPROBANTE_BYTES",
    "SandboxSri",
    "authorisation_answer",
    "preferred",
    "reception_answer",
]
