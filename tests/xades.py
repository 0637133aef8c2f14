"""An XAdES-BES verifier for SRI comprobantes, written for the tests with lxml and
cryptography only (no signxml, nothing of webapp.sri.signing): it recomputes each Reference's
digest (the document without its Signature for #comprobante, the element of that Id for the
others), the SignatureValue over the canonical SignedInfo with the certificate's public key,
and the SigningCertificate's digest and issuer/serial against the certificate in KeyInfo."""

from __future__ import annotations

import base64

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

DS = "http://www.w3.org/2000/09/xmldsig#"
XADES = "http://uri.etsi.org/01903/v1.3.2#"
NS = {"ds": DS, "xades": XADES}
C14N = {
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315": {"exclusive": False},
    "http://www.w3.org/2001/10/xml-exc-c14n#": {"exclusive": True},
}
HASHES = {
    "http://www.w3.org/2000/09/xmldsig#sha1": hashes.SHA1,
    "http://www.w3.org/2001/04/xmlenc#sha256": hashes.SHA256,
}
SIGNATURES = {
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1": hashes.SHA1,
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256": hashes.SHA256,
}
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
SIGNED_PROPERTIES = "http://uri.etsi.org/01903#SignedProperties"


class Invalid(Exception):
    """The signature does not verify; the message says which check failed."""


def c14n(element, algorithm: str) -> bytes:
    if algorithm not in C14N:
        raise Invalid(f"unknown canonicalization {algorithm}")
    return etree.tostring(element, method="c14n", **C14N[algorithm])


def digest(data: bytes, algorithm: str) -> bytes:
    if algorithm not in HASHES:
        raise Invalid(f"unknown digest {algorithm}")
    h = hashes.Hash(HASHES[algorithm]())
    h.update(data)
    return h.finalize()


def without_signature(signed: bytes):
    """The document as the enveloped-signature transform sees it: the Signature removed."""
    root = etree.fromstring(signed)
    for signature in root.iter(f"{{{DS}}}Signature"):
        parent, tail = signature.getparent(), signature.tail or ""
        previous = signature.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
        parent.remove(signature)
        break
    return root


def verify(signed: bytes, certificate: x509.Certificate | None = None) -> x509.Certificate:
    """Verify `signed`'s enveloped XAdES-BES signature; the certificate it names, which must be
    `certificate` when one is given. Raises Invalid."""
    root = etree.fromstring(signed)
    signature = root[-1]
    if signature.tag != f"{{{DS}}}Signature":
        raise Invalid("the Signature is not the root's last child")
    cert_text = signature.findtext("ds:KeyInfo/ds:X509Data/ds:X509Certificate", namespaces=NS)
    cert = x509.load_der_x509_certificate(base64.b64decode(cert_text))
    if certificate is not None and cert != certificate:
        raise Invalid("signed with another certificate")

    signed_info = signature.find("ds:SignedInfo", NS)
    c14n_method = signed_info.find("ds:CanonicalizationMethod", NS).get("Algorithm")
    uris, signed_properties = [], None
    for reference in signed_info.findall("ds:Reference", NS):
        uri = reference.get("URI")
        uris.append(uri)
        transforms = [
            t.get("Algorithm") for t in reference.findall("ds:Transforms/ds:Transform", NS)
        ]
        if ENVELOPED in transforms:
            if uri != "#comprobante":
                raise Invalid(f"enveloped transform on {uri}")
            target = without_signature(signed)
            if target.get("id") != "comprobante":
                raise Invalid("#comprobante is not the root")
        else:
            found = root.xpath("//*[@Id=$id]", id=uri.removeprefix("#"))
            if len(found) != 1:
                raise Invalid(f"reference {uri} resolves to {len(found)} elements")
            target = found[0]
            if reference.get("Type") == SIGNED_PROPERTIES:
                signed_properties = target
        other = [t for t in transforms if t != ENVELOPED]
        data = c14n(target, other[0] if other else c14n_method)
        algorithm = reference.find("ds:DigestMethod", NS).get("Algorithm")
        expected = base64.b64decode(reference.findtext("ds:DigestValue", namespaces=NS))
        if digest(data, algorithm) != expected:
            raise Invalid(f"digest mismatch for {uri}")
    if "#comprobante" not in uris:
        raise Invalid("the comprobante is not signed")
    if signed_properties is None or signed_properties.tag != f"{{{XADES}}}SignedProperties":
        raise Invalid("no signed SignedProperties")

    method = signed_info.find("ds:SignatureMethod", NS).get("Algorithm")
    value = base64.b64decode(signature.findtext("ds:SignatureValue", namespaces=NS))
    try:
        cert.public_key().verify(
            value, c14n(signed_info, c14n_method), padding.PKCS1v15(), SIGNATURES[method]()
        )
    except InvalidSignature as exc:
        raise Invalid("SignatureValue does not verify with the certificate's key") from exc

    cert_ref = signed_properties.find(
        "xades:SignedSignatureProperties/xades:SigningCertificate/xades:Cert", NS
    )
    if cert_ref is None:
        raise Invalid("no SigningCertificate")
    digest_method = cert_ref.find("xades:CertDigest/ds:DigestMethod", NS).get("Algorithm")
    cert_digest = base64.b64decode(
        cert_ref.findtext("xades:CertDigest/ds:DigestValue", namespaces=NS)
    )
    if digest(cert.public_bytes(Encoding.DER), digest_method) != cert_digest:
        raise Invalid("SigningCertificate's digest is not the certificate's")
    serial = cert_ref.findtext("xades:IssuerSerial/ds:X509SerialNumber", namespaces=NS)
    issuer = cert_ref.findtext("xades:IssuerSerial/ds:X509IssuerName", namespaces=NS)
    if int(serial) != cert.serial_number or issuer != cert.issuer.rfc4514_string():
        raise Invalid("SigningCertificate's IssuerSerial is not the certificate's")
    return cert
