"""Back office: billing runs (to be written)."""
