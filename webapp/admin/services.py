"""Back office: service accounts (to be written)."""
