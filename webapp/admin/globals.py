"""Back office: globals (being built)."""
