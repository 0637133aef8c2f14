"""Back office: branches (being built)."""
