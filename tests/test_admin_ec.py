"""Back office of an Ecuadorian issuer (#16): the SRI data on /admin/emisor, the signing
certificate (.p12) instead of the CSD, and branches as establecimiento + punto de emisión."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select

from webapp.admin.staff import create_staff
from webapp.demo.staff import STAFF_PASSWORD
from webapp.extensions import db
from webapp.models import Branch, Invoice, Issuer, StaffRole
from webapp.sri import catalogs
from webapp.sri.keystore import signing_key
from webapp.sri.testp12 import make_test_p12

RUC, NAME, PASSWORD = "1790016919001", "COMERCIAL ANDINA S.A.", "Clave-de-la-firma-1"
OTHER_RUC = "0990004196001"
ADMIN = "admin.andina@example.com"
HTMX = {"HX-Request": "true"}

SRI = {
    "ruc": RUC,
    "legal_name": NAME,
    "trade_name": "Andina",
    "head_office_address": "Av. Amazonas N34-120 y Av. Atahualpa, Quito",
    "keeps_accounts": "SI",
    "special_taxpayer": "",
    "rimpe": "",
}


@pytest.fixture
def ec(app, staff):
    """An Ecuadorian issuer ("andina", RUC) with one branch (MATRIZ, 001-001) and its admin
    (ADMIN, STAFF_PASSWORD); also a second EC issuer (OTHER_RUC) to collide with. The demo
    staff of `staff` (the operator among them) are there too."""
    with app.app_context():
        issuer = Issuer(
            slug="andina",
            country="EC",
            rfc=RUC,
            legal_name=NAME,
            head_office_address="Quito",
            regimen_fiscal="",
            cp="",
        )
        issuer.branches = [Branch(code="MATRIZ", name="Matriz", cp="", estab="001", pto_emi="001")]
        other = Issuer(slug="costa", country="EC", rfc=OTHER_RUC, legal_name="COSTA", cp="")
        other.regimen_fiscal = ""
        db.session.add_all([issuer, other])
        db.session.flush()
        create_staff(db.session, ADMIN, StaffRole.ISSUER_ADMIN, issuer, password=STAFF_PASSWORD)
        db.session.commit()
        return {"issuer_id": issuer.id, "branch_id": issuer.branches[0].id}


@pytest.fixture
def admin(client, ec, admin_login):
    admin_login(client, ADMIN)
    return client


def _issuer(app, slug="andina") -> Issuer:
    with app.app_context():
        issuer = db.session.scalar(select(Issuer).where(Issuer.slug == slug))
        issuer.p12_encrypted  # noqa: B018 (deferred: load it before leaving the session)
        return issuer


def _text(response) -> str:
    return response.get_data(as_text=True)


# --- SRI data ----------------------------------------------------------------------------


def test_page_shows_the_sri_data_instead_of_the_sats(admin):
    page = _text(admin.get("/admin/emisor"))
    assert "Datos del SRI" in page and RUC in page and "Dirección matriz" in page
    assert "Obligado a llevar contabilidad" in page and "Régimen RIMPE" in page
    for mexican in ("Régimen fiscal", "Código postal", "CSD", "Proveedor de timbrado"):
        assert mexican not in page
    assert "Sin firma electrónica" in page
    assert 'href="/admin/emisor/firma"' in page


def test_sri_data_saved(app, admin):
    data = dict(
        SRI,
        legal_name="  COMERCIAL   ANDINA S.A. ",
        special_taxpayer="12345",
        rimpe=catalogs.RIMPE_EMPRENDEDOR,
        keeps_accounts="NO",
    )
    response = admin.post("/admin/emisor/fiscal", data=data)
    assert response.status_code == 303, _text(response)
    assert "guardado=sri" in response.headers["Location"]
    issuer = _issuer(app)
    assert issuer.legal_name == "COMERCIAL ANDINA S.A." and issuer.trade_name == "Andina"
    assert issuer.head_office_address == SRI["head_office_address"]
    assert issuer.keeps_accounts is False and issuer.special_taxpayer == "12345"
    assert issuer.rimpe == catalogs.RIMPE_EMPRENDEDOR
    assert (issuer.regimen_fiscal, issuer.cp) == ("", "")
    page = _text(admin.get("/admin/emisor?guardado=sri"))
    assert "Datos del SRI guardados." in page and "12345" in page
    admin.post("/admin/emisor/fiscal", data=dict(SRI, trade_name=""))
    issuer = _issuer(app)
    assert issuer.trade_name is None and issuer.rimpe is None and issuer.keeps_accounts is True


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("legal_name", "", "Escriba la razón social"),
        ("legal_name", "A" * 206, "demasiado larga"),
        ("head_office_address", " ", "Escriba la dirección de la matriz"),
        ("trade_name", "N" * 301, "Máximo 300 caracteres"),
        ("keeps_accounts", "", "obligado a llevar contabilidad"),
        ("special_taxpayer", "12", "de 3 a 13 letras o números"),
        ("special_taxpayer", "RES-123", "de 3 a 13 letras o números"),
        ("rimpe", "CONTRIBUYENTE OTRO", "Elija una opción"),
    ],
)
def test_sri_data_refused(app, admin, field, value, message):
    response = admin.post("/admin/emisor/fiscal", data=dict(SRI, **{field: value}))
    assert response.status_code == 422
    text = _text(response)
    assert message in text and f'id="{field}-error"' in text
    assert _issuer(app).head_office_address == "Quito"  # nothing saved


def test_only_the_operator_changes_the_ruc(app, admin):
    response = admin.post("/admin/emisor/fiscal", data=dict(SRI, ruc=OTHER_RUC))
    assert response.status_code == 303  # the RUC typed is ignored
    assert _issuer(app).rfc == RUC
    assert "readonly" in _text(admin.get("/admin/emisor"))


def test_operator_changes_the_ruc_and_the_p12_is_dropped(app, client, staff, ec, admin_login):
    with app.app_context():
        issuer = db.session.get(Issuer, ec["issuer_id"])
        from webapp.sri.keystore import store_p12

        store_p12(issuer, make_test_p12(RUC, NAME, PASSWORD), PASSWORD)
        db.session.commit()
    admin_login(client, staff["operator"])
    client.post("/admin/emisores", data={"issuer": ec["issuer_id"]})
    for ruc, message in (
        ("1710034066001", "no es válido"),
        ("1790016919002", "termina en 001"),
        ("17900169190", "13 dígitos"),
        ("", "Escriba el RUC"),
        (OTHER_RUC, "otro emisor"),
    ):
        bad = client.post("/admin/emisor/fiscal", data=dict(SRI, ruc=ruc))
        assert bad.status_code == 422 and message in _text(bad), ruc
        assert 'id="ruc-error"' in _text(bad)
    ok = client.post("/admin/emisor/fiscal", data=dict(SRI, ruc="1791251237001"))
    assert ok.status_code == 303 and "guardado=sri_ruc" in ok.headers["Location"]
    issuer = _issuer(app)
    assert issuer.rfc == "1791251237001"
    assert issuer.p12_encrypted is None and issuer.p12_valid_to is None
    page = _text(client.get(ok.headers["Location"]))
    assert "El RUC cambió" in page and "Sin firma electrónica" in page


def test_mexican_issuer_keeps_the_sat_page(client, staff, admin_login):
    admin_login(client, staff["admin"])
    page = _text(client.get("/admin/emisor"))
    assert "Régimen fiscal" in page and "Datos del SRI" not in page
    assert client.get("/admin/emisor/firma").status_code == 404


# --- The signing certificate (.p12) ------------------------------------------------------


def _upload(client, data, password=PASSWORD, htmx=False):
    return client.post(
        "/admin/emisor/firma",
        data={"p12": (io.BytesIO(data), "firma.p12"), "password": password},
        content_type="multipart/form-data",
        headers=HTMX if htmx else {},
    )


def _refused(app, client, data, password=PASSWORD) -> str:
    response = _upload(client, data, password)
    assert response.status_code == 422
    assert _issuer(app).p12_encrypted is None  # nothing stored
    return _text(response)


def test_p12_stored_encrypted_and_never_shown(app, admin):
    data = make_test_p12(RUC, NAME, PASSWORD)
    response = _upload(admin, data)
    assert response.status_code == 303, _text(response)
    assert "guardado=firma" in response.headers["Location"]
    issuer = _issuer(app)
    assert issuer.p12_encrypted and data not in issuer.p12_encrypted
    assert PASSWORD.encode() not in issuer.p12_password_encrypted
    assert issuer.p12_subject == NAME
    with app.app_context():
        assert signing_key(issuer).ruc == RUC
    page = _text(admin.get("/admin/emisor?guardado=firma"))
    assert "Firma electrónica (.p12) guardada." in page
    assert NAME in page and issuer.p12_valid_to.strftime("%Y-%m-%d") in page
    assert PASSWORD not in page and "Sin firma electrónica" not in page
    assert "vence el" not in page and "Reemplazar la firma electrónica" in page


def test_p12_expiring_within_30_days_is_flagged(app, admin):
    start = datetime.now(UTC) - timedelta(days=366 - 10)
    assert _upload(admin, make_test_p12(RUC, NAME, PASSWORD, now=start, years=1)).status_code == 303
    page = _text(admin.get("/admin/emisor"))
    assert "La firma electrónica vence el" in page
    assert _issuer(app).p12_valid_to.strftime("%Y-%m-%d") in page


def test_expired_p12_refused(app, admin):
    past = datetime.now(UTC) - timedelta(days=3 * 365)
    text = _refused(app, admin, make_test_p12(RUC, NAME, PASSWORD, now=past, years=2))
    assert "está vencido desde el" in text and 'id="p12_file-error"' in text


def test_p12_of_another_ruc_refused(app, admin):
    text = _refused(app, admin, make_test_p12(OTHER_RUC, "COSTA", PASSWORD))
    assert f"pertenece al RUC {OTHER_RUC}, no al {RUC}" in text
    assert 'id="p12_file-error"' in text


def test_wrong_password_shown_on_the_password(app, admin):
    text = _refused(app, admin, make_test_p12(RUC, NAME, PASSWORD), "otra-clave")
    assert "La contraseña no abre el archivo .p12" in text
    assert 'id="p12_password-error"' in text and 'id="p12_file-error"' not in text


def test_garbage_and_missing_parts_refused(app, admin):
    text = _refused(app, admin, b"\x00no soy un p12\xff" * 20)
    assert "no es un certificado de firma electrónica .p12" in text
    text = _refused(app, admin, b"")
    assert "Elija el archivo .p12" in text
    text = _refused(app, admin, make_test_p12(RUC, NAME, PASSWORD), "")
    assert "Escriba la contraseña de la firma electrónica" in text


def test_p12_dialog_for_htmx(app, admin):
    fragment = admin.get("/admin/emisor/firma", headers=HTMX)
    text = _text(fragment)
    assert fragment.status_code == 200 and 'id="modal-title"' in text and "<html" not in text
    assert RUC in text
    page = _text(admin.get("/admin/emisor"))
    page_ids = re.findall(r' id="([^"]+)"', page)
    dialog_ids = re.findall(r' id="([^"]+)"', text)
    assert len(page_ids) == len(set(page_ids))
    assert not (set(page_ids) - {"modal-title"}) & set(dialog_ids)
    done = _upload(admin, make_test_p12(RUC, NAME, PASSWORD), htmx=True)
    assert done.status_code == 204 and "/admin/emisor" in done.headers["HX-Redirect"]


def test_no_csd_for_an_ecuadorian_issuer(admin):
    assert admin.get("/admin/emisor/csd").status_code == 404


def test_a_mexican_issuers_admin_cannot_upload_a_p12(app, client, staff, ec, admin_login):
    admin_login(client, staff["admin"])  # the Mexican demo issuer's admin
    assert _upload(client, make_test_p12(RUC, NAME, PASSWORD)).status_code == 404
    assert _issuer(app).p12_encrypted is None


# --- Branches: establecimiento and punto de emisión --------------------------------------

NEW = {"code": "NORTE", "name": "Quito Norte", "estab": "002", "pto_emi": "001", "address": ""}


def _branch(app, code: str) -> Branch:
    with app.app_context():
        return db.session.scalar(
            select(Branch).join(Issuer).where(Issuer.slug == "andina", Branch.code == code)
        )


def test_list_and_detail_show_the_series(admin, ec):
    page = _text(admin.get("/admin/sucursales"))
    assert "001-001" in page and "Establecimiento y punto de emisión" in page
    assert "C.P." not in page
    detail = _text(admin.get(f"/admin/sucursales/{ec['branch_id']}"))
    assert "001-001" in detail and "Código postal" not in detail


def test_branch_created_with_its_series(app, admin):
    form = _text(admin.get("/admin/sucursales/nueva"))
    assert 'name="estab"' in form and 'name="pto_emi"' in form and 'name="cp"' not in form
    response = admin.post("/admin/sucursales/nueva", data=NEW)
    assert response.status_code == 303, _text(response)
    branch = _branch(app, "NORTE")
    assert (branch.estab, branch.pto_emi, branch.cp) == ("002", "001", "")
    assert "002-001" in _text(admin.get(response.headers["Location"]))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("estab", "", "Escriba el número de establecimiento"),
        ("estab", "2", "3 dígitos, de 001 a 999"),
        ("estab", "000", "3 dígitos, de 001 a 999"),
        ("estab", "0a1", "3 dígitos, de 001 a 999"),
        ("pto_emi", "", "Escriba el punto de emisión"),
        ("pto_emi", "1000", "3 dígitos, de 001 a 999"),
        ("pto_emi", "000", "3 dígitos, de 001 a 999"),
    ],
)
def test_bad_series_refused(app, admin, field, value, message):
    response = admin.post("/admin/sucursales/nueva", data=dict(NEW, **{field: value}))
    assert response.status_code == 422
    text = _text(response)
    assert message in text and f'id="{field}-error"' in text
    assert _branch(app, "NORTE") is None


def test_series_unique_per_issuer(app, admin, ec):
    taken = admin.post("/admin/sucursales/nueva", data=dict(NEW, estab="001", pto_emi="001"))
    assert taken.status_code == 422
    text = _text(taken)
    assert "Ya hay otra sucursal con ese establecimiento y punto de emisión" in text
    assert 'id="pto_emi-error"' in text
    # Editing a branch keeps its own series.
    edit = f"/admin/sucursales/{ec['branch_id']}/editar"
    assert 'value="001"' in _text(admin.get(edit))
    kept = admin.post(edit, data=dict(NEW, code="MATRIZ", estab="001", pto_emi="001"))
    assert kept.status_code == 303, _text(kept)


def test_simultaneous_series_gives_the_message_not_a_500(app, admin, monkeypatch):
    from webapp.admin import branches

    monkeypatch.setattr(branches, "pair_problem", lambda *args: None)  # both passed the check
    response = admin.post("/admin/sucursales/nueva", data=dict(NEW, estab="001", pto_emi="001"))
    assert response.status_code == 422
    assert "Ya hay otra sucursal con ese establecimiento" in _text(response)


def _invoice(app, ec, serie: str) -> None:
    with app.app_context():
        db.session.add(
            Invoice(
                issuer_id=ec["issuer_id"],
                branch_id=ec["branch_id"],
                serie=serie,
                folio=1,
                fecha=datetime.now(UTC),
                receptor_rfc="9999999999999",
                receptor_nombre="CONSUMIDOR FINAL",
                receptor_cp="",
                receptor_regimen="",
                uso_cfdi="",
                forma_pago="01",
                currency="USD",
                subtotal=Decimal("1.00"),
                taxes=Decimal("0.15"),
                total=Decimal("1.15"),
            )
        )
        db.session.commit()


def test_series_with_facturas_stays_with_them(app, admin, ec):
    _invoice(app, ec, "001-001")
    edit = f"/admin/sucursales/{ec['branch_id']}/editar"
    moved = admin.post(edit, data=dict(NEW, code="MATRIZ", estab="001", pto_emi="009"))
    assert moved.status_code == 422
    assert "ya emitió facturas con el establecimiento y punto de emisión 001-001" in _text(moved)
    renamed = admin.post(edit, data=dict(NEW, code="MATRIZ", name="Matriz Quito", estab="001"))
    assert renamed.status_code == 303  # same series: fine
    assert _branch(app, "MATRIZ").name == "Matriz Quito"


def test_series_used_by_another_branch_cannot_be_taken(app, admin, ec):
    _invoice(app, ec, "001-005")  # MATRIZ used 001-005 before it became 001-001
    response = admin.post("/admin/sucursales/nueva", data=dict(NEW, estab="001", pto_emi="005"))
    assert response.status_code == 422
    assert "Otra sucursal ya emitió facturas con ese establecimiento" in _text(response)


def test_mexican_branch_form_unchanged(client, staff, admin_login):
    admin_login(client, staff["admin"])
    form = _text(client.get("/admin/sucursales/nueva"))
    assert 'name="cp"' in form and 'name="estab"' not in form
    assert "C.P." in _text(client.get("/admin/sucursales"))
