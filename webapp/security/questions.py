"""Secret questions (seed preset): the choices, and answers normalised before hashing."""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata

from flask_babel import lazy_gettext as _l

QUESTIONS = {
    "mascota": _l("¿Cómo se llamaba su primera mascota?"),
    "escuela": _l("¿Cómo se llamaba su escuela primaria?"),
    "ciudad": _l("¿En qué ciudad nació su madre?"),
    "comida": _l("¿Cuál era su comida favorita de niño?"),
    "amigo": _l("¿Cómo se llamaba su mejor amigo de la infancia?"),
}


def normalize_answer(text: str) -> str:
    """Case, accents, punctuation and repeated spaces do not count."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(re.sub(r"[^\w\s]", " ", plain).split())


def decoy_question(secret: str, rfc: str, email: str) -> str:
    """The question shown when RFC and email match no account: always the same for the same
    data, so that the step does not reveal whether the account exists."""
    digest = hmac.new(secret.encode(), f"{rfc}|{email}".encode(), hashlib.sha256).digest()
    keys = sorted(QUESTIONS)
    return keys[digest[0] % len(keys)]
