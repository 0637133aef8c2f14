"""Cadenas originales, with SAT's own XSLT (shipped by satcfdi, compiled once per process)."""

from __future__ import annotations

from lxml import etree
from satcfdi.transform import xslt_transform

from webapp.cfdi.xsd import CFDI_NS, TFD_NS

COMPROBANTE = f"{{{CFDI_NS}}}Comprobante"
TFD = f"{{{TFD_NS}}}TimbreFiscalDigital"


def cadena_original(comprobante: etree._Element) -> str:
    """The CFDI 4.0 cadena original ("||4.0|A|1|…||") that the Sello signs."""
    return str(xslt_transform(COMPROBANTE, "4.0")(etree.ElementTree(comprobante)))


def tfd_cadena_original(tfd: etree._Element) -> str:
    """The TFD 1.1 cadena original ("||1.1|UUID|FechaTimbrado|RfcProvCertif|…||") of SelloSAT.

    SAT's XSLT matches the TFD as the document root, so a TFD inside a CFDI is copied out first.
    """
    if tfd.getparent() is not None:
        copy = etree.Element(tfd.tag, attrib=dict(tfd.attrib), nsmap={"tfd": TFD_NS})
        tfd = copy
    return str(xslt_transform(TFD, "1.1")(etree.ElementTree(tfd)))


def find_tfd(comprobante: etree._Element) -> etree._Element | None:
    """The TimbreFiscalDigital in the Complemento, if the CFDI is stamped."""
    return comprobante.find(f"{{{CFDI_NS}}}Complemento/{TFD}")
