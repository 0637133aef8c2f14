"""Constancias de pago (seed 003, PASO 5–7): a slip made from the ticked products of the
renewal quote, with its unique Referencia (webapp.platform.reference), its proof of payment
and its state.

    slip = slips.generate(session, issuer, staff, chosen={3, 5}, now=now)   # caller commits
"""

from __future__ import annotations

import os
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from webapp.models import Issuer, PaymentSlip, PlatformSettings, StaffMember
from webapp.models.platform import SlipLine, SlipStatus
from webapp.platform import proofs, quote, reference

ATTEMPTS = 25  # draws of a reference before giving up (a collision is one in 900 000)


class NothingChosen(ValueError):
    """No product was ticked (or none of the ticked ones is the issuer's)."""


class ReferenceExhausted(RuntimeError):
    """No free reference after ATTEMPTS draws."""


def settings(session: Session) -> PlatformSettings | None:
    """The operator's data (beneficiary, accounts, banks), or None before it is configured."""
    return session.scalar(select(PlatformSettings).order_by(PlatformSettings.id).limit(1))


def banks(config: PlatformSettings | None) -> list[str]:
    return [b.strip() for b in (config.banks if config else "").split(",") if b.strip()]


def generate(
    session: Session,
    issuer: Issuer,
    member: StaffMember | None,
    chosen: set[int],
    now: datetime,
    randbelow=None,
) -> PaymentSlip:
    """A pending slip of the issuer's quote with the `chosen` products included (every quote
    line is kept, "Incluir en pago" Sí/No). The reference is drawn until the database's unique
    constraint takes it (each try in a savepoint). The caller commits."""
    lines = quote.lines(session, issuer, chosen)
    if not any(line.included for line in lines):
        raise NothingChosen()
    sums = quote.totals(lines)
    draw = {"randbelow": randbelow} if randbelow is not None else {}
    for _ in range(ATTEMPTS):
        slip = PaymentSlip(
            issuer_id=issuer.id,
            reference=reference.new_reference(**draw),
            status=SlipStatus.PENDING,
            subtotal=sums.subtotal,
            iva=sums.iva,
            total=sums.total,
            created_by_id=member.id if member is not None else None,
            created_at=now,
            lines=[
                SlipLine(
                    position=i,
                    product_id=line.product_id,
                    code=line.code,
                    description=line.description,
                    quantity=line.quantity,
                    price=line.price,
                    amount=line.amount,
                    included=line.included,
                )
                for i, line in enumerate(lines, 1)
            ],
        )
        try:
            with session.begin_nested():
                session.add(slip)
                session.flush()
        except IntegrityError:
            continue
        return slip
    raise ReferenceExhausted()


def of_issuer(session: Session, issuer_id: int) -> list[PaymentSlip]:
    """The issuer's slips, newest first."""
    return list(
        session.scalars(
            select(PaymentSlip)
            .where(PaymentSlip.issuer_id == issuer_id)
            .order_by(PaymentSlip.id.desc())
        )
    )


def find(session: Session, issuer_id: int, public_id: str) -> PaymentSlip | None:
    """The issuer's slip by its public id (another issuer's is None)."""
    return session.scalar(
        select(PaymentSlip).where(
            PaymentSlip.issuer_id == issuer_id, PaymentSlip.public_id == public_id
        )
    )


def open_slip(session: Session, issuer_id: int) -> PaymentSlip | None:
    """The issuer's newest slip still waiting to be confirmed (pending or with a proof)."""
    return session.scalar(
        select(PaymentSlip)
        .where(
            PaymentSlip.issuer_id == issuer_id,
            PaymentSlip.status.in_([SlipStatus.PENDING, SlipStatus.PROOF]),
        )
        .order_by(PaymentSlip.id.desc())
        .limit(1)
    )


def can_upload(slip: PaymentSlip) -> bool:
    return slip.status in (SlipStatus.PENDING, SlipStatus.PROOF)


def attach_proof(
    slip: PaymentSlip,
    data: bytes,
    directory: str | os.PathLike,
    now: datetime,
    max_bytes: int = proofs.MAX_BYTES,
) -> None:
    """Store the proof (proofs.check: ProofError when refused) and mark the slip "proof"; a
    new proof replaces the previous one. The caller commits."""
    if not can_upload(slip):
        raise proofs.ProofError("closed")
    mime = proofs.check(data, max_bytes)
    old = slip.proof_name
    slip.proof_name = proofs.save(directory, data, mime)
    slip.proof_type = mime
    slip.proof_uploaded_at = now
    slip.status = SlipStatus.PROOF
    proofs.remove(directory, old)
