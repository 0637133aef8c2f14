"""Forms of the back office's branch and kiosk pages, and the branch rules they check.

The CP is the CFDI's LugarExpedicion: it must be in SAT's c_CodigoPostal (the same check as
the customer's CP, webapp.fiscal.receptor.check_cp). The name and address are printed on the
invoice's PDF: no control characters (webapp.fiscal.limits.check_text).

An Ecuadorian issuer's branch is an establecimiento with one punto de emisión (EcBranchForm):
three digits each, 001 to 999, the pair unique per issuer and the serie of its facturas
("001-002"); it has no CP (stored as ""). A pair that has facturas stays with them: a branch
that issued under it cannot change it, and another branch cannot take it later.
"""

from __future__ import annotations

import re

from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from wtforms import StringField, TextAreaField
from wtforms.validators import ValidationError

from webapp.fiscal.limits import CP_LENGTH, TEXT_MESSAGES, TextProblem, check_text
from webapp.fiscal.problems import Problem
from webapp.fiscal.receptor import check_cp
from webapp.models import Branch, Invoice, Issuer, Ticket, TicketStatus

CODE_RE = re.compile(r"[A-Z0-9-]{1,20}")
CODE_MAX, NAME_MAX, ADDRESS_MAX, KIOSK_NAME_MAX = 20, 120, 500, 80

CP_MESSAGES = {
    Problem.EMPTY: _l("Escriba el código postal de la sucursal."),
    Problem.FORMAT: _l("El código postal tiene 5 dígitos."),
    Problem.UNKNOWN: _l("Ese código postal no está en el catálogo del SAT (c_CodigoPostal)."),
}
CODE_TAKEN = _l("Ya hay una sucursal con esa clave. Elija otra.")
PAIR_TAKEN = _l(
    "Ya hay otra sucursal con ese establecimiento y punto de emisión. Elija otro punto de "
    "emisión (o establecimiento)."
)
PAIR_USED = _l(
    "Otra sucursal ya emitió facturas con ese establecimiento y punto de emisión: su "
    "secuencial no puede empezar de nuevo. Elija otro."
)
PAIR_LOCKED = _l(
    "Esta sucursal ya emitió facturas con el establecimiento y punto de emisión %(pair)s: "
    "no se pueden cambiar. Para otra serie, agregue una sucursal nueva."
)
THREE_DIGITS = re.compile(r"\d{3}")


def _strip(value):
    return value.strip() if isinstance(value, str) else value


def _upper(value):
    return value.strip().upper() if isinstance(value, str) else value


class BranchForm(FlaskForm):
    code = StringField(
        _l("Clave"),
        filters=[_upper],
        render_kw={
            "maxlength": CODE_MAX,
            "autocapitalize": "characters",
            "autocomplete": "off",
            "spellcheck": "false",
        },
    )
    name = StringField(_l("Nombre"), filters=[_strip], render_kw={"maxlength": NAME_MAX})
    cp = StringField(
        _l("Código postal (lugar de expedición)"),
        filters=[_strip],
        render_kw={"maxlength": CP_LENGTH, "inputmode": "numeric", "autocomplete": "off"},
    )
    address = TextAreaField(
        _l("Dirección"), filters=[_strip], render_kw={"rows": 3, "maxlength": ADDRESS_MAX}
    )

    def validate_code(self, field) -> None:
        if not field.data:
            raise ValidationError(_l("Escriba la clave de la sucursal."))
        if not CODE_RE.fullmatch(field.data):
            raise ValidationError(
                _l("Use hasta 20 letras sin acentos, números o guiones (por ejemplo, CENTRO-2).")
            )

    def validate_name(self, field) -> None:
        if not field.data:
            raise ValidationError(_l("Escriba el nombre de la sucursal."))
        _check_text(field.data, NAME_MAX, _l("El nombre es demasiado largo."))

    def validate_cp(self, field) -> None:
        problem = check_cp(field.data)
        if problem is not None:
            raise ValidationError(CP_MESSAGES[problem])

    def validate_address(self, field) -> None:
        _check_text(
            field.data, ADDRESS_MAX, _l("La dirección es demasiado larga."), line_breaks=True
        )


def _check_three_digits(value: str | None, empty, wrong) -> None:
    if not value:
        raise ValidationError(empty)
    if not THREE_DIGITS.fullmatch(value) or value == "000":
        raise ValidationError(wrong)


class EcBranchForm(BranchForm):
    """A branch of an Ecuadorian issuer: establecimiento and punto de emisión, no CP."""

    cp = None  # removes the CP field (WTForms)
    estab = StringField(
        _l("Establecimiento"),
        filters=[_strip],
        render_kw={"maxlength": 3, "inputmode": "numeric", "autocomplete": "off"},
    )
    pto_emi = StringField(
        _l("Punto de emisión"),
        filters=[_strip],
        render_kw={"maxlength": 3, "inputmode": "numeric", "autocomplete": "off"},
    )

    def validate_estab(self, field) -> None:
        _check_three_digits(
            field.data,
            _l("Escriba el número de establecimiento, por ejemplo 001."),
            _l("El establecimiento tiene 3 dígitos, de 001 a 999 (por ejemplo, 001)."),
        )

    def validate_pto_emi(self, field) -> None:
        _check_three_digits(
            field.data,
            _l("Escriba el punto de emisión, por ejemplo 001."),
            _l("El punto de emisión tiene 3 dígitos, de 001 a 999 (por ejemplo, 002)."),
        )


def form_class(issuer: Issuer) -> type[BranchForm]:
    """The branch form of the issuer's country."""
    return EcBranchForm if issuer.country == "EC" else BranchForm


def series(branch: Branch) -> str:
    """An Ecuadorian branch's serie: "estab-ptoEmi" (e.g. "001-002"), "" when unset."""
    return f"{branch.estab}-{branch.pto_emi}" if branch.estab and branch.pto_emi else ""


class KioskForm(FlaskForm):
    name = StringField(
        _l("Nombre del quiosco"),
        filters=[_strip],
        render_kw={"maxlength": KIOSK_NAME_MAX, "autocomplete": "off"},
    )

    def validate_name(self, field) -> None:
        if not field.data:
            raise ValidationError(_l("Escriba un nombre para reconocerlo, por ejemplo «Caja 1»."))
        _check_text(field.data, KIOSK_NAME_MAX, _l("El nombre es demasiado largo."))


def _check_text(value: str | None, limit: int, too_long, *, line_breaks: bool = False) -> None:
    """ValidationError when `value` is longer than `limit` (`too_long` and the limit) or has
    control characters; "|" is allowed (none of these fields is in the CFDI)."""
    problem = check_text(value, limit, pipe=True, line_breaks=line_breaks)
    if problem is TextProblem.TOO_LONG:
        raise ValidationError(f"{too_long} {_(TEXT_MESSAGES[problem], max=limit)}")
    if problem is not None:
        raise ValidationError(_(TEXT_MESSAGES[problem]))


# --- Rules (no Flask) ---------------------------------------------------------------------


def code_taken(session: Session, issuer_id: int, code: str, exclude: int | None = None) -> bool:
    """Whether another branch of the issuer has `code` (codes are unique per issuer)."""
    query = select(Branch.id).where(Branch.issuer_id == issuer_id, Branch.code == code)
    if exclude is not None:
        query = query.where(Branch.id != exclude)
    return session.scalar(query.limit(1)) is not None


def pair_problem(
    session: Session, branch: Branch, estab: str, pto_emi: str
) -> tuple[str, str] | None:
    """Why `branch` (of an Ecuadorian issuer; new when its id is None) cannot have this
    establecimiento and punto de emisión: (field name, Spanish message: PAIR_LOCKED,
    PAIR_TAKEN or PAIR_USED); None when it may."""
    pair = f"{estab}-{pto_emi}"
    if branch.id is not None and branch.estab and pair != series(branch):
        issued = select(Invoice.id).where(
            Invoice.branch_id == branch.id, Invoice.serie == series(branch)
        )
        if session.scalar(issued.limit(1)) is not None:
            return "estab", str(PAIR_LOCKED) % {"pair": series(branch)}
    other = select(Branch.id).where(
        Branch.issuer_id == branch.issuer_id, Branch.estab == estab, Branch.pto_emi == pto_emi
    )
    if branch.id is not None:
        other = other.where(Branch.id != branch.id)
    if session.scalar(other.limit(1)) is not None:
        return "pto_emi", str(PAIR_TAKEN)
    used = select(Invoice.id).where(Invoice.issuer_id == branch.issuer_id, Invoice.serie == pair)
    if branch.id is not None:
        used = used.where(Invoice.branch_id != branch.id)
    if session.scalar(used.limit(1)) is not None:
        return "pto_emi", str(PAIR_USED)
    return None


def open_tickets(session: Session, branch_ids: list[int]) -> dict[int, int]:
    """Open tickets per branch id."""
    if not branch_ids:
        return {}
    rows = session.execute(
        select(Ticket.branch_id, func.count())
        .where(Ticket.branch_id.in_(branch_ids), Ticket.status == TicketStatus.OPEN)
        .group_by(Ticket.branch_id)
    )
    return {branch_id: count for branch_id, count in rows}


def fill(branch: Branch, form: BranchForm) -> None:
    branch.code, branch.name = form.code.data, form.name.data
    branch.address = form.address.data or ""
    if isinstance(form, EcBranchForm):
        branch.cp, branch.estab, branch.pto_emi = "", form.estab.data, form.pto_emi.data
    else:
        branch.cp = form.cp.data
