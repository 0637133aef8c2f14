"""Tickets pushed by the point of sale (JSON API) or uploaded as CSV in the back office.

Flask-free: `validate.parse_ticket` turns one payload into a `TicketData` or per-field errors;
`ingest.ingest_ticket` stores it with its lines, idempotent on branch + ticket number;
`csvfile.read_csv` turns a CSV (one row per line) into payloads with their row numbers;
`payment` has the formas de pago a ticket may record and SAT's rule for several of them.
"""
