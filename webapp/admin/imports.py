"""Back office: imports (being built)."""
