"""Spanish messages for password problems."""

from __future__ import annotations

from flask_babel import lazy_gettext as _l

from webapp.security.passwords import PasswordProblem
from webapp.security.policy import SecurityPolicy


def password_messages(problems, policy: SecurityPolicy) -> list[str]:
    """One sentence per problem, listing what is missing."""
    texts = {
        PasswordProblem.TOO_SHORT: _l(
            "Use al menos %(n)s caracteres.", n=policy.password_min_length
        ),
        PasswordProblem.TOO_LONG: _l(
            "Use como máximo %(n)s caracteres.", n=policy.password_max_length
        ),
        PasswordProblem.NO_UPPERCASE: _l("Incluya al menos una letra mayúscula."),
        PasswordProblem.NO_DIGIT: _l("Incluya al menos un número."),
        PasswordProblem.NO_PUNCTUATION: _l(
            "Incluya al menos un signo de puntuación, por ejemplo . , ; ! ?"
        ),
        PasswordProblem.COMMON: _l(
            "Esa contraseña es de las más usadas y fácil de adivinar; elija otra. Una frase de "
            "varias palabras es fácil de recordar y difícil de adivinar."
        ),
        PasswordProblem.CONTEXT: _l(
            "No use su RFC, su correo ni el nombre del portal en la contraseña."
        ),
        PasswordProblem.MISMATCH: _l("Las contraseñas no coinciden."),
    }
    return [texts[p] for p in problems]
