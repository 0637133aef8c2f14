"""SRI's XSD for the factura, version 1.1.0, compiled once per process; `validate`.

The files here are vendored unchanged (ORIGIN.md says where from): SRI's factura_V1.1.0.xsd
as the OCA l10n-ecuador add-ons ship it, and W3C's xmldsig-core-schema.xsd, which it imports.

One change is made in memory, never to the files: SRI's published factura schemas end the
factura's sequence with `<xsd:element ref="ds:Signature" minOccurs="0"/>` (the enveloped
XAdES signature), and the OCA copy lacks that line, so it would refuse every signed factura.
The compiled schema puts the line back, as SRI has it: an unsigned factura (built here,
before signing) and a signed one both validate; `validate(xml, signed=True)` also demands
the signature, for what is sent to SRI.
"""

from __future__ import annotations

import os
import threading

from lxml import etree

HERE = os.path.dirname(os.path.abspath(__file__))
FACTURA_XSD = os.path.join(HERE, "factura_V1.1.0.xsd")
XMLDSIG_XSD = os.path.join(HERE, "xmldsig-core-schema.xsd")
VERSION = "1.1.0"
XS = "http://www.w3.org/2001/XMLSchema"
DS = "http://www.w3.org/2000/09/xmldsig#"

# No DTDs, no entities, no network: an uploaded or returned XML cannot reach anything.
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)

_lock = threading.Lock()
_schema: etree.XMLSchema | None = None


class InvalidComprobante(ValueError):
    """The XML is not well formed or breaks SRI's XSD; `errors` says where, one per entry."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors) or "comprobante no válido")
        self.errors = errors


class _Resolver(etree.Resolver):
    """Hands libxml2 the vendored xmldsig schema; nothing else is fetched."""

    def resolve(self, url, pubid, context):  # lxml calls it with these three
        if (url or "").replace("\\", "/").endswith("xmldsig-core-schema.xsd"):
            return self.resolve_filename(XMLDSIG_XSD, context)
        return None


def _compile() -> etree.XMLSchema:
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    parser.resolvers.add(_Resolver())
    tree = etree.parse(FACTURA_XSD, parser=parser)
    (sequence,) = tree.getroot().xpath(
        "xs:element[@name='factura']/xs:complexType/xs:sequence", namespaces={"xs": XS}
    )
    if not sequence.xpath("xs:element[@ref='ds:Signature']", namespaces={"xs": XS}):
        etree.SubElement(sequence, f"{{{XS}}}element", ref="ds:Signature", minOccurs="0")
    return etree.XMLSchema(tree)


def schema() -> etree.XMLSchema:
    """The compiled schema (compiled on first use, then shared)."""
    global _schema
    if _schema is None:
        with _lock:
            if _schema is None:
                _schema = _compile()
    return _schema


def parse(xml: bytes) -> etree._Element:
    """The root element of `xml`, parsed safely; InvalidComprobante when not well formed."""
    try:
        root = etree.fromstring(xml, parser=PARSER)
    except etree.XMLSyntaxError as exc:
        raise InvalidComprobante([f"XML mal formado: {exc}"]) from exc
    if root.getroottree().docinfo.doctype:
        # A comprobante has no DTD; one would only bring entities the schema cannot judge.
        raise InvalidComprobante(["el comprobante no puede declarar un DOCTYPE"])
    return root


def _shorten(message: str, limit: int = 300) -> str:
    return message if len(message) <= limit else message[:limit] + "…"


def validate(xml: bytes | etree._Element, *, signed: bool = False) -> None:
    """Raise InvalidComprobante unless `xml` is a factura 1.1.0 valid against SRI's XSD;
    with `signed`, it must also carry its ds:Signature (one, the last child)."""
    root = parse(xml) if isinstance(xml, bytes) else xml
    if root.tag != "factura":
        raise InvalidComprobante([f"el elemento raíz es {root.tag}, no una factura del SRI"])
    if root.get("version") != VERSION:
        raise InvalidComprobante(
            [f"versión {root.get('version')!r} de la factura: se valida la {VERSION}"]
        )
    compiled = schema()
    with _lock:  # an XMLSchema's error log is per object: one validation at a time
        try:
            valid = compiled.validate(root)
        except etree.XMLSchemaValidateError as exc:  # e.g. an element built with an entity
            raise InvalidComprobante([f"XML no validable: {exc}"]) from exc
        errors = (
            [] if valid else [f"línea {e.line}: {_shorten(e.message)}" for e in compiled.error_log]
        )
    if signed and not errors and len(root.findall(f"{{{DS}}}Signature")) != 1:
        errors.append("la factura no está firmada (falta ds:Signature)")
    if errors:
        raise InvalidComprobante(errors)
