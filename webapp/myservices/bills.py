"""Mis servicios: bills (to be written)."""
