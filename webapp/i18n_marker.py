"""Messages of Flask-free code, translated where they are shown.

Domain code marks its Spanish (es-MX) message ids with `N_` so `make extract-messages` finds
them, and keeps parameters apart (`%(name)s` placeholders plus a dict); the view or the API
translates with `flask_babel.gettext(message, **params)`. `spanish()` formats a message as it
reads without translation (logs, stored text for old readers).
"""

from __future__ import annotations

from collections.abc import Mapping


def N_(message: str) -> str:
    """Mark `message` for extraction; it stays the Spanish msgid."""
    return message


def spanish(message: str, params: Mapping[str, object] | None = None) -> str:
    """`message` with its parameters, untranslated (gettext's rule: `%` only with params)."""
    return message % dict(params) if params else message
