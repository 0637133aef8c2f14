"""Spanish (es-MX) first; English when the visitor chooses it.

Message ids are the Spanish text; translations/en holds the English catalog. The language is
never guessed from Accept-Language: the portal speaks Spanish unless asked otherwise.
"""

from __future__ import annotations

import functools

import flask_babel
import flask_wtf.i18n
from babel import support
from flask import Flask, has_request_context, request
from wtforms.i18n import messages_path

from webapp.extensions import babel

LANGUAGES = {"es_MX": "Español", "en": "English"}
COOKIE = "lang"
_TRANSLATIONS = "autofactura.translations"  # in the request's environ


def get_locale() -> str:
    """The visitor's choice; Spanish outside a request (commands, the mail worker)."""
    choice = request.cookies.get(COOKIE) if has_request_context() else None
    return choice if choice in LANGUAGES else "es_MX"


def html_lang() -> str:
    return get_locale().replace("_", "-")


@functools.lru_cache(maxsize=len(LANGUAGES) + 2)
def _wtforms_catalog(locale: str) -> support.Translations:
    """WTForms' own messages (its validators', field labels it makes up) in `locale`, read
    from WTForms' .mo file once per process."""
    return support.Translations.load(messages_path(), [locale], domain="wtforms")


def _wtforms_translations() -> support.Translations | None:
    """What flask-wtf's `_get_translations` answers, without reading and parsing the .mo file
    again in every request that builds a form."""
    if not has_request_context():
        return None
    return _wtforms_catalog(str(flask_babel.get_locale()))


def translations() -> support.NullTranslations:
    """flask-babel's translations for this request, looked up once per request: flask-babel
    looks them up again for every message, through three lookups of its request context (the
    request keeps one language: nothing here calls flask-babel's force_locale or refresh)."""
    if not has_request_context():
        return flask_babel.get_translations()
    environ = request.environ
    found = environ.get(_TRANSLATIONS)
    if found is None:
        found = environ[_TRANSLATIONS] = flask_babel.get_translations()
    return found


class _Domain(flask_babel.Domain):
    """flask-babel's message domain, its translations looked up once per request: what the
    gettext and lazy_gettext of Python code (form labels, messages) go through."""

    def get_translations(self):
        if not has_request_context():
            return super().get_translations()
        environ = request.environ
        found = environ.get(_TRANSLATIONS)
        if found is None:
            found = environ[_TRANSLATIONS] = super().get_translations()
        return found


def init_app(app: Flask) -> None:
    babel.init_app(app, locale_selector=get_locale)
    babel.domain_instance = _Domain(domain=app.config.get("BABEL_DOMAIN", "messages"))
    # The templates' _(), gettext and ngettext, as flask-babel installs them but with this
    # request's translations looked up once.
    app.jinja_env.install_gettext_callables(
        gettext=lambda s: translations().ugettext(s),
        ngettext=lambda s, p, n: translations().ungettext(s, p, n),
        pgettext=lambda c, s: translations().upgettext(c, s),
        npgettext=lambda c, s, p, n: translations().unpgettext(c, s, p, n),
        newstyle=True,
    )
    # flask-wtf's form translations call this module function on every message; its own
    # keeps the catalog for one request only.
    flask_wtf.i18n._get_translations = _wtforms_translations
    app.jinja_env.globals.update(html_lang=html_lang, LANGUAGES=LANGUAGES, get_locale=get_locale)
