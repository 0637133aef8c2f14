"""SAT's XSD for CFDI 4.0 and the TimbreFiscalDigital 1.1, compiled once per process.

satcfdi's `validate=True` builds and compiles the schema (catCFDI alone is 5 MB) on every call,
about 150 ms; here the compiled schema is kept. The XSDs are SAT's own files, as satcfdi
ships them, with one change that keeps their meaning: libxml2 checks an enumeration by walking
it value by value, and c_CodigoPostal (95,777 values), c_ClaveProdServ (52,747) and
c_ClaveUnidad (2,418) made every Concepto cost about a millisecond. Those catalogs are loaded
from the same catCFDI.xsd into Python sets and checked there, on the attributes cfdv40.xsd types
with them; the compiled schema keeps their other facets.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass

from lxml import etree
from satcfdi.transform import SCHEMA_ROOT

CFDI_NS = "http://www.sat.gob.mx/cfd/4"
TFD_NS = "http://www.sat.gob.mx/TimbreFiscalDigital"
CAT_NS = "http://www.sat.gob.mx/sitio_internet/cfd/catalogos"
XS = "http://www.w3.org/2001/XMLSchema"
CFDI_XSD = "www.sat.gob.mx/sitio_internet/cfd/4/cfdv40.xsd"
TFD_XSD = "www.sat.gob.mx/sitio_internet/cfd/TimbreFiscalDigital/TimbreFiscalDigitalv11.xsd"
CAT_XSD = "www.sat.gob.mx/sitio_internet/cfd/catalogos/catCFDI.xsd"
LARGE_CATALOG = 1000  # enumerations longer than this are checked in Python
ENUMERATION = f"{{{XS}}}enumeration"

# No DTDs, no entities, no network: an uploaded or returned XML cannot reach anything.
PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)

_lock = threading.Lock()
_compiled: _Compiled | None = None


class InvalidCfdi(ValueError):
    """The XML is not well formed or breaks SAT's XSD; `errors` says where, one per line."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors) or "invalid CFDI")
        self.errors = errors


@dataclass(frozen=True)
class _CatalogCheck:
    """An attribute typed with a large catalog: where it is, and the catalog's values."""

    catalog: str
    element: str  # Clark name of the element holding the attribute
    attribute: str
    xpath: etree.XPath
    values: frozenset[str]


@dataclass(frozen=True)
class _Compiled:
    schema: etree.XMLSchema
    checks: tuple[_CatalogCheck, ...]


class _Resolver(etree.Resolver):
    """Hands libxml2 the catCFDI.xsd without its large enumerations."""

    def __init__(self, catalog: bytes) -> None:
        super().__init__()
        self.catalog = catalog

    def resolve(self, url, pubid, context):  # lxml calls it with these three
        if url.replace("\\", "/").endswith("catalogos/catCFDI.xsd"):
            return self.resolve_string(self.catalog, context, base_url=url)
        return None


def _split_catalog() -> tuple[bytes, dict[str, frozenset[str]]]:
    """catCFDI.xsd without its large enumerations, and those enumerations' values."""
    tree = etree.parse(os.path.join(SCHEMA_ROOT, CAT_XSD), parser=PARSER)
    large: dict[str, frozenset[str]] = {}
    for simple in tree.getroot().iterfind(f"{{{XS}}}simpleType"):
        restriction = simple.find(f"{{{XS}}}restriction")
        if restriction is None:
            continue
        enumerations = restriction.findall(ENUMERATION)
        if len(enumerations) > LARGE_CATALOG:
            large[simple.get("name")] = frozenset(e.get("value") for e in enumerations)
            attrib = dict(restriction.attrib)
            facets = [(f.tag, dict(f.attrib)) for f in restriction if f.tag != ENUMERATION]
            del enumerations
            restriction.clear()  # fast; removing 95,777 children one by one is not
            restriction.attrib.update(attrib)
            for tag, facet in facets:
                etree.SubElement(restriction, tag, facet)
    return etree.tostring(tree), large


def _catalog_checks(
    cfdi_xsd: etree._ElementTree, large: dict[str, frozenset[str]]
) -> tuple[_CatalogCheck, ...]:
    """Every attribute cfdv40.xsd types with one of the `large` catalogs, with its path."""
    checks = []
    for attribute in cfdi_xsd.getroot().iter(f"{{{XS}}}attribute"):
        prefix, _, name = (attribute.get("type") or "").partition(":")
        if attribute.nsmap.get(prefix) != CAT_NS or name not in large:
            continue
        elements = [
            e.get("name") for e in attribute.iterancestors(f"{{{XS}}}element") if e.get("name")
        ][::-1]
        path = "/" + "/".join(f"cfdi:{e}" for e in elements)
        checks.append(
            _CatalogCheck(
                catalog=name,
                element=f"{{{CFDI_NS}}}{elements[-1]}",
                attribute=attribute.get("name"),
                xpath=etree.XPath(
                    f"{path}[@{attribute.get('name')}]", namespaces={"cfdi": CFDI_NS}
                ),
                values=large[name],
            )
        )
    return tuple(checks)


def _compile() -> _Compiled:
    catalog, large = _split_catalog()
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    parser.resolvers.add(_Resolver(catalog))
    root = etree.Element(f"{{{XS}}}schema", nsmap={"xs": XS})
    for namespace, path in ((CFDI_NS, CFDI_XSD), (TFD_NS, TFD_XSD)):
        etree.SubElement(
            root,
            f"{{{XS}}}import",
            namespace=namespace,
            schemaLocation=os.path.join(SCHEMA_ROOT, path),
        )
    wrapper = etree.fromstring(etree.tostring(root), parser=parser, base_url=SCHEMA_ROOT + "/")
    schema = etree.XMLSchema(wrapper)
    cfdi_xsd = etree.parse(os.path.join(SCHEMA_ROOT, CFDI_XSD), parser=PARSER)
    return _Compiled(schema, _catalog_checks(cfdi_xsd, large))


def _get() -> _Compiled:
    global _compiled
    if _compiled is None:
        with _lock:
            if _compiled is None:
                _compiled = _compile()
    return _compiled


def schema() -> etree.XMLSchema:
    """The compiled schema (compiled on first use, then shared)."""
    return _get().schema


def parse(xml: bytes) -> etree._Element:
    """The root element of `xml`, parsed safely; InvalidCfdi when it is not well formed."""
    try:
        return etree.fromstring(xml, parser=PARSER)
    except etree.XMLSyntaxError as exc:
        raise InvalidCfdi([f"XML mal formado: {exc}"]) from exc


def _shorten(message: str, limit: int = 300) -> str:
    """libxml2 lists every allowed value of an enumeration that fails: cut it short."""
    return message if len(message) <= limit else message[:limit] + "…"


def validate(xml: bytes | etree._Element) -> None:
    """Raise InvalidCfdi unless `xml` is a CFDI 4.0 valid against SAT's XSD.

    A TimbreFiscalDigital in the Complemento is validated too (TFD 1.1); any other complement
    is refused, as this schema set does not know it.
    """
    root = parse(xml) if isinstance(xml, bytes) else xml
    if root.tag != f"{{{CFDI_NS}}}Comprobante":
        raise InvalidCfdi([f"el elemento raíz es {root.tag}, no un Comprobante CFDI 4.0"])
    compiled = _get()
    with _lock:  # an XMLSchema's error log is per object: one validation at a time
        valid = compiled.schema.validate(root)
        errors = (
            []
            if valid
            else [f"línea {e.line}: {_shorten(e.message)}" for e in compiled.schema.error_log]
        )
    for check in compiled.checks:
        for element in check.xpath(root):
            value = " ".join(element.get(check.attribute).split())  # whiteSpace collapse
            if value not in check.values:
                errors.append(
                    f"línea {element.sourceline}: Element '{check.element}', attribute "
                    f"'{check.attribute}': [facet 'enumeration'] The value '{_shorten(value, 40)}'"
                    f" is not an element of the set {check.catalog}."
                )
    if errors:
        raise InvalidCfdi(errors)
