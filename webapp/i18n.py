"""Spanish (es-MX) first; English when the visitor chooses it.

Message ids are the Spanish text; translations/en holds the English catalog. The language is
never guessed from Accept-Language: the portal speaks Spanish unless asked otherwise.
"""

from __future__ import annotations

from flask import Flask, has_request_context, request

from webapp.extensions import babel

LANGUAGES = {"es_MX": "Español", "en": "English"}
COOKIE = "lang"


def get_locale() -> str:
    """The visitor's choice; Spanish outside a request (commands, the mail worker)."""
    choice = request.cookies.get(COOKIE) if has_request_context() else None
    return choice if choice in LANGUAGES else "es_MX"


def html_lang() -> str:
    return get_locale().replace("_", "-")


def init_app(app: Flask) -> None:
    babel.init_app(app, locale_selector=get_locale)
    app.jinja_env.globals.update(html_lang=html_lang, LANGUAGES=LANGUAGES, get_locale=get_locale)
