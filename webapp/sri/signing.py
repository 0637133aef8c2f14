"""The XAdES-BES signature SRI requires on every comprobante electrónico.

    key = webapp.sri.p12.load_p12(p12_bytes, password, ruc, now)
    signed_xml = sign(xml_bytes, key)

SRI's ficha técnica (section "Firma electrónica") asks for: XAdES-BES, schema version 1.3.2
(namespace http://uri.etsi.org/01903/v1.3.2#), UTF-8, an ENVELOPED signature of the comprobante
(its root carries id="comprobante"), with the signer's certificate. It names no other
algorithm, and what SRI's own signing tool produced and every implementation SRI authorises
(OCA l10n-ecuador's, FirmaEC's, ...) uses is the XML-DSig 1.0 set: RSA-SHA1 signature, SHA-1
digests, inclusive Canonical XML 1.0. SRI has never announced that it accepts SHA-256, and a
signature it rejects blocks invoicing, so SHA-1 is what is sent; the algorithms are these
module's constants, to change in one place when SRI does.

The signature (made with signxml's XAdESSigner) is the root's last child, as SRI expects:

    ds:Signature Id=...
      ds:SignedInfo: C14N 1.0, RSA-SHA1, three references (SHA-1):
        #comprobante (enveloped-signature transform), #<SignedProperties>
        (Type=http://uri.etsi.org/01903#SignedProperties), #<KeyInfo>
      ds:SignatureValue
      ds:KeyInfo Id=...: ds:KeyValue (RSA modulus, exponent), ds:X509Data (the certificate)
      ds:Object / xades:QualifyingProperties / xades:SignedProperties Id=...
        SignedSignatureProperties: SigningTime (Ecuador's time, -05:00), SigningCertificate
          (SHA-1 digest of the certificate, IssuerSerial: issuer DN as RFC 4514, serial number)
        SignedDataObjectProperties: DataObjectFormat of the #comprobante reference (text/xml)

signxml emits XAdES's SigningCertificateV2 by default; SRI's schema version 1.3.2 knows only
SigningCertificate, so `_SRISigner` writes that one instead.
"""

from __future__ import annotations

from base64 import b64encode
from datetime import datetime
from zoneinfo import ZoneInfo

from cryptography.hazmat.primitives import hashes
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod
from signxml.util import ds_tag, xades_tag
from signxml.xades import XAdESDataObjectFormat, XAdESSigner

from webapp.sri.p12 import SigningKey

SIGNATURE_METHOD = SignatureMethod.RSA_SHA1
DIGEST_METHOD = DigestAlgorithm.SHA1
C14N_METHOD = CanonicalizationMethod.CANONICAL_XML_1_0
_CERT_DIGEST = hashes.SHA1()  # noqa: S303  SigningCertificate digest, as DIGEST_METHOD (SRI)

COMPROBANTE_ID = "comprobante"
ECUADOR = ZoneInfo("America/Guayaquil")

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)


class SigningError(ValueError):
    """The XML cannot be signed as a comprobante (not XML, or no root id="comprobante")."""


class _SRISigner(XAdESSigner):
    """signxml's XAdES signer with SRI's algorithms and SigningCertificate (v1)."""

    def __init__(self, signing_time: datetime):
        super().__init__(
            signature_algorithm=SIGNATURE_METHOD,
            digest_algorithm=DIGEST_METHOD,
            c14n_algorithm=C14N_METHOD,
            data_object_format=XAdESDataObjectFormat(
                Description="contenido comprobante", MimeType="text/xml"
            ),
        )
        self._signing_time = signing_time

    def check_deprecated_methods(self):
        """SRI verifies RSA-SHA1 (module docstring): allowed here, on purpose."""

    def add_signing_time(self, signed_signature_properties, sig_root, signing_settings):
        node = etree.SubElement(
            signed_signature_properties, xades_tag("SigningTime"), nsmap=self.namespaces
        )
        node.text = self._signing_time.isoformat(timespec="seconds")

    def add_signing_certificate(self, signed_signature_properties, sig_root, signing_settings):
        cert = signing_settings.cert_chain[0]
        signing_cert = etree.SubElement(
            signed_signature_properties, xades_tag("SigningCertificate"), nsmap=self.namespaces
        )
        cert_node = etree.SubElement(signing_cert, xades_tag("Cert"), nsmap=self.namespaces)
        digest = etree.SubElement(cert_node, xades_tag("CertDigest"), nsmap=self.namespaces)
        etree.SubElement(
            digest, ds_tag("DigestMethod"), nsmap=self.namespaces, Algorithm=DIGEST_METHOD.value
        )
        value = etree.SubElement(digest, ds_tag("DigestValue"), nsmap=self.namespaces)
        value.text = b64encode(cert.fingerprint(_CERT_DIGEST)).decode()
        issuer_serial = etree.SubElement(
            cert_node, xades_tag("IssuerSerial"), nsmap=self.namespaces
        )
        name = etree.SubElement(issuer_serial, ds_tag("X509IssuerName"), nsmap=self.namespaces)
        name.text = cert.issuer.rfc4514_string()
        serial = etree.SubElement(issuer_serial, ds_tag("X509SerialNumber"), nsmap=self.namespaces)
        serial.text = str(cert.serial_number)


def sign(xml: bytes, key: SigningKey, *, now: datetime | None = None) -> bytes:
    """`xml` (a comprobante whose root has id="comprobante") with its XAdES-BES signature as
    the root's last child, serialised as UTF-8 with an XML declaration. `now` is the signing
    time (default: the current time), written in Ecuador's time zone.
    """
    try:
        root = etree.fromstring(xml, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise SigningError(f"the comprobante is not well-formed XML: {exc}") from exc
    if root.get("id") != COMPROBANTE_ID:
        raise SigningError(f'the comprobante\'s root has no id="{COMPROBANTE_ID}"')
    if root.find(ds_tag("Signature")) is not None:
        raise SigningError("the comprobante is already signed")
    signing_time = (now or datetime.now(ECUADOR)).astimezone(ECUADOR)
    signed = _SRISigner(signing_time).sign(
        root,
        key=key.private_key,
        cert=[key.certificate],
        reference_uri=f"#{COMPROBANTE_ID}",
        id_attribute="id",
        exclude_c14n_transform_element=True,
    )
    return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")
