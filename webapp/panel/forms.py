"""The panel's filter form: a plain GET form whose state lives in the query string."""

from __future__ import annotations

from decimal import Decimal

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import DateField, DecimalField, HiddenField, SearchField, SelectField
from wtforms.fields.choices import SelectChoice
from wtforms.validators import NumberRange, Optional, ValidationError

from webapp.panel.query import SORTS, STATES, Cursor, Filters

MAX_TOTAL = Decimal("9999999999.99")


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class FilterForm(FlaskForm):
    class Meta:
        csrf = False  # a search changes nothing

    q = SearchField(
        _l("Buscar"),
        filters=[_strip],
        render_kw={"maxlength": 60, "placeholder": _l("UUID, folio o emisor")},
    )
    desde = DateField(_l("Desde"), validators=[Optional()])
    hasta = DateField(_l("Hasta"), validators=[Optional()])
    emisor = SelectField(_l("Emisor"), choices=[], default="")
    sucursal = SelectField(_l("Sucursal"), choices=[], default="")
    estado = SelectField(
        _l("Estado"),
        choices=[
            SelectChoice("", _l("Todos")),
            SelectChoice("vigente", _l("Vigente")),
            SelectChoice("cancelada", _l("Cancelada")),
            SelectChoice("archivada", _l("Archivada")),
        ],
        default="",
    )
    total_min = DecimalField(
        _l("Total desde"),
        places=2,
        validators=[Optional(), NumberRange(min=0, max=MAX_TOTAL)],
        render_kw={"inputmode": "decimal", "min": "0", "step": "0.01"},
    )
    total_max = DecimalField(
        _l("Total hasta"),
        places=2,
        validators=[Optional(), NumberRange(min=0, max=MAX_TOTAL)],
        render_kw={"inputmode": "decimal", "min": "0", "step": "0.01"},
    )
    orden = SelectField(
        _l("Ordenar por"),
        choices=[
            SelectChoice("-fecha", _l("Más recientes primero")),
            SelectChoice("fecha", _l("Más antiguas primero")),
            SelectChoice("-total", _l("Mayor total primero")),
            SelectChoice("total", _l("Menor total primero")),
        ],
        default="-fecha",
    )
    c = HiddenField()  # where the page starts (keyset cursor)
    pagina = HiddenField()

    def __init__(self, issuers, branches, **kwargs):
        super().__init__(**kwargs)
        self.issuers = {str(i.id): i for i in issuers}
        self.branches = {str(b.id): b for b in branches}
        self.emisor.choices = [("", _l("Todos"))] + [
            (key, i.legal_name) for key, i in self.issuers.items()
        ]
        self.sucursal.choices = [("", _l("Todas"))] + [
            (key, f"{b.issuer.legal_name} · {b.name}") for key, b in self.branches.items()
        ]

    def validate_q(self, field) -> None:
        if field.data and len(field.data) > 60:
            raise ValidationError(_l("Escriba como máximo 60 caracteres."))

    def validate_hasta(self, field) -> None:
        if field.data and self.desde.data and field.data < self.desde.data:
            raise ValidationError(_l("La fecha final es anterior a la inicial."))

    def validate_total_max(self, field) -> None:
        low = self.total_min.data
        if field.data is not None and low is not None and field.data < low:
            raise ValidationError(_l("El total máximo es menor que el mínimo."))

    def validate_orden(self, field) -> None:
        if field.data not in SORTS:
            raise ValidationError(_l("Elija un orden de la lista."))

    def validate_estado(self, field) -> None:
        if field.data and field.data not in STATES:
            raise ValidationError(_l("Elija un estado de la lista."))

    def validate_c(self, field) -> None:
        if field.data:
            try:
                Cursor.decode(field.data, self.orden.data or "-fecha")
            except ValueError:
                raise ValidationError(_l("El enlace de la página no es válido.")) from None

    def filters(self) -> Filters:
        """The validated filters (call after validate())."""
        return Filters(
            desde=self.desde.data,
            hasta=self.hasta.data,
            issuer_id=int(self.emisor.data) if self.emisor.data else None,
            branch_id=int(self.sucursal.data) if self.sucursal.data else None,
            estado=self.estado.data or None,
            total_min=self.total_min.data,
            total_max=self.total_max.data,
            q=self.q.data or "",
            orden=self.orden.data or "-fecha",
        )

    def cursor(self) -> Cursor | None:
        return Cursor.decode(self.c.data, self.orden.data) if self.c.data else None

    def page_number(self) -> int:
        value = self.pagina.data or ""
        return int(value) if value.isdigit() and 0 < int(value) < 10**6 else 1
