"""Back office: settings (being built)."""
