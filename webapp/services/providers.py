"""The stamping providers and signers of a deployment: one per process, cached per issuer.

    providers = Providers(config, session=lambda: db.session)
    providers.deployment()          # the deployment's provider (settings PAC, PAC_*)
    providers.pac_for(issuer)       # the issuer's own provider when it has one, else the above
    providers.signer_for(issuer)    # the issuer's CSD (CSDError, DecryptionError)

Flask-free: `config` is any mapping of the app's settings.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from satcfdi.models import Signer
from sqlalchemy.orm import Session

from webapp import crypto
from webapp.cfdi.pac import Pac, PacError
from webapp.cfdi.pac.sandbox import SandboxPac
from webapp.csd import CSDError, issuer_signer
from webapp.models import Issuer
from webapp.services.sri_authority import Authority, build_authority
from webapp.sri.keystore import signing_key
from webapp.sri.p12 import SigningKey

PAC_CREDENTIALS = {"finkok": ("username", "password"), "sw": ("token",)}
"""The credentials each provider takes from an issuer (webapp.admin.settings stores them)."""
_ISSUER_PACS_MAX = 128


def build_pac(settings: Mapping[str, Any]) -> Pac:
    """The provider named by settings["PAC"], configured from the PAC_* settings."""
    name = settings["PAC"]
    if name == "sandbox":
        return SandboxPac(Path(settings["PAC_SANDBOX_DIR"]))
    if name == "finkok":
        from webapp.cfdi.pac.finkok import FinkokPac

        return FinkokPac.from_settings(settings)
    if name == "sw":
        from webapp.cfdi.pac.sw import SwPac

        return SwPac.from_settings(settings)
    raise RuntimeError(f"unknown PAC {name!r}")  # config.check refuses it at start-up


def _issuer_settings(config: Mapping[str, Any], provider: str, credentials: dict) -> dict:
    """The app's PAC settings with the issuer's provider and credentials in place. The
    deployment's URLs belong to its own provider: they are kept only for that one."""
    settings = dict(config)
    settings["PAC"] = provider
    if provider != config["PAC"]:
        settings.update(PAC_URL=None, PAC_API_URL=None)
    settings.update(PAC_USERNAME=None, PAC_PASSWORD=None, PAC_TOKEN=None)
    settings.update({f"PAC_{name.upper()}": value for name, value in credentials.items()})
    return settings


class Providers:
    """Which provider stamps for an issuer and which CSD signs for it."""

    def __init__(self, config: Mapping[str, Any], session: Callable[[], Session]):
        self.config = config
        self._session = session
        self._deployment: Pac | None = None
        self._sri: Authority | None = None
        self._issuer_pacs: dict[tuple, Pac] = {}

    def deployment(self) -> Pac:
        """The deployment's provider (settings PAC and PAC_*), built on first use."""
        if self._deployment is None:
            self._deployment = build_pac(self.config)
        return self._deployment

    def replace_deployment(self, pac: Pac | None) -> None:
        """Use `pac` as the deployment's provider from now on (None: build it again)."""
        self._deployment = pac
        self._issuer_pacs.clear()

    def fernet(self):
        return crypto.cipher_from_config(self.config)

    def sri(self) -> Authority:
        """The deployment's SRI (settings SRI, SRI_*): the sandbox or SRI's web services."""
        if self._sri is None:
            self._sri = build_authority(self.config)
        return self._sri

    def replace_sri(self, authority: Authority | None) -> None:
        """Use `authority` as the deployment's SRI from now on (None: build it again)."""
        self._sri = authority

    def sri_key_for(self, issuer: Issuer) -> SigningKey:
        """An Ecuadorian issuer's .p12, opened; P12Error when it has none, DecryptionError
        when the data key is not the one it was stored under."""
        return signing_key(issuer, self.fernet())

    def signer_for(self, issuer: Issuer) -> Signer:
        """The issuer's CSD; CSDError when it has none, crypto.DecryptionError when the data
        key is not the one it was stored under."""
        return issuer_signer(issuer, self.fernet())

    def pac_for(self, issuer: Issuer) -> Pac:
        """The stamping provider of `issuer`: its own (Issuer.pac_provider, with its encrypted
        credentials) when set, else the deployment's. Providers that cancel with the issuer's
        CSD (Finkok, SW) get it through `with_signer`, loaded when a cancellation is signed.
        Cached per issuer and credentials, so replaced credentials take effect at once."""
        provider = issuer.pac_provider
        cache = self._issuer_pacs
        if not provider or (
            provider == self.config["PAC"] and not issuer.pac_credentials_encrypted
        ):
            shared = self.deployment()
            key = (issuer.id, self.config["PAC"], id(shared))
            if key not in cache:
                acting = shared.with_signer(self._signer_loader(issuer.id))
                if acting is shared:  # the sandbox signs nothing with the issuer's CSD
                    return shared
                self._remember(key, acting)
            return cache[key]
        sealed = bytes(issuer.pac_credentials_encrypted or b"")
        key = (issuer.id, provider, hashlib.sha256(sealed).hexdigest())
        if key not in cache:
            credentials = json.loads(crypto.decrypt(sealed, self.fernet())) if sealed else {}
            built = build_pac(_issuer_settings(self.config, provider, credentials))
            self._remember(key, built.with_signer(self._signer_loader(issuer.id)))
        return cache[key]

    def _remember(self, key: tuple, built: Pac) -> None:
        if len(self._issuer_pacs) >= _ISSUER_PACS_MAX:
            self._issuer_pacs.pop(next(iter(self._issuer_pacs)))
        self._issuer_pacs[key] = built

    def _signer_loader(self, issuer_id: int) -> Callable[[], Signer]:
        """Loads the CSD of the issuer `issuer_id` as stored now (a replaced CSD is used at
        once); PacError("sin-csd") when it has none or it cannot be opened."""

        def load() -> Signer:
            issuer = self._session().get(Issuer, issuer_id)
            if issuer is None:
                raise PacError("sin-csd", "El emisor ya no existe")
            try:
                return self.signer_for(issuer)
            except (CSDError, crypto.DecryptionError) as exc:
                raise PacError(
                    "sin-csd",
                    "No se pudo usar el CSD del emisor para firmar la cancelación: cárguelo de "
                    "nuevo en los ajustes del emisor",
                ) from exc

        return load

    def status(self) -> tuple[str, bool, str]:
        """(provider name, usable, detail) for the dashboard: the sandbox's own certificate
        loads; a remote provider is configured (its outages show as failed invoices)."""
        name = self.config["PAC"]
        try:
            provider = self.deployment()
            if isinstance(provider, SandboxPac):
                provider.signer()
        except Exception as exc:  # noqa: BLE001 (shown to the operator, not raised)
            return name, False, str(exc)[:200]
        return name, True, ""
