"""Email through an outbox.

`queue_mail` (outbox.py) adds a MailMessage row to the caller's session, so the email is
committed, or rolled back, together with the change that causes it. The worker (worker.py,
`flask mail worker`) delivers the pending rows through the transport named by MAIL_URL
(transport.py), retrying with backoff and keeping the ones it gives up on as dead letters.
"""

from webapp.mail.outbox import queue_mail, validate_address

__all__ = ["queue_mail", "validate_address"]
