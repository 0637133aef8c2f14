"""An Ecuadorian issuer's signing certificate: a PKCS#12 (.p12) judged on upload.

    key = load_p12(data, password, ruc="1790012345001", now=datetime.now(UTC))
    signed = webapp.sri.signing.sign(xml, key)

`load_p12` opens the file and says, with the first problem found, why it cannot sign that
issuer's comprobantes (P12Error.code: see P12_PROBLEMS; the message is Spanish, for the person
who uploaded it). Storing it (encrypted, webapp/crypto.py) is the caller's business: keep the
uploaded bytes and the password, and load them again with `load_p12` to sign.

Where the RUC is. Ecuador's certification authorities write the holder's data in private
extensions of the certificate, one OID per datum under each authority's enterprise arc, as
UTF8String / PrintableString values: the RUC is `<arc>.3.11` (Banco Central del Ecuador
1.3.6.1.4.1.37947, Security Data 1.3.6.1.4.1.37746, ANF AC Ecuador 1.3.6.1.4.1.18332), the
holder's cédula `<arc>.3.1`. These are the OIDs FirmaEC (the state's signing software) and the
OCA l10n-ecuador add-ons read. A company's certificate carries the company's RUC in `.3.11`;
a natural person's may carry only the cédula, whose RUC is the cédula followed by "001". The
subject's serialNumber is not the RUC (Security Data and BCE put a certificate or document
number there), so it is not read.

Which certificate. BCE's .p12 files used to hold a signing and an encryption certificate; since
2020 SRI refuses comprobantes signed with one whose key usage is not digitalSignature ("FIRMA
INVALIDA: El certificado utilizado, no es del tipo firma digital"), so that is checked here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, pkcs12
from cryptography.x509.oid import ExtensionOID, NameOID

EXPIRY_WARNING_DAYS = 30
"""A certificate that expires within this many days deserves a warning."""

# The certification authorities' arcs whose `.3.11` (RUC) and `.3.1` (cédula) are read.
AUTHORITY_ARCS = {
    "1.3.6.1.4.1.37947": "Banco Central del Ecuador",
    "1.3.6.1.4.1.37746": "Security Data",
    "1.3.6.1.4.1.18332": "ANF AC Ecuador",
}
RUC_OIDS = tuple(x509.ObjectIdentifier(f"{arc}.3.11") for arc in AUTHORITY_ARCS)
CEDULA_OIDS = tuple(x509.ObjectIdentifier(f"{arc}.3.1") for arc in AUTHORITY_ARCS)
LEGAL_NAME_OIDS = tuple(x509.ObjectIdentifier(f"{arc}.3.10") for arc in AUTHORITY_ARCS)

P12_PROBLEMS = {
    "format": "no es un archivo PKCS#12 (.p12)",
    "password": "la contraseña no abre el archivo .p12",
    "no_key": "el archivo .p12 no contiene la clave privada",
    "no_certificate": "el archivo .p12 no contiene el certificado de la clave privada",
    "not_rsa": "la clave del certificado no es RSA",
    "not_signing": "el certificado no es de firma digital",
    "no_ruc": "el certificado no indica un RUC",
    "ruc": "el certificado pertenece a otro RUC",
    "not_yet_valid": "el certificado aún no es válido",
    "expired": "el certificado está vencido",
}
"""Problem code → what it means, in Spanish (P12Error's message says more)."""


class P12Error(ValueError):
    """The .p12 cannot sign the issuer's comprobantes; `code` is a key of P12_PROBLEMS.

    str(error) is a Spanish sentence for the uploader. `valid_from`/`valid_to` are set for
    "expired" and "not_yet_valid", `ruc` (the certificate's) for "ruc".
    """

    def __init__(
        self,
        message: str,
        code: str,
        *,
        valid_from: datetime | None = None,
        valid_to: datetime | None = None,
        ruc: str | None = None,
    ):
        super().__init__(message)
        self.code = code
        self.valid_from, self.valid_to, self.ruc = valid_from, valid_to, ruc


@dataclass(frozen=True)
class SigningKey:
    """An opened .p12: the private key, its certificate and the rest of the chain."""

    private_key: rsa.RSAPrivateKey = field(repr=False)
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...]
    ruc: str
    holder: str  # the razón social, or the subject's common name
    issuer: str  # the certification authority's common name
    valid_from: datetime
    valid_to: datetime

    @property
    def serial_number(self) -> int:
        return self.certificate.serial_number

    def days_left(self, now: datetime) -> int:
        return (self.valid_to - now) // timedelta(days=1)

    def expires_soon(self, now: datetime, days: int = EXPIRY_WARNING_DAYS) -> bool:
        """Valid now but not `days` days from now."""
        return now < self.valid_to <= now + timedelta(days=days)


_PKCS7_DATA = bytes.fromhex("06092a864886f70d010701")  # OID 1.2.840.113549.1.7.1 (data)
_PKCS7_SIGNED = bytes.fromhex("06092a864886f70d010702")  # OID 1.2.840.113549.1.7.2


def _looks_like_pkcs12(data: bytes) -> bool:
    """Whether `data` begins like a DER PFX: SEQUENCE { INTEGER 3, ContentInfo { OID data|
    signedData ... } ...} (RFC 7292). Tells "not a .p12" from "wrong password", which the
    parser reports as one error."""
    try:
        return _pfx_prefix(data)
    except IndexError:
        return False


def _pfx_prefix(data: bytes) -> bool:
    if len(data) < 20 or data[0] != 0x30:
        return False
    i = 1
    if data[i] & 0x80:  # long form length
        i += 1 + (data[i] & 0x7F)
    else:
        i += 1
    if data[i : i + 3] != b"\x02\x01\x03":
        return False
    i += 3
    if data[i] != 0x30:
        return False
    i += 1
    i += 1 + (data[i] & 0x7F) if data[i] & 0x80 else 1
    return data[i : i + len(_PKCS7_DATA)] in (_PKCS7_DATA, _PKCS7_SIGNED)


def _text(value: bytes) -> str:
    """An extension's value: a DER string (UTF8String, PrintableString, IA5String) or, as
    some authorities wrote it, the bare text."""
    if len(value) >= 2 and value[0] in (0x0C, 0x13, 0x16) and value[1] == len(value) - 2:
        value = value[2:]
    return value.decode("utf-8", errors="replace").strip()


def _extension_text(cert: x509.Certificate, oids: tuple[x509.ObjectIdentifier, ...]) -> str:
    for oid in oids:
        try:
            ext = cert.extensions.get_extension_for_oid(oid)
        except x509.ExtensionNotFound:
            continue
        if isinstance(ext.value, x509.UnrecognizedExtension):
            return _text(ext.value.value)
    return ""


def certificate_ruc(cert: x509.Certificate) -> str | None:
    """The RUC the certificate names (13 digits), or None."""
    found = re.search(r"\d{13}", _extension_text(cert, RUC_OIDS))
    if found:
        return found.group()
    cedula = re.fullmatch(r"\d{10}", _extension_text(cert, CEDULA_OIDS))
    return cedula.group() + "001" if cedula else None


def _common_name(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.COMMON_NAME)
    return str(values[0].value) if values else name.rfc4514_string()


def _signs(cert: x509.Certificate) -> bool:
    """Whether the certificate may sign (key usage digitalSignature, or no key usage)."""
    try:
        usage = cert.extensions.get_extension_for_oid(ExtensionOID.KEY_USAGE).value
    except x509.ExtensionNotFound:
        return True
    return bool(usage.digital_signature)


def _public(key) -> bytes:
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def load_p12(data: bytes, password: str, ruc: str, now: datetime | None = None) -> SigningKey:
    """Open an uploaded .p12 for the issuer of `ruc` and judge it, in order: a PKCS#12, the
    password opens it, it holds a private key (RSA) and that key's certificate, which is for
    signing, names `ruc` and, when `now` is given, is valid at `now`. Raises P12Error with the
    first problem.
    """
    data = bytes(data or b"")
    try:
        bundle = pkcs12.load_pkcs12(data, password.encode() if password else None)
    except (ValueError, TypeError) as exc:
        if _looks_like_pkcs12(data):
            raise P12Error(
                "La contraseña no abre el archivo .p12: revísela (distingue mayúsculas).",
                "password",
            ) from exc
        raise P12Error(
            "El archivo no es un certificado de firma electrónica .p12 (PKCS#12).", "format"
        ) from exc
    key = bundle.key
    if key is None:
        raise P12Error(
            "El archivo .p12 no contiene la clave privada: exporte la firma con su clave.",
            "no_key",
        )
    if not isinstance(key, rsa.RSAPrivateKey):
        raise P12Error(
            "La clave del certificado no es RSA, que es la que acepta el SRI.", "not_rsa"
        )
    certs = [c.certificate for c in ([bundle.cert] if bundle.cert else [])]
    certs += [c.certificate for c in bundle.additional_certs]
    mine = _public(key.public_key())
    own = [c for c in certs if _public(c.public_key()) == mine]
    if not own:
        raise P12Error(
            "El archivo .p12 no contiene el certificado de su clave privada.", "no_certificate"
        )
    cert = next((c for c in own if _signs(c)), None)
    if cert is None:
        raise P12Error(
            "El certificado no es de firma digital (es de cifrado): el SRI lo rechaza. "
            "Use el archivo de firma de su certificado.",
            "not_signing",
        )
    cert_ruc = certificate_ruc(cert)
    if cert_ruc is None:
        raise P12Error("El certificado no indica ningún RUC.", "no_ruc")
    if cert_ruc != ruc:
        raise P12Error(
            f"El certificado pertenece al RUC {cert_ruc}, no al {ruc}.", "ruc", ruc=cert_ruc
        )
    valid_from, valid_to = cert.not_valid_before_utc, cert.not_valid_after_utc
    if now is not None:
        dates = {"valid_from": valid_from, "valid_to": valid_to}
        if now < valid_from:
            raise P12Error(
                f"El certificado aún no es válido: lo es desde el {valid_from:%d/%m/%Y}.",
                "not_yet_valid",
                **dates,
            )
        if now >= valid_to:
            raise P12Error(
                f"El certificado está vencido desde el {valid_to:%d/%m/%Y}.", "expired", **dates
            )
    chain = tuple(c for c in certs if c is not cert and _public(c.public_key()) != mine)
    return SigningKey(
        private_key=key,
        certificate=cert,
        chain=chain,
        ruc=cert_ruc,
        holder=_extension_text(cert, LEGAL_NAME_OIDS) or _common_name(cert.subject),
        issuer=_common_name(cert.issuer),
        valid_from=valid_from,
        valid_to=valid_to,
    )
