"""Fiscal domain rules of CFDI 4.0 self-invoicing, free of Flask.

Modules:

- `problems`: the `Problem` codes every check reports (the web layer maps them to Spanish).
- `rfc`: RFC normalisation and validation, person type.
- `catalogs`: SAT catalog lookups (régimen, uso, forma de pago, código postal...).
- `matrix`: which régimen goes with which person type, and which UsoCFDI with which régimen.
- `receptor`: the Receptor data of an invoice and its checks.
- `limits`: how long, and with which characters, CFDI text may be (the XSD, the columns and
  the invoice email's subject), for every form where it is typed.
- `ticket_input`: order/ticket numbers and totals as customers type them from a ticket.
- `window`: the merchant's invoicing-window policy.
"""
