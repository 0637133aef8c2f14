"""Ecuador's SRI electronic documents, without Flask.

    from webapp.sri import access_key, catalogs
    from webapp.sri.factura import Factura, build_xml
    from webapp.sri.xsd import validate

    key = access_key.build(fecha=..., ruc=..., ambiente="1", estab="001", pto_emi="001",
                           secuencial=1, codigo_numerico=access_key.new_codigo_numerico())
    xml = build_xml(factura, key)   # SRI factura (codDoc 01) version 1.1.0, UTF-8, unsigned
    validate(xml)                   # SRI's XSD (compiled once per process)

- `access_key`: the 49-digit clave de acceso and its mod-11 check digit.
- `catalogs`: SRI's tables (IVA rates, formas de pago, buyer identification types) and the
  buyer identification checks (python-stdnum's `ec.ruc` and `ec.ci`).
- `factura`: the invoice as dataclasses with Decimal money, its totals and its XML.
- `xsd`: SRI's factura schema, vendored (see `xsd/ORIGIN.md`), and `validate`.

Also: `p12` (the signing certificate's checks; `testp12` makes a test one), `signing` (the
XAdES-BES signature), `client` (SRI's offline web services) and `ride` (the RIDE, the printed
representation, with the clave de acceso as a Code 128 barcode).
"""
