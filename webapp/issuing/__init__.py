"""Issuing invoices for tickets: ticket checks, the stamping state machine, delivery.

Flask-free: views pass the session, the clock, the signer and the PAC in.
"""
