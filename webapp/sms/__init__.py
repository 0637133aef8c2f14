"""Text messages (SMS) through an outbox, built like the mail one (webapp.mail).

`queue_sms` (outbox.py) adds an SmsMessage row to the caller's session, so the message is
committed, or rolled back, together with the change that causes it; it normalises the number
to E.164 (Mexico, Ecuador) and refuses a text longer than three messages. The worker
(worker.py, `flask sms worker`) delivers the pending rows through the transport named by
SMS_URL (transport.py: files for development, Twilio's API), retrying with backoff and keeping
the ones it gives up on, or the provider refuses, as dead letters.
"""

from webapp.sms.outbox import normalise_number, queue_sms, segments

__all__ = ["normalise_number", "queue_sms", "segments"]
