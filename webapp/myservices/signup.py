"""Mis servicios: signup (to be written)."""
