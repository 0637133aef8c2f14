"""The operator's product catalog (/operador/productos): annual licences per level, stamp
packages, special invoice designs, version upgrades; create, edit, deactivate."""

from __future__ import annotations

from flask import abort, redirect, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, StringField
from wtforms.fields.choices import SelectChoice

from webapp.extensions import db
from webapp.htmx import render
from webapp.models.platform import Product, ProductKind
from webapp.operator import bp
from webapp.operator.home import operator_only
from webapp.platform import catalog

KINDS = {
    ProductKind.LICENCE: _l("Licencia anual"),
    ProductKind.STAMPS: _l("Paquete de timbres"),
    ProductKind.DESIGN: _l("Diseño especial de factura"),
    ProductKind.UPGRADE: _l("Actualización de versión"),
}
NOTICES = {
    "guardado": _l("Producto guardado."),
    "desactivado": _l("Producto desactivado: ya no se ofrece en nuevas suscripciones."),
    "activado": _l("Producto activado."),
}


def _strip(value):
    return value.strip() if isinstance(value, str) else value


class ProductForm(FlaskForm):
    code = StringField(_l("Código"), filters=[_strip], render_kw={"maxlength": catalog.CODE_MAX})
    description = StringField(
        _l("Descripción"), filters=[_strip], render_kw={"maxlength": catalog.DESCRIPTION_MAX}
    )
    kind = SelectField(
        _l("Tipo"),
        choices=[SelectChoice(kind.value, label) for kind, label in KINDS.items()],
        validate_choice=False,
    )
    price = StringField(
        _l("Precio antes de IVA"), filters=[_strip], render_kw={"inputmode": "decimal"}
    )
    months = StringField(
        _l("Meses que extiende (licencias)"),
        filters=[_strip],
        default="12",
        render_kw={"inputmode": "numeric"},
    )
    stamps = StringField(
        _l("Timbres que agrega (paquetes)"),
        filters=[_strip],
        default="0",
        render_kw={"inputmode": "numeric"},
    )


def _messages() -> dict[tuple[str, str], str]:
    return {
        ("code", catalog.EMPTY): _("Escriba el código del producto."),
        ("code", catalog.TOO_LONG): _(
            "El código admite como máximo %(max)s caracteres.", max=catalog.CODE_MAX
        ),
        ("code", catalog.FORMAT): _(
            "El código lleva sólo letras, dígitos, puntos y guiones, sin espacios."
        ),
        ("code", catalog.TAKEN): _("Ya hay un producto con ese código."),
        ("description", catalog.EMPTY): _("Escriba la descripción del producto."),
        ("description", catalog.TOO_LONG): _(
            "La descripción admite como máximo %(max)s caracteres.", max=catalog.DESCRIPTION_MAX
        ),
        ("kind", catalog.EMPTY): _("Elija el tipo de producto."),
        ("price", catalog.EMPTY): _("Escriba el precio antes de IVA."),
        ("price", catalog.FORMAT): _(
            "Escriba el precio con punto decimal y hasta dos decimales, por ejemplo 550.00."
        ),
        ("price", catalog.RANGE): _("El precio es demasiado alto."),
        ("months", catalog.RANGE): _(
            "Una licencia extiende de 1 a %(max)s meses.", max=catalog.MONTHS_MAX
        ),
        ("stamps", catalog.RANGE): _("Un paquete agrega al menos 1 timbre."),
    }


def _data(form: ProductForm) -> catalog.ProductData:
    return catalog.ProductData(
        code=form.code.data or "",
        description=form.description.data or "",
        kind=form.kind.data or "",
        price=form.price.data or "",
        months=form.months.data or "0",
        stamps=form.stamps.data or "0",
    )


def _product(product_id: int) -> Product:
    found = db.session.get(Product, product_id)
    if found is None:
        abort(404)
    return found


@bp.get("/productos")
@operator_only
def products():
    return render(
        "operator/products.html",
        "content",
        products=catalog.products(db.session),
        kinds=KINDS,
        state_form=FlaskForm(),
        notice=NOTICES.get(request.args.get("aviso", "")),
    )


def _edit(product: Product | None):
    form = ProductForm()
    if request.method == "GET" and product is not None:
        form.code.data, form.description.data = product.code, product.description
        form.kind.data, form.price.data = product.kind.value, f"{product.price:.2f}"
        form.months.data, form.stamps.data = str(product.months), str(product.stamps)
    status = 200
    if request.method == "POST":
        if form.validate_on_submit():
            problems = catalog.check_product(db.session, _data(form), product)
            messages = _messages()
            for field, problem in problems.items():
                form[field].errors = [messages[(field, problem)]]
            if not problems:
                catalog.save_product(db.session, _data(form), product)
                db.session.commit()
                return redirect(url_for("operator.products", aviso="guardado"), 303)
        status = 422
    return render(
        "operator/product_form.html", "content", status=status, form=form, product=product
    )


@bp.route("/productos/nuevo", methods=["GET", "POST"])
@operator_only
def product_new():
    return _edit(None)


@bp.route("/productos/<int:product_id>", methods=["GET", "POST"])
@operator_only
def product_edit(product_id: int):
    return _edit(_product(product_id))


@bp.post("/productos/<int:product_id>/estado")
@operator_only
def product_active(product_id: int):
    """Deactivate (active=0: no longer offered; subscriptions keep it) or activate it."""
    product = _product(product_id)
    wanted = request.form.get("active")
    if not FlaskForm().validate_on_submit() or wanted not in ("0", "1"):
        abort(400)
    product.active = wanted == "1"
    db.session.commit()
    return redirect(
        url_for("operator.products", aviso="activado" if product.active else "desactivado"), 303
    )
