"""Every Spanish message in the code and templates has its English translation."""

from __future__ import annotations

from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
from babel.messages.pofile import read_po

from webapp.config import ROOT

METHODS = [
    ("webapp/**.py", "python"),
    ("templates/**.html", "jinja2"),
    ("templates/**.txt", "jinja2"),
]
# N_: webapp.i18n_marker's no-op marker for the messages of Flask-free code.
KEYWORDS = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None, "N_": None}


def test_english_catalog_is_complete():
    found = set()
    for _file, _line, message, _comments, _context in extract_from_dir(
        ROOT, METHODS, keywords=KEYWORDS
    ):
        found.update(message if isinstance(message, tuple) else (message,))
    with open(ROOT / "translations/en/LC_MESSAGES/messages.po", "rb") as f:
        catalog = read_po(f, locale="en")
    translated = set()
    for m in catalog:
        strings = m.string if isinstance(m.string, tuple) else (m.string,)
        if m.id and all(strings) and not m.fuzzy:
            translated.update(m.id if isinstance(m.id, tuple) else (m.id,))
    missing = sorted(m for m in found if m and m not in translated)
    assert "Factura tu ticket" in found  # templates are read too
    assert missing == [], "untranslated: run `make extract-messages` and translate"


def test_every_msgid_is_translated_once():
    """Entries appended by several changes must not repeat a msgid (the compiler keeps one
    silently, so the other translation is lost)."""
    import collections
    import re

    po = (ROOT / "translations" / "en" / "LC_MESSAGES" / "messages.po").read_text()
    ids = re.findall(r'^msgid "(.+)"$', po, re.M)
    assert [m for m, n in collections.Counter(ids).items() if n > 1] == []
