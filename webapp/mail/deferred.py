"""Attachments made at delivery: the worker renders them, not the commit that queues the email.

An invoice's PDF costs about 90 ms of CPU; queued in the commit that records the stamp it
would keep the customer waiting for a file that is only a representation of the stamped XML.
So `queue_mail` accepts, for an attachment's data, a `Rendered(renderer, source_id)`: the
row keeps the renderer's name and the id, and the worker, before composing the message,
calls the function registered under that name and stores the bytes (`fill`), so a retry
sends the same bytes without rendering again. A renderer that fails fails the delivery
(retried with backoff, then dead, as any other failure).

The app registers its renderers at start-up (webapp.wiring: "invoice_pdf"); this package
knows none of them (it must not import the services).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from sqlalchemy.orm import Session

from webapp.models import MailMessage

NAME_MAX = 40  # MailAttachment.renderer

Renderer = Callable[[Session, int], bytes]
"""renderer(session, source_id) → the attachment's bytes; raises when it cannot make them."""

_renderers: dict[str, Renderer] = {}


@dataclass(frozen=True)
class Rendered:
    """An attachment's data to make at delivery: `renderer(session, source_id)`."""

    renderer: str
    source_id: int


def register_renderer(name: str, renderer: Renderer) -> None:
    """Make `renderer` the one named `name` (registering a name again replaces it)."""
    if not isinstance(name, str) or not 0 < len(name) <= NAME_MAX:
        raise ValueError(f"a renderer's name has 1 to {NAME_MAX} characters: {name!r}")
    _renderers[name] = renderer


def is_registered(name: str) -> bool:
    return name in _renderers


def render(session: Session, name: str, source_id: int) -> bytes:
    """The bytes the renderer `name` makes for `source_id`; LookupError for an unknown name."""
    try:
        renderer = _renderers[name]
    except KeyError:
        raise LookupError(f"no attachment renderer {name!r} is registered") from None
    data = renderer(session, source_id)
    if not isinstance(data, bytes):
        raise TypeError(f"renderer {name!r} gave {type(data).__name__}, not bytes")
    return data


def fill(session: Session, message: MailMessage) -> None:
    """Render the attachments of `message` still without data and store them, committed (a
    retry then has them). Raises what a renderer raises."""
    for attachment in message.attachments:
        if attachment.data is not None:
            continue
        if attachment.renderer is None or attachment.source_id is None:
            raise ValueError(f"attachment {attachment.filename!r} has neither data nor renderer")
        data = render(session, attachment.renderer, attachment.source_id)
        attachment.data = data
        session.commit()
