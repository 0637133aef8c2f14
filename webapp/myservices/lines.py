"""Mis servicios: lines (to be written)."""
