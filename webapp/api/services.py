"""API: service accounts, lines, charges and payments (to be written)."""
