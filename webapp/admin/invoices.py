"""Back office: invoices (being built)."""
