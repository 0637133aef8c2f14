"""Email through an outbox.

`queue_mail` (outbox.py) adds a MailMessage row to the caller's session, so the email is
committed, or rolled back, together with the change that causes it. The worker (worker.py,
`flask mail worker`) delivers the pending rows through the transport named by MAIL_URL
(transport.py), retrying with backoff and keeping the ones it gives up on as dead letters.
An attachment may be left for the worker to render at delivery (deferred.py: an invoice's
PDF), so queueing an email costs the request nothing but the row.
"""

from webapp.mail.deferred import Rendered, register_renderer
from webapp.mail.outbox import queue_mail, validate_address

__all__ = ["Rendered", "queue_mail", "register_renderer", "validate_address"]
