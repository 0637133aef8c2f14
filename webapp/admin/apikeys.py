"""Back office: apikeys (being built)."""
