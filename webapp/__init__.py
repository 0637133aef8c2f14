"""Autofactura: self-invoicing portal for CFDI 4.0.

The application factory is `webapp.app.create_app`; importing this package loads nothing else.
"""
