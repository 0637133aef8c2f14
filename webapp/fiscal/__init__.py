"""Fiscal domain rules of CFDI 4.0 self-invoicing, free of Flask.

Modules:

- `problems`: the `Problem` codes every check reports (the web layer maps them to Spanish).
- `rfc`: RFC normalisation and validation, person type.
- `catalogs`: SAT catalog lookups (régimen, uso, forma de pago, código postal...).
- `matrix`: which régimen goes with which person type, and which UsoCFDI with which régimen.
- `receptor`: the Receptor data of an invoice and its checks.
- `ticket_input`: order/ticket numbers and totals as customers type them from a ticket.
- `window`: the merchant's invoicing-window policy.
"""
