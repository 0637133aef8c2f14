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
from datetime import UTC, datetime, timedelta
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
from webapp.cfdi.pac import Pac, PacError, Stamped
from webapp.cfdi.xsd import CFDI_NS, InvalidCfdi, parse, validate

RFC_PROV_CERTIF = "SPR190613I52"
AUTHORITY = "AUTOFACTURA PAC DE PRUEBAS - SIN VALIDEZ FISCAL"
NUMBER_PREFIX = "99990"  # SAT's PAC certificates are 00001… (production) or 30001… (tests)
MAX_AGE = timedelta(hours=72)
MAX_AHEAD = timedelta(0)  # a CFDI cannot be issued after it is stamped
CERT_FILE = "sandbox-pac.cer"
KEY_FILE = "sandbox-pac.key"
DB_FILE = "sandbox-pac.sqlite3"
LOCK_FILE = "sandbox-pac.lock"

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
