"""SW Sapien (SmarterWeb), through satcfdi's client (`satcfdi.pacs.swsapien.SWSapien`).

SW's REST services, as documented at developers.sw.com.mx (test environment
https://services.test.sw.com.mx and https://api.test.sw.com.mx; production
https://services.sw.com.mx and https://api.sw.com.mx):

- **Autenticación** (`POST /security/authenticate`, headers `user`/`password`) gives a bearer
  token; an account's "token infinito" (PAC_TOKEN) skips it.
- **Timbrado V4** (`POST /v4/cfdi33/stamp/v4`, multipart field `xml`) answers
  `{"status": "success", "data": {"uuid", "fechaTimbrado", "noCertificadoSAT", "cfdi", …}}`, or
  `{"status": "error", "message": "<code>. <text>", "messageDetail": …}`. Sending a document SW
  already stamped answers **"307. El comprobante contiene un timbre previo."** with the previous
  stamp in `data` (`cfdi`, or at least `tfd`). Every request carries the **`customid`** header
  ("Timbrado V4 – CustomID": a value of up to 100 characters that SW keeps 72 hours to prevent
  duplicates when a send fails uncontrolled); here it is derived from the document's Sello, so
  a retry of the same document always carries the same one (a duplicate answers
  "CFDI3307 - Timbre duplicado" with the previous stamp, handled as the 307).
- **Recuperar XML por UUID** (`GET /datawarehouse/v1/live/{uuid}` on the api host) answers the
  issued document's record, whose `urlXml` is where the stamped XML can be downloaded; the same
  service without a UUID searches the account's documents by date
  (`/datawarehouse/v1/live/?startDate=YYYY-MM-DD&endDate=YYYY-MM-DD`, ranges up to 30 days,
  records with `uuid`, `selloCFD` and `urlXml`, and `metaData.pageCount`). The pages after the
  first are asked for with a `page` parameter, which SW's SDKs never show: verify it against
  the test environment before relying on recovery for accounts with many documents a day.

- **Cancelación por XML** (`POST /cfdi33/cancel/xml`, multipart field `xml`: SAT's
  `Cancelacion` signed with the issuer's CSD, as satcfdi's `cancel_comprobante` sends it)
  answers `{"status": "success", "data": {"acuse": "<Acuse …>", "uuid": {"<UUID>": "201"}}}`
  (SAT's EstatusUUID), or a refusal like any other service. Whether the cancellation is done
  or waits for the receptor is asked to SAT's **Servicio de Consulta de CFDI**
  (ConsultaCFDIService; production https://consultaqr.facturaelectronica.sat.gob.mx, test
  https://pruebacfdiconsultaqr.cloudapp.net, `status_url` / PAC_STATUS_URL to override), the
  service SW's SDKs call for the status: `cancel_status`.

`stamp` returns the stamp of the answer, or for a 307 the previous one (from `data.cfdi`, else
looked up by the UUID of `data.tfd`): never a second UUID. `recover` is the issued-document
lookup by the document: it searches the records from the day before the CFDI's Fecha to three
days after it (stamping must happen within 72 hours) for the one whose `selloCFD` is the CFDI's
Sello, and downloads its XML; None when there is none. SW's datawarehouse may list a stamp some
seconds after it was made: a None then leads reconcile to send the document again, which SW
answers with the 307 and the previous stamp.

satcfdi provides the hosts, paths and request shapes; its transport (no timeout), its broken
user/password login and its error reading are replaced. Refusals raise
PacError(code, message, retryable=False); timeouts, connection failures and HTTP 5xx raise
PacError(retryable=True).
"""

from __future__ import annotations

import copy
import hashlib
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from lxml import etree
from satcfdi import __version__ as satcfdi_version
from satcfdi.pacs import Environment
from satcfdi.pacs.swsapien import SWSapien

from webapp.cfdi.pac import CancelResult, Pac, PacError, Stamped
from webapp.cfdi.pac.remote import (
    CANCEL_CODES,
    DEFAULT_TIMEOUT,
    PREVIOUSLY_CANCELLED,
    RECEIVED,
    SAT_STATUS_TEST_URL,
    SAT_STATUS_URL,
    RawCfdi,
    SignerSource,
    Transport,
    acuse_text,
    cancel_refusal,
    cancellation_request,
    query_sat_status,
    read_stamp,
    resolve_signer,
    retryable_status,
    sat_status_result,
    signed_cfdi,
    stamped_cfdi,
)
from webapp.cfdi.xsd import PARSER, TFD_NS

PREVIOUS_STAMP = frozenset({"307", "CFDI3307"})
SEARCH_DAYS_BEFORE = 1
SEARCH_DAYS_AFTER = 3
MAX_PAGES = 200
TOKEN_MARGIN = 60  # seconds before its expiry a login token is renewed
_CODE = re.compile(r"\s*([A-Z]{0,8}\d{2,6})\b")


class Refused(Exception):
    """SW answered something else than `status: success`."""

    def __init__(self, http_status: int, body: dict[str, Any]) -> None:
        self.http_status = http_status
        self.body = body
        self.message = str(body.get("message") or f"SW respondió HTTP {http_status}")
        match = _CODE.match(self.message)
        self.code = match.group(1) if match else f"http {http_status}"
        super().__init__(self.message)

    def error(self) -> PacError:
        """This refusal as a PacError (retryable only for server errors and throttling)."""
        detail = self.body.get("messageDetail")
        message = f"{self.message} ({detail})" if detail else self.message
        return PacError(self.code, message, retryable=retryable_status(self.http_status))


class SwClient(SWSapien):
    """satcfdi's SW client, sending through a `Transport` and to overridable hosts."""

    def __init__(
        self,
        environment: Environment,
        transport: Transport,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        url: str | None = None,
        api_url: str | None = None,
    ) -> None:
        super().__init__(token=token, user=username, password=password, environment=environment)
        self.transport = transport
        self.url = url.rstrip("/") if url else None
        self.api_url = api_url.rstrip("/") if api_url else None
        self.fixed_token = token
        self._username = username
        self._password = password
        self._login: tuple[str, float] | None = None
        self._login_lock = threading.Lock()
        self.token_fn = self.authorization

    def _host(self, service: str = "services") -> str:
        if service == "api" and self.api_url:
            return self.api_url
        if self.url:
            return self.url
        return super()._host(service)

    def authorization(self) -> str:
        """The Authorization header: the fixed token, or a login token renewed before expiry."""
        if self.fixed_token:
            return "Bearer " + self.fixed_token
        with self._login_lock:
            if self._login is None or time.time() > self._login[1]:
                body = self._authenticate(self._username, self._password)
                data = body.get("data") or {}
                token = data.get("token")
                if not token:
                    raise PacError("auth", "SW no devolvió un token", retryable=True)
                self._login = (token, _expiry(data.get("expires_in")))
            return "Bearer " + self._login[0]

    def forget_login(self) -> None:
        """Drop the login token (SW refused it): the next call logs in again."""
        with self._login_lock:
            self._login = None

    def _request(
        self,
        path: str,
        headers: Mapping[str, str] | None = None,
        method: str = "post",
        files: Any = None,
        json: Any = None,
        needs_token: bool = True,
        service: str = "services",
        params: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        response = self.transport.request(
            method.upper(),
            f"{self._host(service)}/{path.lstrip('/')}",
            headers={
                "Cache-Control": "no-cache",
                "User-Agent": satcfdi_version.__user_agent__,
                **({"Authorization": self.token_fn()} if needs_token else {}),
                **(headers or {}),
            },
            files=files,
            json=json,
            params=params,
        )
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            raise PacError(
                f"http {response.status_code}",
                f"SW respondió HTTP {response.status_code} sin JSON",
                retryable=response.ok or retryable_status(response.status_code),
            )
        if response.ok and body.get("status") == "success":
            return body
        raise Refused(response.status_code, body)

    def download(self, url: str) -> bytes:
        """The file at `url` (a record's `urlXml`)."""
        response = self.transport.request("GET", url)
        if not response.ok:
            raise PacError(
                f"http {response.status_code}",
                "SW no entregó el XML timbrado",
                retryable=True,
            )
        return response.content


class SwPac(Pac):
    """SW Sapien behind the `Pac` interface; the test environment unless `production`."""

    name = "sw"

    def __init__(
        self,
        *,
        token: str | None = None,
        username: str | None = None,
        password: str | None = None,
        url: str | None = None,
        api_url: str | None = None,
        production: bool = False,
        timeout: float = DEFAULT_TIMEOUT,
        status_url: str | None = None,
        signer: SignerSource = None,
    ) -> None:
        if not token and not (username and password):
            raise ValueError("SW needs a token, or a username and a password")
        self.client = SwClient(
            Environment.PRODUCTION if production else Environment.TEST,
            Transport(timeout),
            token=token,
            username=username,
            password=password,
            url=url,
            api_url=api_url,
        )
        self.status_url = status_url or (SAT_STATUS_URL if production else SAT_STATUS_TEST_URL)
        self.signer = signer
        self.test = not production

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> SwPac:
        """Build from the app's settings (PAC_TOKEN or PAC_USERNAME/PAC_PASSWORD, PAC_URL, …)."""
        return cls(
            token=settings.get("PAC_TOKEN") or None,
            username=settings.get("PAC_USERNAME") or None,
            password=settings.get("PAC_PASSWORD") or None,
            url=settings.get("PAC_URL") or None,
            api_url=settings.get("PAC_API_URL") or None,
            production=bool(settings.get("PAC_PRODUCTION")),
            timeout=float(settings.get("PAC_TIMEOUT_SECONDS") or DEFAULT_TIMEOUT),
            status_url=settings.get("PAC_STATUS_URL") or None,
        )

    @property
    def endpoint(self) -> str:
        """The services host (stamping) this instance calls."""
        return self.client._host("services")

    @property
    def api_endpoint(self) -> str:
        """The api host (issued-document lookups) this instance calls."""
        return self.client._host("api")

    def _call(self, action: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a client call, logging in again once if SW refused an expired login token."""
        try:
            return action(*args, **kwargs)
        except Refused as refused:
            if refused.http_status != 401 or self.client.fixed_token:
                raise
            self.client.forget_login()
            return action(*args, **kwargs)

    def stamp(self, xml: bytes) -> Stamped:
        """Stamp `xml` (Timbrado V4); the previous stamp when SW already stamped it (307)."""
        sello = signed_cfdi(xml).get("Sello")
        try:
            document = self._call(self.client.stamp, RawCfdi(xml), ref_id=custom_id(sello))
        except Refused as refused:
            if refused.code in PREVIOUS_STAMP:
                return self._previous(refused, sello)
            raise refused.error() from refused
        except (KeyError, TypeError, AttributeError) as exc:  # a success without its CFDI
            raise PacError("respuesta", "SW respondió sin el CFDI timbrado", True) from exc
        return read_stamp(document.xml, sello)

    def _previous(self, refused: Refused, sello: str) -> Stamped:
        """The stamp a 307 answer points to: `data.cfdi`, or the record of `data`'s UUID."""
        data = refused.body.get("data")
        data = data if isinstance(data, dict) else {}
        if data.get("cfdi"):
            return read_stamp(data["cfdi"], sello)
        uuid = data.get("uuid") or _tfd_uuid(data.get("tfd"))
        if uuid:
            found = self._by_uuid(uuid, sello)
            if found is not None:
                return found
        raise PacError(
            "307",
            "El CFDI ya fue timbrado y SW aún no entrega ese timbre; se recuperará después",
            retryable=True,
        )

    def _by_uuid(self, uuid: str, sello: str) -> Stamped | None:
        """The stamped XML of the issued document `uuid` (Recuperar XML por UUID)."""
        try:
            body = self._call(self.client.recover, uuid)
        except Refused as refused:
            raise refused.error() from refused
        for record in _records(body):
            return self._download(record, sello)
        return None

    def _download(self, record: Mapping[str, Any], sello: str) -> Stamped:
        url = record.get("urlXml")
        if not url:
            raise PacError("307", "SW aún no publica el XML timbrado", retryable=True)
        return read_stamp(self.client.download(url), sello)

    def recover(self, xml: bytes) -> Stamped | None:
        """The stamp SW made of `xml`, found among its issued documents by Sello; else None."""
        root = signed_cfdi(xml)
        sello = root.get("Sello")
        try:
            fecha = datetime.fromisoformat(root.get("Fecha", "")).date()
        except ValueError as exc:
            raise PacError("301", "Fecha ilegible en el CFDI") from exc
        start = fecha - timedelta(days=SEARCH_DAYS_BEFORE)
        end = fecha + timedelta(days=SEARCH_DAYS_AFTER)
        for record in self._search(start, end):
            if record.get("selloCFD") == sello:
                return self._download(record, sello)
        return None

    def _search(self, start: date, end: date) -> Iterator[Mapping[str, Any]]:
        """Every record SW lists for the account between `start` and `end`, page by page."""
        page, pages = 1, 1
        while page <= pages:
            if page > MAX_PAGES:
                raise PacError(
                    "busqueda", "Demasiados comprobantes para buscar en SW", retryable=True
                )
            params: dict[str, Any] = {"startDate": start.isoformat(), "endDate": end.isoformat()}
            if page > 1:
                params["page"] = page
            try:
                body = self._call(
                    self.client._request,
                    path="datawarehouse/v1/live/",
                    method="get",
                    service="api",
                    params=params,
                )
            except Refused as refused:
                raise refused.error() from refused
            yield from _records(body)
            meta = (body.get("data") or {}).get("metaData") or {}
            try:
                pages = int(meta.get("pageCount") or 1)
            except (TypeError, ValueError):
                pages = 1
            page += 1

    # --- cancellation ---------------------------------------------------------------------

    def with_signer(self, signer: SignerSource) -> SwPac:
        """A copy cancelling with the issuer's CSD `signer` (same account, same login)."""
        acting = copy.copy(self)
        acting.signer = signer
        return acting

    def cancel(self, xml: bytes, motive: str, replacement_uuid: str | None = None) -> CancelResult:
        """Ask SAT to cancel `xml` (Cancelación por XML: the `Cancelacion` signed here with the
        issuer's CSD, so the key never leaves). SW answers the EstatusUUID and the acuse, which
        do not say whether the receptor must accept: SAT's consulta settles it, and when it
        cannot tell yet the request is pending (cancel_status asks again)."""
        cfdi = stamped_cfdi(xml)
        request = cancellation_request(cfdi, motive, replacement_uuid, resolve_signer(self.signer))
        document = etree.tostring(request.to_xml(), encoding="UTF-8")
        try:
            body = self._call(
                self.client._request,
                path="cfdi33/cancel/xml",
                files=[("xml", ("xml", document, "text/xml"))],
            )
        except Refused as refused:
            raise refused.error() from refused
        data = body.get("data") if isinstance(body.get("data"), dict) else {}
        codes = data.get("uuid") if isinstance(data.get("uuid"), dict) else {}
        code = next((str(c) for u, c in codes.items() if str(u).upper() == cfdi.uuid), "")
        acuse = acuse_text(data.get("acuse")) if isinstance(data.get("acuse"), str) else None
        if code not in (RECEIVED, PREVIOUSLY_CANCELLED):
            if not code:
                raise PacError("respuesta", "SW respondió sin el estado de la cancelación", True)
            raise cancel_refusal(code)
        try:
            found = self.cancel_status(xml)
        except PacError:  # SAT does not list it yet, or cannot be reached: ask later
            found = None
        if found is None:
            return CancelResult("pending", acuse, CANCEL_CODES[code])
        return CancelResult(found.status, acuse, found.message)

    def cancel_status(self, xml: bytes) -> CancelResult:
        """SAT's status of `xml` (Servicio de Consulta de CFDI, as SW's SDKs query it)."""
        fields = query_sat_status(
            self.client.transport,
            self.status_url,
            stamped_cfdi(xml),
            verify=self.status_url != SAT_STATUS_TEST_URL,  # SAT's test host: no valid TLS
        )
        return sat_status_result(
            fields.get("Estado"), fields.get("EstatusCancelacion"), fields.get("CodigoEstatus", "")
        )


def custom_id(sello: str) -> str:
    """The `customid` of a document: the same for every send of it, 64 characters."""
    return hashlib.sha256(sello.encode("ascii")).hexdigest()


def _records(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    data = body.get("data")
    records = data.get("records") if isinstance(data, dict) else None
    return [r for r in records if isinstance(r, dict)] if isinstance(records, list) else []


def _tfd_uuid(tfd: object) -> str | None:
    """The UUID of a TimbreFiscalDigital given as XML text."""
    if not isinstance(tfd, str) or not tfd.strip():
        return None
    try:
        root = etree.fromstring(tfd.strip().encode("utf-8"), parser=PARSER)
    except (etree.XMLSyntaxError, ValueError):
        return None
    if root.tag != f"{{{TFD_NS}}}TimbreFiscalDigital":
        root = root.find(f".//{{{TFD_NS}}}TimbreFiscalDigital")
    return root.get("UUID") if root is not None else None


def _expiry(expires_in: object) -> float:
    """When a login token must be renewed: SW gives `expires_in` as a Unix time."""
    now = time.time()
    try:
        value = float(expires_in)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return now + 3600 - TOKEN_MARGIN
    if value < 10**9:  # a duration rather than a moment
        value += now
    return value - TOKEN_MARGIN


__all__ = ["SwPac", "custom_id"]
