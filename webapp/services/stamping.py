"""One road for stamping: every caller (the ticket flow, Sustituir, the factura global and
its correction, reconcile) stamps through a `Stamping`, which knows each issuer's provider
and signer, queues the email in the commit that records the stamp, logs every PAC call, and
answers with one `Outcome` that views map to pages.

    stamping = Stamping(providers, mail=queue_email)
    outcome = stamping.issue(session, request, now)   # the ticket flow: reserve, then stamp
    outcome = stamping.finish(session, invoice)       # any reserved invoice (a second press)
    stamping.reconcile(session, now)                  # every invoice left on its way, any state
    files = files_with_pdf(session, invoice)          # every download: XML and PDF

The PDF, a representation of the stamped XML (about 90 % of a stamping's CPU), is not made
in the stamp's commit: `files_with_pdf` renders it on the first download and keeps it, and
the email's PDF is rendered by the mail worker at delivery (`invoice_pdf`, the "invoice_pdf"
renderer of webapp.mail.deferred), which keeps it the same way.

Flask-free: `mail(session, invoice)` is given by the app (webapp.wiring), which renders the
message from templates.
"""

from __future__ import annotations

import enum
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlalchemy.orm import Session, object_session
from sqlalchemy.orm.attributes import set_committed_value

from webapp import crypto
from webapp.cfdi.pac import DocumentRefused, Pac, PacError, Stamped
from webapp.cfdi.pdf import render_pdf
from webapp.csd import CSDError
from webapp.issuing import credits, issue, retention, sri_invoice
from webapp.models import AuthorityState, Invoice, InvoiceStatus, Issuer
from webapp.services.providers import Providers
from webapp.services.sri_authority import SriPac
from webapp.sri.p12 import P12Error
from webapp.sri.reading import factura_from_xml
from webapp.sri.ride import render_ride

log = logging.getLogger(__name__)

STAMPING_MARGIN_SECONDS = 15
"""Beyond the PAC's timeout, before an invoice at the PAC counts as left by a dead process."""


class Result(enum.StrEnum):
    STAMPED = "stamped"  # valid (or a test stamp: Invoice.test_stamp)
    PENDING = "pending"  # on its way: another press is stamping it, or the PAC did not answer
    REFUSED = "refused"  # the PAC refused it (or it could not be made): tickets free again
    UNAVAILABLE = "unavailable"  # the issuer cannot stamp now (CSD, credits, licence): nothing
    # was reserved; Outcome.code says why (credits.CODES: the issuer's account with the platform)
    TAKEN = "taken"  # a ticket was invoiced meanwhile by another request


@dataclass(frozen=True)
class Outcome:
    """What became of a stamping. `reason` is for staff and the log (the provider's message,
    what is wrong with the CSD); `code` the provider's code when it refused."""

    result: Result
    invoice: Invoice | None = None
    reason: str = ""
    code: str = ""


class Unavailable(Exception):
    """The issuer cannot sign now. `code`: "no_csd" (none stored, or not usable: `detail`
    says why), "data_key" (stored under another DATA_KEY), "no_credits" (a metered issuer
    without stamp credits) or "licence_expired" (past its licence's grace period: `expired_at`
    says when it expired); `reason` is for the log."""

    def __init__(
        self, code: str, reason: str, detail: str = "", expired_at: datetime | None = None
    ):
        super().__init__(reason)
        self.code, self.reason, self.detail = code, reason, detail
        self.expired_at = expired_at


def filename(invoice: Invoice, ext: str) -> str:
    if invoice.issuer.country == "EC":  # RUC_estab-ptoEmi-secuencial_clave
        return f"{invoice.issuer.rfc}_{invoice.serie}-{invoice.folio:09d}_{invoice.uuid}.{ext}"
    return f"{invoice.issuer.rfc}_{invoice.serie}{invoice.folio}_{invoice.uuid}.{ext}"


def pdf_of(invoice: Invoice, xml: bytes) -> bytes:
    """The representación impresa of the stamped `xml`, marked as a test when its stamp is:
    the CFDI's PDF, or an SRI factura's RIDE."""
    issuer = invoice.issuer
    if issuer.country == "EC":
        factura, clave = factura_from_xml(xml)
        return render_ride(
            factura, clave, invoice.uuid or clave, invoice.stamped_at, factura.ambiente
        )
    return render_pdf(
        xml,
        branch_name=invoice.branch.name,
        sandbox=invoice.test_stamp,
        logo=issuer.logo if issuer.logo_type == "image/png" else None,
        color=issuer.brand_color,
    )


INVOICE_PDF = "invoice_pdf"
"""The mail worker's renderer of an invoice's PDF (webapp.mail.deferred; registered by the
app: webapp.wiring)."""


def files_with_pdf(session: Session, invoice: Invoice) -> retention.Files:
    """The invoice's XML and PDF wherever they are (retention.files_of), its PDF rendered now
    and kept when a stamped (or since cancelled) invoice has none yet; commits the session
    then. Two first downloads at once both get the PDF the first one kept (retention.keep_pdf).

    An archived invoice without a PDF gets one too, rendered from its archived XML and kept
    in the archive, compressed: the files of an invoice past the retention window are still
    its files, and every later download answers the same bytes without rendering again.
    An invoice without XML (demo history, never stamped) has no PDF either.
    """
    try:
        return _files_rendering_pdf(session, invoice)
    except Exception:  # noqa: BLE001 - the XML is the legal record; the PDF is tried again
        log.exception("PDF of invoice %s not rendered; tried again on the next request", invoice.id)
        session.rollback()
        return retention.files_of(session, invoice)


def _files_rendering_pdf(session: Session, invoice: Invoice) -> retention.Files:
    """files_with_pdf, letting a rendering failure through."""
    files = retention.files_of(session, invoice)
    if files.pdf is not None or files.xml is None or invoice.status not in retention.WITH_FILES:
        return files
    started = time.perf_counter()
    pdf = pdf_of(invoice, files.xml)
    log.info(
        "PDF of invoice %s rendered in %s ms",
        invoice.id,
        round((time.perf_counter() - started) * 1000, 1),
    )
    return retention.Files(files.xml, retention.keep_pdf(session, invoice, pdf))


def invoice_pdf(session: Session, invoice_id: int) -> bytes:
    """The PDF of invoice `invoice_id` for an email, kept on the invoice (files_with_pdf):
    rendered only when no download or earlier email rendered it. LookupError when the
    invoice is gone or has no stamped XML to print."""
    invoice = session.get(Invoice, invoice_id)
    if invoice is None:
        raise LookupError(f"invoice {invoice_id} does not exist")
    pdf = _files_rendering_pdf(session, invoice).pdf  # a failure is the delivery's failure
    if pdf is None:
        raise LookupError(f"invoice {invoice_id} has no stamped XML to print")
    return pdf


class _LoggedPac(Pac):
    """A provider whose stamp and recover calls are logged: provider, duration, outcome
    (never the XML nor credentials)."""

    def __init__(self, pac: Pac, issuer_rfc: str):
        self.pac, self.test = pac, pac.test
        self.name = getattr(pac, "name", type(pac).__name__)
        self.issuer_rfc = issuer_rfc

    def _call(self, what: str, xml: bytes):
        started = time.perf_counter()
        outcome = "error"
        try:
            answer = getattr(self.pac, what)(xml)
            outcome = "ok" if answer is not None else "not-found"
            return answer
        except PacError as error:
            outcome = f"{'retryable' if error.retryable else 'refused'}:{error.code}"
            raise
        finally:
            ms = round((time.perf_counter() - started) * 1000, 1)
            log.info(
                "PAC %s %s for %s: %s in %s ms",
                self.name,
                what,
                self.issuer_rfc,
                outcome,
                ms,
                extra={"provider": self.name, "call": what, "duration_ms": ms, "outcome": outcome},
            )

    def stamp(self, xml: bytes) -> Stamped:
        return self._call("stamp", xml)

    def recover(self, xml: bytes) -> Stamped | None:
        return self._call("recover", xml)


class Stamping:
    """The stamping service of one deployment (one per process)."""

    def __init__(
        self,
        providers: Providers,
        *,
        mail: Callable[[Session, Invoice], None],
    ):
        self.providers = providers
        self.mail = mail

    def left_after(self, status: InvoiceStatus) -> timedelta:
        """How long an invoice stays in `status` before it counts as left by a dead process:
        a draft or signed one, ABANDONED_AFTER; one at the PAC, the PAC's timeout and a
        margin (a living process has its answer, or gave up, by then)."""
        if status is InvoiceStatus.STAMPING:
            timeout = float(self.providers.config.get("PAC_TIMEOUT_SECONDS") or 30)
            return timedelta(seconds=timeout + STAMPING_MARGIN_SECONDS)
        return issue.ABANDONED_AFTER

    # --- who stamps and signs -------------------------------------------------------------

    def pac_for(self, issuer: Issuer) -> Pac:
        return self.providers.pac_for(issuer)

    def signer_for(self, issuer: Issuer):
        """The issuer's Signer; Unavailable with the reason when its CSD cannot be used."""
        try:
            return self.providers.signer_for(issuer)
        except CSDError as exc:
            reason = f"issuer {issuer.rfc} has no usable CSD: {exc}"
            raise Unavailable("no_csd", reason, str(exc)) from exc
        except crypto.DecryptionError as exc:
            reason = f"the CSD of issuer {issuer.rfc} does not open with this DATA_KEY"
            raise Unavailable("data_key", reason) from exc

    def sri_key_for(self, issuer: Issuer):
        """An Ecuadorian issuer's .p12 (SigningKey); Unavailable when it cannot sign now."""
        try:
            key = self.providers.sri_key_for(issuer)
        except P12Error as exc:
            reason = f"issuer {issuer.rfc} has no usable .p12: {exc}"
            raise Unavailable("no_csd", reason, str(exc)) from exc
        except crypto.DecryptionError as exc:
            reason = f"the .p12 of issuer {issuer.rfc} does not open with this DATA_KEY"
            raise Unavailable("data_key", reason) from exc
        if key.valid_to <= datetime.now(UTC):
            detail = f"El certificado de firma venció el {key.valid_to:%d/%m/%Y}."
            raise Unavailable("no_csd", f"the .p12 of issuer {issuer.rfc} expired", detail)
        return key

    def readiness(self, issuer: Issuer, now: datetime | None = None) -> Unavailable | None:
        """Why the issuer cannot stamp now (for staff), or None when it can: its licence and
        stamp credits (webapp.issuing.credits), then its CSD or .p12."""
        refused = credits.refusal(object_session(issuer), issuer, now or datetime.now(UTC))
        if refused is not None:
            return Unavailable(refused.code, refused.reason, expired_at=refused.expired_at)
        return self.signing_readiness(issuer)

    def signing_readiness(self, issuer: Issuer) -> Unavailable | None:
        """Why the issuer's CSD (or .p12) cannot sign now, or None when it can."""
        try:
            if issuer.country == "EC":
                self.sri_key_for(issuer)
            else:
                self.signer_for(issuer)
        except Unavailable as problem:
            return problem
        return None

    # --- the road -------------------------------------------------------------------------

    def issue(self, session: Session, request: issue.Request, issuer: Issuer, now) -> Outcome:
        """The ticket flow: check the issuer can stamp (its licence, credits and CSD, before
        anything is reserved), reserve the tickets (or find the invoice made with this
        request's key; a metered issuer pays its credit there), then stamp. A request whose
        invoice exists is finished whatever the issuer's credits: it was paid for."""
        problem = self.readiness(issuer, now)
        paid = problem is not None and problem.code in credits.CODES
        if paid and issue.by_key(session, request.idempotency_key) is not None:
            problem = self.signing_readiness(issuer)  # paid already: only signing counts
        if problem is not None:
            log.error("cannot stamp: %s", problem.reason)
            return Outcome(Result.UNAVAILABLE, reason=problem.reason, code=problem.code)
        try:
            invoice = issue.reserve(session, request, now)
        except issue.TicketsTaken:
            return Outcome(Result.TAKEN)
        except credits.Refused as refused:  # the last credit went to another request meanwhile
            log.warning("cannot stamp: %s", refused.reason)
            return Outcome(Result.UNAVAILABLE, reason=refused.reason, code=refused.code)
        return self.finish(session, invoice)

    def finish(self, session: Session, invoice: Invoice, *, wait_seconds: float = 2.0) -> Outcome:
        """Take a reserved invoice as far as it goes now."""
        if invoice.status is InvoiceStatus.STAMPED:
            return Outcome(Result.STAMPED, invoice)
        if invoice.status is InvoiceStatus.FAILED:
            return Outcome(Result.REFUSED, invoice, reason=invoice.error or "")
        if invoice.status is InvoiceStatus.CANCELLED:
            return Outcome(Result.STAMPED, invoice)
        # At the PAC for longer than its timeout: its process is gone, settle it now.
        self.settle_if_left(session, invoice, datetime.now(UTC))
        try:
            self.stamp(session, invoice, wait_seconds=wait_seconds)
        except issue.StampingFailed as failure:
            log.warning("stamping of invoice %s refused: %s", invoice.id, failure.error)
            return Outcome(Result.REFUSED, invoice, failure.error.message, failure.error.code)
        except PacError as error:  # no answer: reconcile settles it
            log.warning("stamping of invoice %s not answered: %s", invoice.id, error)
            return Outcome(Result.PENDING, invoice, error.message, error.code)
        return self._outcome(invoice)

    @staticmethod
    def _outcome(invoice: Invoice) -> Outcome:
        if invoice.status is InvoiceStatus.STAMPED:
            return Outcome(Result.STAMPED, invoice)
        if invoice.status is InvoiceStatus.FAILED:
            return Outcome(Result.REFUSED, invoice, reason=invoice.error or "")
        return Outcome(Result.PENDING, invoice)

    def stamp(self, session: Session, invoice: Invoice, *, wait_seconds: float = 2.0) -> Invoice:
        """The domain's stamp with this deployment's parts: for the domain functions that
        stamp on their way (issuing.replace, issuing.global_invoice). Raises StampingFailed,
        (also when the issuer's CSD cannot sign it: released) or a retryable PacError."""
        issuer = invoice.issuer
        if issuer.country == "EC":
            sri = self._sri_pac(session, invoice)

            def make(reserved: Invoice) -> tuple[bytes, dict]:
                try:
                    key = self.sri_key_for(issuer)
                except Unavailable as problem:
                    raise PacError("sin-firma", problem.detail or problem.reason) from problem
                xml, clave = sri_invoice.signed_xml(reserved, key, sri.ambiente)
                return xml, {"access_key": clave}

            return issue.stamp(
                session,
                invoice,
                signer=None,
                make=make,
                pac=_LoggedPac(sri, issuer.rfc),
                on_stamped=lambda stamped: self.mail(session, stamped),
                wait_seconds=wait_seconds,
            )
        return issue.stamp(
            session,
            invoice,
            signer=lambda: self.signer_for(issuer),
            pac=_LoggedPac(self.pac_for(issuer), issuer.rfc),
            on_stamped=lambda stamped: self.mail(session, stamped),
            wait_seconds=wait_seconds,
        )

    def _sri_pac(self, session: Session, invoice: Invoice) -> SriPac:
        """SRI as the provider of one Ecuadorian invoice, recording where it stands there."""
        invoice_id, key = invoice.id, invoice.idempotency_key

        def mark(state: AuthorityState) -> None:
            done = session.execute(
                update(Invoice)
                .where(
                    Invoice.id == invoice_id,
                    Invoice.status == InvoiceStatus.STAMPING,
                    Invoice.idempotency_key == key,
                )
                .values(authority_state=state.value)
                .execution_options(synchronize_session=False)
            ).rowcount
            session.commit()
            if done:  # the invoice in hand says it too, without a reload
                set_committed_value(invoice, "authority_state", state.value)

        pause = float(self.providers.config.get("SRI_POLL_SECONDS", 0.5))
        return SriPac(self.providers.sri(), mark=mark, pause=pause)

    def _provider(self, session: Session, invoice: Invoice) -> _LoggedPac:
        issuer = invoice.issuer
        if issuer.country == "EC":
            return _LoggedPac(self._sri_pac(session, invoice), issuer.rfc)
        return _LoggedPac(self.pac_for(issuer), issuer.rfc)

    # --- recovery -------------------------------------------------------------------------

    def reconcile(
        self, session: Session, now: datetime, older_than: timedelta | None = None
    ) -> dict[str, int]:
        """Finish or release every invoice left on its way to the PAC for `older_than`.

        Draft or signed (the process died before the PAC call): it never reached the PAC, so
        it is stamped now, or released (failed, its tickets and folio free) when it cannot
        be. Stamping: the provider is asked whether it stamped it; stamped there → recorded
        here; never stamped → stamped now; no answer → left for the next run (freeing its
        tickets could give a ticket a second invoice). Every stamp recorded queues the email.
        """
        counts = {"recorded": 0, "stamped": 0, "released": 0, "pending": 0}
        shortest = min(self.left_after(s) for s in issue.PENDING)
        for invoice in issue.abandoned(
            session, now, shortest if older_than is None else older_than
        ):
            after = self.left_after(invoice.status) if older_than is None else older_than
            if invoice.updated_at < now - after:
                counts[self._settle(session, invoice)] += 1
        return counts

    def settle_if_left(self, session: Session, invoice: Invoice, now: datetime) -> None:
        """Settle `invoice` now when the process that took it is gone (another press of its
        form, the page that waits for it): the customer need not wait for reconcile."""
        if invoice.status in issue.PENDING and invoice.updated_at < now - self.left_after(
            invoice.status
        ):
            self._settle(session, invoice)

    def _settle(self, session: Session, invoice: Invoice) -> str:
        if invoice.status is InvoiceStatus.STAMPING:
            pac = self._provider(session, invoice)
            try:
                found = pac.recover(invoice.xml)
            except DocumentRefused as refusal:  # decided at the authority: released
                issue.fail(session, invoice, refusal)
                return "released"
            except PacError:
                return "pending"
            if found is not None:
                issue.record(
                    session,
                    invoice,
                    found,
                    test=pac.test,
                    on_stamped=lambda stamped: self.mail(session, stamped),
                )
                return "recorded"
            if not issue.back_to_signed(session, invoice):
                return "pending"  # settled meanwhile by the process that owns it
        try:  # a draft whose CSD cannot sign it any more is released too
            self.stamp(session, invoice, wait_seconds=0)
        except issue.StampingFailed:
            return "released"  # recorded as failed: tickets and folio free again
        except PacError:
            return "pending"
        return "stamped" if invoice.status is InvoiceStatus.STAMPED else "pending"
