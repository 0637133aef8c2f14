"""The platform operator's console (/operador/): who may open it, every issuer with its
licence, credits and onboarding state, the product catalog, an issuer's subscription,
licence and credits' ledger."""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from webapp.extensions import db
from webapp.models import Issuer
from webapp.models.platform import Product, ProductKind, StampMovement, Subscription


def _page(response) -> str:
    return response.get_data(as_text=True)


@pytest.fixture
def operator(client, staff, admin_login):
    admin_login(client, staff["operator"])
    return client


def _product(app, code="ANUAL1", kind=ProductKind.LICENCE, price="550.00", active=True) -> int:
    with app.app_context():
        product = Product(
            code=code,
            description=f"Anualidad {code}",
            kind=kind,
            price=Decimal(price),
            months=12 if kind is ProductKind.LICENCE else 0,
            stamps=100 if kind is ProductKind.STAMPS else 0,
            active=active,
        )
        db.session.add(product)
        db.session.commit()
        return product.id


def test_only_the_operator_opens_the_console(app, client, staff, admin_login):
    signed_out = client.get("/operador/")
    assert signed_out.status_code == 303
    assert signed_out.headers["Location"].startswith("/admin/entrar")
    for who in ("admin", "branch", "other_admin"):
        browser = app.test_client()
        admin_login(browser, staff[who])
        assert browser.get("/operador/").status_code == 403
        assert browser.get("/operador/productos").status_code == 403
        assert browser.get("/operador/alta").status_code == 403
        assert browser.get(f"/operador/emisores/{staff['issuer_id']}").status_code == 403


def test_home_lists_every_issuer_with_licence_credits_and_state(app, operator, staff):
    with app.app_context():
        other = db.session.get(Issuer, staff["other_issuer_id"])
        other.stamp_credits, other.onboarding_pending = 42, True
        db.session.commit()
    page = _page(operator.get("/operador/"))
    assert "ESCUELA KEMPER URGATE" in page and "EKU9003173C9" in page
    assert "sin medición" in page  # the demo issuer is not metered
    assert ">42<" in page and "Pendiente" in page and "Publicado" in page
    assert f'href="/operador/emisores/{staff["other_issuer_id"]}"' in page
    # The menu: its own entries (those another module adds show once they exist).
    assert 'href="/operador/productos"' in page and 'href="/operador/alta"' in page
    assert 'aria-current="page">Emisores' in page
    assert 'class="desk"' in page


def test_products_are_created_edited_and_deactivated(app, operator):
    response = operator.post(
        "/operador/productos/nuevo",
        data={
            "code": " sp0800 ",
            "description": "Actualización 4.0 NIVEL 1",
            "kind": "upgrade",
            "price": "575",
        },
    )
    assert response.status_code == 303
    page = _page(operator.get(response.headers["Location"]))
    assert "SP0800" in page and "Actualización 4.0 NIVEL 1" in page and "$575.00" in page
    with app.app_context():
        product = db.session.scalar(select(Product).where(Product.code == "SP0800"))
        assert product.price == Decimal("575.00") and product.kind is ProductKind.UPGRADE
        product_id = product.id

    edited = operator.post(
        f"/operador/productos/{product_id}",
        data={
            "code": "SP0800",
            "description": "Paquete 100",
            "kind": "stamps",
            "price": "1,200.50",
            "stamps": "100",
        },
    )
    assert edited.status_code == 303
    with app.app_context():
        product = db.session.get(Product, product_id)
        assert (product.price, product.stamps, product.months) == (Decimal("1200.50"), 100, 0)

    off = operator.post(f"/operador/productos/{product_id}/estado", data={"active": "0"})
    assert off.status_code == 303
    assert "Inactivo" in _page(operator.get("/operador/productos"))
    with app.app_context():
        assert db.session.get(Product, product_id).active is False


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        ({"code": "", "price": "1"}, "code", "Escriba el código del producto."),
        ({"code": "CON ESPACIO"}, "code", "sin espacios"),
        ({"code": "ANUAL1"}, "code", "Ya hay un producto con ese código."),
        ({"price": "12.345"}, "price", "hasta dos decimales"),
        ({"price": "abc"}, "price", "hasta dos decimales"),
        ({"price": ""}, "price", "Escriba el precio antes de IVA."),
        ({"kind": "licence", "months": "0"}, "months", "Una licencia extiende de 1 a"),
        ({"kind": "stamps", "stamps": "-5"}, "stamps", "al menos 1 timbre"),
        ({"description": " "}, "description", "Escriba la descripción del producto."),
    ],
)
def test_a_bad_product_gets_a_message_by_its_field(app, operator, data, field, message):
    _product(app, "ANUAL1")
    form = {
        "code": "NUEVO1",
        "description": "Algo",
        "kind": "design",
        "price": "10.00",
        "months": "12",
        "stamps": "0",
    }
    form.update(data)
    response = operator.post("/operador/productos/nuevo", data=form)
    page = _page(response)
    assert response.status_code == 422
    assert message in page
    assert f'id="{field}-error"' in page


def test_an_issuers_subscription_licence_and_ledger(app, operator, staff):
    issuer_id = staff["other_issuer_id"]
    licence = _product(app, "ANUAL1")
    retired = _product(app, "VIEJO", active=False)
    page = _page(operator.get(f"/operador/emisores/{issuer_id}"))
    assert "ANUAL1" in page and "VIEJO" not in page  # only active products are offered
    assert "Sin movimientos." in page

    added = operator.post(
        f"/operador/emisores/{issuer_id}/suscripcion",
        data={"product": str(licence), "quantity": "2"},
    )
    assert added.status_code == 303
    page = _page(operator.get(added.headers["Location"]))
    assert "Suscripción guardada." in page and "Anualidad ANUAL1" in page
    refused = operator.post(
        f"/operador/emisores/{issuer_id}/suscripcion",
        data={"product": str(retired), "quantity": "0"},
    )
    assert refused.status_code == 422
    assert "Elija un producto del catálogo." in _page(refused)
    assert "Escriba una cantidad entre 1 y 999." in _page(refused)

    with app.app_context():
        (sub,) = db.session.scalars(select(Subscription).where(Subscription.issuer_id == issuer_id))
        assert sub.quantity == 2
        sub_id = sub.id
    # Another issuer's subscription is not reachable through this one's URL.
    assert (
        operator.post(
            f"/operador/emisores/{staff['issuer_id']}/suscripcion/{sub_id}/quitar"
        ).status_code
        == 404
    )
    removed = operator.post(f"/operador/emisores/{issuer_id}/suscripcion/{sub_id}/quitar")
    assert removed.status_code == 303
    with app.app_context():
        assert db.session.scalar(select(Subscription.id)) is None

    bad_date = operator.post(f"/operador/emisores/{issuer_id}/licencia", data={"expires": "x"})
    assert bad_date.status_code == 422 and "Escriba una fecha válida" in _page(bad_date)
    saved = operator.post(
        f"/operador/emisores/{issuer_id}/licencia", data={"expires": "2031-05-17"}
    )
    assert saved.status_code == 303
    with app.app_context():
        expires = db.session.get(Issuer, issuer_id).licence_expires_at
        assert expires.date().isoformat() == "2031-05-17"
    assert "2031-05-17" in _page(operator.get("/operador/"))

    with app.app_context():
        for n in range(1, 61):
            db.session.add(
                StampMovement(issuer_id=issuer_id, delta=1, balance=n, reason="purchase")
            )
        db.session.commit()
    page = _page(operator.get(f"/operador/emisores/{issuer_id}"))
    assert page.count(">Compra<") == 50  # the newest 50 movements
    assert "<td>60</td>" in page and "<td>10</td>" not in page


def test_an_adjustment_of_credits_goes_through_the_ledger(app, operator, staff):
    pytest.importorskip("webapp.issuing.credits")
    issuer_id = staff["other_issuer_id"]
    url = f"/operador/emisores/{issuer_id}/timbres"
    missing = operator.post(url, data={"delta": "0", "note": ""})
    assert missing.status_code == 422
    assert "distinto de cero" in _page(missing) and "Escriba el motivo del ajuste." in _page(
        missing
    )
    negative = operator.post(url, data={"delta": "-5", "note": "error"})
    assert negative.status_code == 422 and "en negativo" in _page(negative)
    done = operator.post(url, data={"delta": "25", "note": "Cortesía de bienvenida"})
    assert done.status_code == 303
    page = _page(operator.get(done.headers["Location"]))
    assert "Ajuste de timbres registrado." in page
    assert "Cortesía de bienvenida" in page and "+25" in page
    with app.app_context():
        assert db.session.get(Issuer, issuer_id).stamp_credits == 25
        (move,) = db.session.scalars(select(StampMovement))
        assert (move.reason, move.delta, move.balance) == ("adjustment", 25, 25)
