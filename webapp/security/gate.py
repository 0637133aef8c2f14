"""The sign-in forms' Flask edge: one round of a sign-in form at any door.

    gate = Gate(CUSTOMERS, "signin_failures")
    if form.validate_on_submit():
        result = gate.attempt(form.identifier.data, form.password.data)
        ...                                   # LOCKED: 423 page; SIGNED_IN: open a session
    render(..., error=gate.error, captcha_token=gate.captcha_token(), ...), gate.status

It keeps this browser's failure count in the session, reads the captcha from the form,
audits with the request's address and tells `signin.attempt` the time; the rules themselves
are in webapp.security.signin, the same for every door.
"""

from __future__ import annotations

from datetime import UTC, datetime

from flask import current_app, request, session
from flask_babel import lazy_gettext as _l

from webapp.extensions import db
from webapp.security import audit
from webapp.security.captcha import store as captcha
from webapp.security.signin import Door, Outcome, Result, attempt, needs_captcha

REFUSED = {
    "customer": _l("El RFC, el correo o la contraseña no son correctos."),
    "staff": _l("El correo o la contraseña no son correctos."),
}
CAPTCHA_WRONG = _l("Escriba los números de la imagen o del audio tal como aparecen.")


def captcha_solved() -> bool:
    """The form's captcha answered right (each token is good for one try)."""
    return captcha.verify(
        request.form.get(captcha.TOKEN_FIELD), request.form.get(captcha.FORM_FIELD)
    )


class Gate:
    def __init__(self, door: Door, failures_key: str):
        self.door = door
        self.failures_key = failures_key
        self.policy = current_app.config["SECURITY_POLICY"]
        self.failures = int(session.get(failures_key, 0))
        self.result: Result | None = None

    def attempt(self, identifier: str | None, password: str | None) -> Result:
        self.result = attempt(
            db.session,
            self.door,
            self.policy,
            identifier,
            password or "",
            browser_failures=self.failures,
            captcha_solved=captcha_solved,
            audit=audit.record_for,
            now=datetime.now(UTC),
        )
        if self.result.outcome is Outcome.SIGNED_IN:
            session.pop(self.failures_key, None)
        elif self.result.outcome is not Outcome.LOCKED:
            self.failures += 1
            session[self.failures_key] = self.failures
        return self.result

    @property
    def error(self) -> str | None:
        """The message above the form: the same for every wrong identifier or password."""
        if self.result is None or self.result.outcome is Outcome.SIGNED_IN:
            return None
        if self.result.outcome is Outcome.CAPTCHA:
            return str(CAPTCHA_WRONG)
        return str(REFUSED[self.door.name])

    @property
    def captcha_errors(self) -> list[str]:
        """The message beside the captcha, when the one shown was not solved."""
        if self.result is None or self.result.outcome is not Outcome.CAPTCHA:
            return []
        return [str(CAPTCHA_WRONG)]

    @property
    def status(self) -> int:
        return 401 if self.error else 200

    def captcha_token(self) -> str | None:
        """A new captcha for the form, when this browser must solve one."""
        if needs_captcha(self.policy, self.failures) and captcha.enabled():
            return captcha.issue()[0]
        return None


def per_subject_key(door: Door, field: str):
    """A flask-limiter key function: the subject the form's `field` names, however spelt."""
    return lambda: door.limit_key(db.session, request.form.get(field))
