"""The sandbox PAC: stamps like a real provider, with a test authority of this installation.

It checks what a PAC checks (SAT's XSD, the Sello against the certificate in the CFDI, that the
certificate is a CSD of the Emisor valid at the Fecha, a Fecha within the last 72 hours), then
adds a TimbreFiscalDigital 1.1 sealed with its own RSA-2048 key. Its certificate is generated
once per installation in `directory` (sandbox-pac.cer, DER, served at /sandbox/pac.cer, and
sandbox-pac.key, unencrypted PKCS#8 DER readable by the owner only) and labelled as a test
authority: no SAT service would accept its stamps, as none must.

Every stamp is kept in `directory`/sandbox-pac.sqlite3, keyed by the SHA-256 of the CFDI's
cadena original (its fiscal content and certificate number), so a document is never stamped
twice: stamping it again, or `recover`, returns the first stamp.

Cancellation follows SAT's rules for who must accept it. It is immediate (no acceptance by
the receptor) when the total is at most 1,000 MXN, the receptor is XAXX010101000 (público en
general) or XEXX010101000 (extranjero), the CFDI is a factura global (InformacionGlobal) or
of type egreso, traslado or nómina; otherwise it is "pending" (en proceso) until the
receptor answers: `receptor_answers(uuid, accept)` is that answer, given by hand (tests, or
`flask` shell in a demo), and after three days without an answer SAT cancels it (plazo
vencido), which `cancel_status` reports. Motive 01 must name the UUID of a CFDI this sandbox
stamped for the same emisor; 02, 03 and 04 must not name one. SAT's "24 hours after issuing"
exemption is not simulated (every fresh invoice would skip acceptance). The requests live
in the same SQLite file, table `cancellation`.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import os
import secrets
import sqlite3
import threading
import uuid as uuidlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from satcfdi.create.cfd.tfd11 import TimbreFiscalDigital
from satcfdi.models import Certificate, Signer
from satcfdi.models.certificate import CertificateType

from webapp.cfdi.cadena import cadena_original, find_tfd
from webapp.cfdi.catalogs import MEXICO_CITY, local_zone
from webapp.cfdi.certificates import NAME_OID, key_der, sat_style_certificate
from webapp.cfdi.pac import CANCEL_MOTIVES, CancelResult, Pac, PacError, Stamped
from webapp.cfdi.xsd import CFDI_NS, PARSER, InvalidCfdi, parse, validate

RFC_PROV_CERTIF = "SPR190613I52"
AUTHORITY = "AUTOFACTURA PAC DE PRUEBAS - SIN VALIDEZ FISCAL"
NUMBER_PREFIX = "99990"  # SAT's PAC certificates are 00001… (production) or 30001… (tests)
MAX_AGE = timedelta(hours=72)
MAX_AHEAD = timedelta(0)  # a CFDI cannot be issued after it is stamped
CERT_FILE = "sandbox-pac.cer"
KEY_FILE = "sandbox-pac.key"
DB_FILE = "sandbox-pac.sqlite3"
LOCK_FILE = "sandbox-pac.lock"
# Cancellation without the receptor's acceptance (SAT's rules, as the sandbox applies them).
NO_ACCEPTANCE_MAX_TOTAL = Decimal("1000")
NO_ACCEPTANCE_RFCS = frozenset({"XAXX010101000", "XEXX010101000"})
NO_ACCEPTANCE_TYPES = frozenset({"E", "T", "N"})
ANSWER_DAYS = timedelta(days=3)  # without the receptor's answer, SAT cancels (plazo vencido)

_signers: dict[tuple[str, int, int], Signer] = {}
_signers_lock = threading.Lock()


class SandboxPac(Pac):
    """A PAC for development, demos and tests; everything it needs lives in `directory`."""

    name = "sandbox"

    def __init__(self, directory: Path | str, *, now: Callable[[], datetime] | None = None) -> None:
        self.directory = Path(directory)
        self._now = now or (lambda: datetime.now(UTC))

    # --- the provider's certificate -------------------------------------------------------

    def signer(self) -> Signer:
        """The sandbox authority's Signer, created on first use, then cached per process."""
        cer, key = self.directory / CERT_FILE, self.directory / KEY_FILE
        if not cer.exists() or not key.exists():
            self._create_certificate()
        stat = cer.stat()
        cache_key = (str(cer.resolve()), stat.st_mtime_ns, stat.st_size)
        with _signers_lock:
            if (signer := _signers.get(cache_key)) is None:
                signer = Signer.load(certificate=cer.read_bytes(), key=key.read_bytes())
                _signers[cache_key] = signer
        return signer

    def certificate_der(self) -> bytes:
        """The sandbox certificate (DER), which verifies every SelloSAT it wrote."""
        return self.signer().certificate_bytes()

    def _create_certificate(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        with self._locked():
            cer, key = self.directory / CERT_FILE, self.directory / KEY_FILE
            if cer.exists() and key.exists():  # another process made it meanwhile
                return
            cer_der, key_der = make_certificate(self._now())
            _write(key, key_der, 0o600)
            _write(cer, cer_der, 0o644)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with open(self.directory / LOCK_FILE, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # --- stamping ---------------------------------------------------------------------------

    def stamp(self, xml: bytes) -> Stamped:
        """Validate `xml` and add a TimbreFiscalDigital; the first stamp again if already done."""
        root = self._parse(xml)
        if find_tfd(root) is not None:
            raise PacError("307", "El CFDI contiene un timbre previo")
        try:
            validate(root)
        except InvalidCfdi as exc:
            raise PacError("301", "XML mal formado: " + "; ".join(exc.errors[:5])) from exc
        cadena = cadena_original(root)
        certificate = self._check_seal(root, cadena)
        digest = hashlib.sha256(cadena.encode()).hexdigest()
        signer = self.signer()
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")  # one stamper at a time per installation
            if (found := _lookup(db, digest)) is not None:
                return found
            self._check_dates(root, certificate)
            stamped = self._stamp(root, signer)
            db.execute(
                "INSERT INTO stamp (digest, uuid, fecha_timbrado, no_certificado_sat, xml,"
                " created_at) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    digest,
                    stamped.uuid,
                    stamped.fecha_timbrado.isoformat(),
                    stamped.no_certificado_sat,
                    stamped.xml,
                    self._now().isoformat(),
                ),
            )
        return stamped

    def recover(self, xml: bytes) -> Stamped | None:
        """The stamp of `xml` if this installation stamped it; None otherwise."""
        root = self._parse(xml)
        digest = hashlib.sha256(cadena_original(root).encode()).hexdigest()
        with self._db() as db:
            return _lookup(db, digest)

    def _parse(self, xml: bytes) -> etree._Element:
        try:
            root = parse(xml)
        except InvalidCfdi as exc:
            raise PacError("301", exc.errors[0]) from exc
        if root.tag != f"{{{CFDI_NS}}}Comprobante" or root.get("Version") != "4.0":
            raise PacError("301", "El documento no es un CFDI 4.0")
        return root

    def _check_seal(self, root: etree._Element, cadena: str) -> Certificate:
        try:
            certificate = Certificate.load_certificate(base64.b64decode(root.get("Certificado")))
            seal = base64.b64decode(root.get("Sello"), validate=True)
        except Exception as exc:  # any decoding failure means a broken seal
            raise PacError("302", "Sello o certificado mal formado") from exc
        if certificate.certificate_number != root.get("NoCertificado"):
            raise PacError("302", "NoCertificado no corresponde al certificado")
        if not certificate.verify_sha256(cadena.encode(), seal):
            raise PacError("302", "Sello mal formado o inválido")
        emisor = root.find(f"{{{CFDI_NS}}}Emisor")
        if emisor is None or str(certificate.rfc) != emisor.get("Rfc"):
            raise PacError("303", "Sello no corresponde a emisor")
        if certificate.type is not CertificateType.CSD:
            raise PacError("306", "El certificado no es de tipo CSD")
        return certificate

    def _check_dates(self, root: etree._Element, certificate: Certificate) -> None:
        zone = local_zone(root.get("LugarExpedicion", ""))
        fecha = datetime.fromisoformat(root.get("Fecha", "")).replace(tzinfo=zone)
        now = self._now()
        if fecha < now - MAX_AGE:
            raise PacError("401", "Fecha y hora de generación fuera de rango (más de 72 horas)")
        if fecha > now + MAX_AHEAD:
            raise PacError("401", "Fecha y hora de generación posterior a la de certificación")
        cert = certificate.certificate.to_cryptography()
        if not cert.not_valid_before_utc <= fecha <= cert.not_valid_after_utc:
            raise PacError("305", "La fecha de emisión no está dentro de la vigencia del CSD")

    def _stamp(self, root: etree._Element, signer: Signer) -> Stamped:
        fecha = self._now().astimezone(MEXICO_CITY).replace(microsecond=0)
        tfd = TimbreFiscalDigital(
            proveedor=signer,
            uuid=str(uuidlib.uuid4()).upper(),
            fecha_timbrado=fecha.replace(tzinfo=None),
            sello_cfd=root.get("Sello"),
        )
        complemento = root.find(f"{{{CFDI_NS}}}Complemento")
        if complemento is None:
            complemento = etree.Element(f"{{{CFDI_NS}}}Complemento")
            addenda = root.find(f"{{{CFDI_NS}}}Addenda")
            if addenda is None:
                root.append(complemento)
            else:
                addenda.addprevious(complemento)
        complemento.append(tfd.to_xml(include_schema_location=True))
        xml = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
        return Stamped(tfd["UUID"], fecha, xml, tfd["NoCertificadoSAT"])

    # --- cancellation -----------------------------------------------------------------------

    def cancel(self, xml: bytes, motive: str, replacement_uuid: str | None = None) -> CancelResult:
        """Request the cancellation of a CFDI this sandbox stamped (see the module's rules)."""
        root = self._stamped_root(xml)
        uuid = find_tfd(root).get("UUID", "").upper()
        emisor = _rfc(root, "Emisor")
        if motive not in CANCEL_MOTIVES:
            raise PacError("CA-motivo", f"Motivo de cancelación inválido: {motive!r}")
        replacement = (replacement_uuid or "").strip().upper() or None
        if motive != "01" and replacement:
            raise PacError("CA-sustitucion", "Sólo el motivo 01 lleva folio de sustitución")
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            if _stamp_xml(db, uuid) is None:
                raise PacError("205", "UUID no existe: este PAC de pruebas no lo timbró")
            found = _cancellation(db, uuid)
            if found is not None and found.status in ("cancelled", "pending"):
                message = "Previamente cancelado" if found.status == "cancelled" else "En proceso"
                return CancelResult(found.status, found.acuse, message)
            if motive == "01":
                self._check_replacement(db, uuid, emisor, replacement)
            if self._needs_acceptance(root):
                status, message = "pending", "En proceso: el receptor debe aceptar la cancelación"
            else:
                status, message = "cancelled", "Cancelado sin aceptación del receptor"
            now = self._now()
            acuse = _acuse(uuid, emisor, motive, replacement, status, now)
            db.execute(
                "INSERT OR REPLACE INTO cancellation (uuid, motive, replacement_uuid, status,"
                " requested_at, answered_at, acuse) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    uuid,
                    motive,
                    replacement,
                    status,
                    now.isoformat(),
                    now.isoformat() if status == "cancelled" else None,
                    acuse,
                ),
            )
        return CancelResult(status, acuse, message)

    def cancel_status(self, xml: bytes) -> CancelResult:
        """Where the cancellation of `xml` stands; a pending one past three days is
        cancelled (plazo vencido)."""
        root = self._stamped_root(xml)
        uuid = find_tfd(root).get("UUID", "").upper()
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            found = _cancellation(db, uuid)
            if found is None:
                raise PacError("sin-solicitud", "No hay solicitud de cancelación de ese UUID")
            if found.status == "pending" and self._now() - found.requested_at > ANSWER_DAYS:
                self._answer(db, uuid, "cancelled")
                return CancelResult("cancelled", found.acuse, "Cancelado por plazo vencido")
            messages = {
                "pending": "En proceso: el receptor no ha respondido",
                "cancelled": "Cancelado",
                "rejected": "El receptor rechazó la cancelación",
            }
            return CancelResult(found.status, found.acuse, messages[found.status])

    def receptor_answers(self, uuid: str, accept: bool) -> None:
        """The receptor's answer to a pending cancellation (buzón tributario), by hand:
        accepted → cancelled, otherwise rejected. ValueError when nothing is pending."""
        uuid = uuid.strip().upper()
        with self._db() as db:
            db.execute("BEGIN IMMEDIATE")
            found = _cancellation(db, uuid)
            if found is None or found.status != "pending":
                raise ValueError(f"no pending cancellation of {uuid}")
            self._answer(db, uuid, "cancelled" if accept else "rejected")

    def _answer(self, db: sqlite3.Connection, uuid: str, status: str) -> None:
        db.execute(
            "UPDATE cancellation SET status = ?, answered_at = ? WHERE uuid = ?",
            (status, self._now().isoformat(), uuid),
        )

    def _stamped_root(self, xml: bytes) -> etree._Element:
        try:
            root = etree.fromstring(xml, parser=PARSER)
        except (etree.XMLSyntaxError, ValueError, TypeError) as exc:
            raise PacError("301", "XML mal formado") from exc
        if root.tag != f"{{{CFDI_NS}}}Comprobante" or find_tfd(root) is None:
            raise PacError("205", "El documento no es un CFDI timbrado")
        return root

    def _check_replacement(
        self, db: sqlite3.Connection, uuid: str, emisor: str, replacement: str | None
    ) -> None:
        if not replacement:
            raise PacError("CA-sustitucion", "El motivo 01 requiere el folio de sustitución")
        if replacement == uuid:
            raise PacError("CA-sustitucion", "El folio de sustitución es el mismo CFDI")
        stamped = _stamp_xml(db, replacement)
        if stamped is None:
            raise PacError("CA-sustitucion", "El folio de sustitución no existe")
        other = etree.fromstring(stamped, parser=PARSER)
        if _rfc(other, "Emisor") != emisor:
            raise PacError("CA-sustitucion", "El folio de sustitución es de otro emisor")
        found = _cancellation(db, replacement)
        if found is not None and found.status == "cancelled":
            raise PacError("CA-sustitucion", "El folio de sustitución está cancelado")

    @staticmethod
    def _needs_acceptance(root: etree._Element) -> bool:
        try:
            total = Decimal(root.get("Total", ""))
        except InvalidOperation:
            total = Decimal(0)
        return not (
            total <= NO_ACCEPTANCE_MAX_TOTAL
            or _rfc(root, "Receptor") in NO_ACCEPTANCE_RFCS
            or root.find(f"{{{CFDI_NS}}}InformacionGlobal") is not None
            or root.get("TipoDeComprobante") in NO_ACCEPTANCE_TYPES
        )

    # --- the record of stamps ---------------------------------------------------------------

    @contextlib.contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        self.directory.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.directory / DB_FILE, timeout=30, isolation_level=None)
        try:
            # WAL: readers never wait for the stamper; NORMAL: one fsync per checkpoint, not
            # per stamp (a power cut may lose the last stamps of a sandbox, nothing else).
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute(
                "CREATE TABLE IF NOT EXISTS stamp (digest TEXT PRIMARY KEY, uuid TEXT UNIQUE"
                " NOT NULL, fecha_timbrado TEXT NOT NULL, no_certificado_sat TEXT NOT NULL,"
                " xml BLOB NOT NULL, created_at TEXT NOT NULL)"
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS cancellation (uuid TEXT PRIMARY KEY, motive TEXT"
                " NOT NULL, replacement_uuid TEXT, status TEXT NOT NULL, requested_at TEXT NOT"
                " NULL, answered_at TEXT, acuse BLOB NOT NULL)"
            )
            yield db
            if db.in_transaction:
                db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        finally:
            db.close()


def _lookup(db: sqlite3.Connection, digest: str) -> Stamped | None:
    row = db.execute(
        "SELECT uuid, fecha_timbrado, xml, no_certificado_sat FROM stamp WHERE digest = ?",
        (digest,),
    ).fetchone()
    if row is None:
        return None
    return Stamped(row[0], datetime.fromisoformat(row[1]), bytes(row[2]), row[3])


@dataclass(frozen=True)
class _Request:
    status: str
    requested_at: datetime
    acuse: bytes


def _cancellation(db: sqlite3.Connection, uuid: str) -> _Request | None:
    row = db.execute(
        "SELECT status, requested_at, acuse FROM cancellation WHERE uuid = ?", (uuid,)
    ).fetchone()
    if row is None:
        return None
    return _Request(row[0], datetime.fromisoformat(row[1]), bytes(row[2]))


def _stamp_xml(db: sqlite3.Connection, uuid: str) -> bytes | None:
    row = db.execute("SELECT xml FROM stamp WHERE uuid = ?", (uuid,)).fetchone()
    return bytes(row[0]) if row else None


def _rfc(root: etree._Element, party: str) -> str:
    node = root.find(f"{{{CFDI_NS}}}{party}")
    return (node.get("Rfc") or "") if node is not None else ""


def _acuse(uuid, emisor, motive, replacement, status, now: datetime) -> bytes:
    """The sandbox's acknowledgement, shaped like SAT's Acuse de cancelación (201: request
    received), and labelled as a test authority's."""
    acuse = etree.Element(
        "Acuse",
        Fecha=now.astimezone(MEXICO_CITY).replace(tzinfo=None, microsecond=0).isoformat(),
        RfcEmisor=emisor,
        Autoridad=AUTHORITY,
    )
    folio = etree.SubElement(acuse, "Folios")
    etree.SubElement(folio, "UUID").text = uuid
    etree.SubElement(folio, "EstatusUUID").text = "201"
    etree.SubElement(folio, "Motivo").text = motive
    if replacement:
        etree.SubElement(folio, "FolioSustitucion").text = replacement
    etree.SubElement(folio, "EstatusCancelacion").text = (
        "Cancelado sin aceptación" if status == "cancelled" else "En proceso"
    )
    return etree.tostring(acuse, xml_declaration=True, encoding="UTF-8")


def _write(path: Path, data: bytes, mode: int) -> None:
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


def make_certificate(now: datetime, years: int = 10) -> tuple[bytes, bytes]:
    """A sandbox PAC certificate (DER) and its key (unencrypted PKCS#8 DER), RSA-2048.

    The subject reads like a PAC's to satcfdi (OU "PAC" + RfcProvCertif); the 20-digit
    certificate number is the serial, as SAT does; the issuer says it is a test authority.
    """
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    number = NUMBER_PREFIX + f"{secrets.randbelow(10**15):015d}"
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, AUTHORITY),
            x509.NameAttribute(NAME_OID, AUTHORITY),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "AUTOFACTURA (PRUEBAS)"),
            x509.NameAttribute(NameOID.X500_UNIQUE_IDENTIFIER, RFC_PROV_CERTIF),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "PAC" + RFC_PROV_CERTIF),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "MX"),
        ]
    )
    start = (now - timedelta(days=1)).replace(microsecond=0)
    certificate = sat_style_certificate(
        key,
        subject=name,
        issuer=name,
        number=number,
        valid_from=start,
        valid_to=start + timedelta(days=365 * years),
    )
    return certificate, key_der(key)
