"""SRI behind the stamping road's provider interface (cfdi.pac.Pac): an Ecuadorian invoice
goes the same road as a CFDI (reserve, sign, send, record; reconcile), and SRI's reception
and authorisation take the place of the PAC's stamp.

    authority = build_authority(settings)     # SandboxSri (SRI="sandbox") or SriClient ("sri")
    pac = SriPac(authority, mark=...)         # stamp(signed_xml) / recover(signed_xml)

The road's states map to SRI's: draft and signed are the invoice's own; "stamping" is sent
(Invoice.authority_state "sent", then "received" once SRI answers RECIBIDA); stamped is
AUTORIZADO; failed is DEVUELTA ("returned") or NO AUTORIZADO ("not_authorised"). `mark`
records each of those on the invoice as it happens (services.stamping binds it), so a crash
leaves the last one SRI answered.

The rules of webapp.sri.client hold: a document is sent once; when no answer came (timeout,
cut connection), `stamp` raises a retryable PacError and the invoice stays "stamping";
reconcile then calls `recover`, which asks SRI by clave de acceso: AUTORIZADO is recorded,
NO AUTORIZADO releases it (DocumentRefused), EN PROCESO waits, and nothing under the clave
answers None, so the road sends the SAME signed XML again (same clave; SRI answers a
duplicate with 43/70, read as received).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from webapp.cfdi.pac import DocumentRefused, Pac, PacError, Stamped
from webapp.models import AuthorityState
from webapp.sri.client import (
    Authorisation,
    AuthorisationState,
    Environment,
    Reception,
    SriClient,
    SriError,
    access_key_of,
)


class Authority(Protocol):
    """SRI's offline services: the real client or the app's sandbox."""

    environment: Environment

    def send(self, signed_xml: bytes) -> Reception: ...

    def authorise(self, access_key: str) -> Authorisation: ...


def build_authority(settings: Mapping[str, Any]) -> Authority:
    """The deployment's SRI: settings["SRI"] "sandbox" (default) or "sri"."""
    if (settings.get("SRI") or "sandbox") == "sandbox":
        from webapp.sri.sandbox import SandboxSri

        return SandboxSri(Path(settings["SRI_SANDBOX_DIR"]))
    return SriClient.from_settings(settings)


def _messages(messages) -> str:
    return "; ".join(str(m) for m in messages)[:1500] or "sin mensajes del SRI"


class SriPac(Pac):
    """One invoice's way through SRI (see the module docstring)."""

    def __init__(
        self,
        authority: Authority,
        *,
        mark: Callable[[AuthorityState], None] = lambda state: None,
        polls: int = 3,
        pause: float = 0.5,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.authority = authority
        self.mark = mark
        self.polls, self.pause, self._sleep = polls, pause, sleep
        self.test = authority.environment is Environment.TEST
        self.name = "sri-sandbox" if type(authority).__name__ == "SandboxSri" else "sri"

    @property
    def ambiente(self) -> str:
        return self.authority.environment.value

    def stamp(self, xml: bytes) -> Stamped:
        self.mark(AuthorityState.SENT)
        try:
            reception = self.authority.send(xml)
        except SriError as error:  # may have reached SRI: reconcile asks by clave
            raise PacError("sri-sin-respuesta", str(error), retryable=True) from error
        if not reception.received:
            self.mark(AuthorityState.RETURNED)
            raise PacError("devuelta", _messages(reception.messages), retryable=False)
        self.mark(AuthorityState.RECEIVED)
        for poll in range(self.polls):
            stamped = self._decision(reception.access_key, xml)
            if stamped is not None:
                return stamped
            if poll + 1 < self.polls:
                self._sleep(self.pause * 2**poll)
        raise PacError("en-proceso", "El SRI aún no autoriza la factura", retryable=True)

    def recover(self, xml: bytes) -> Stamped | None:
        key = access_key_of(xml)
        answer = self._authorise(key)
        if answer.state is AuthorisationState.NOT_FOUND:
            return None  # never received: the road sends the same XML again
        stamped = self._settled(answer, xml)
        if stamped is None:
            raise PacError("en-proceso", "El SRI aún no autoriza la factura", retryable=True)
        return stamped

    def _decision(self, key: str, xml: bytes) -> Stamped | None:
        return self._settled(self._authorise(key), xml)

    def _authorise(self, key: str) -> Authorisation:
        try:
            return self.authority.authorise(key)
        except SriError as error:
            raise PacError("sri-sin-respuesta", str(error), retryable=True) from error

    def _settled(self, answer: Authorisation, xml: bytes) -> Stamped | None:
        """AUTORIZADO: the stamp to record; NO AUTORIZADO: DocumentRefused; else None."""
        if answer.state is AuthorisationState.AUTHORISED:
            self.mark(AuthorityState.AUTHORISED)
            return Stamped(
                uuid=answer.number or answer.access_key,
                fecha_timbrado=answer.authorised_at or datetime.now(UTC),
                xml=xml,
                no_certificado_sat="",
            )
        if answer.state is AuthorisationState.NOT_AUTHORISED:
            self.mark(AuthorityState.NOT_AUTHORISED)
            raise DocumentRefused("no-autorizado", _messages(answer.messages))
        return None
