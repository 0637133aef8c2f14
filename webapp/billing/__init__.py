"""Monthly service bills (seed 002), without Flask: the provider's catalogue, accounts, lines,
charges and payments coming in (catalog, csvfile), the billing run (run) issuing each bill's
document through one interface (documents: CFDI now, SRI next), the statement of account
(statement), the codes that prove a customer holds a line (lines) and the terms (terms).
"""
