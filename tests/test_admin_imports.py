"""CSV upload of tickets in the back office: row-by-row report, idempotent re-upload, file
checks, and the walls between issuers and branches."""

from __future__ import annotations

import io
import json
import re

from sqlalchemy import func, select

from webapp.demo.staff import STAFF_PASSWORD
from webapp.extensions import db
from webapp.models import Ticket, TicketImport
from webapp.tickets.csvfile import COLUMNS, sample_csv

HEADER = ",".join(COLUMNS)
SOLD = "2026-11-20T13:45:00-06:00"


def row(branch="CENTRO", number="90000001", total="36.01", **line) -> str:
    values = {
        "branch": branch,
        "ticket_number": number,
        "order_number": "500001",
        "sold_at": SOLD,
        "total": total,
        "currency": "MXN",
        "forma_pago": "",
        "description": "REFRESCO DE COLA 600 ML",
        "clave_prod_serv": "50202306",
        "clave_unidad": "H87",
        "quantity": "2",
        "unit_price": "15.52",
        "objeto_imp": "02",
        "tax_factor": "Tasa",
        "tax_rate": "0.160000",
    }
    values.update(line)
    return ",".join(values[c] for c in COLUMNS)


GOOD_AND_BAD = "\n".join(
    [
        HEADER,
        row(number="90000001"),  # row 2: accepted
        row(number="90000002", total="50.00"),  # row 3: total does not match
        row(number="90000003", total="93.01"),  # rows 4-5: two lines, accepted
        row(
            number="90000003",
            total="93.01",
            description="LECHE",
            clave_prod_serv="50131702",
            clave_unidad="LTR",
            unit_price="28.50",
            tax_rate="0.000000",
        ),
        row(number="90000004", clave_prod_serv="99999999", total="36.01"),  # row 6: catalog
        row(branch="NORTE", number="90000005"),  # row 7: another issuer's branch
    ]
)


def upload(client, text: str | bytes, name="tickets.csv", mimetype="text/csv"):
    data = text.encode() if isinstance(text, str) else text
    return client.post(
        "/admin/tickets",
        data={"file": (io.BytesIO(data), name, mimetype)},
        content_type="multipart/form-data",
    )


def count(app, *numbers) -> int:
    with app.app_context():
        return db.session.scalar(select(func.count()).where(Ticket.ticket_number.in_(numbers)))


def test_page_documents_columns_and_offers_sample(client, staff, admin_login):
    admin_login(client, staff["admin"])
    page = client.get("/admin/tickets").get_data(as_text=True)
    for column in COLUMNS:
        assert column in page
    sample = client.get("/admin/tickets/ejemplo.csv")
    assert sample.status_code == 200 and sample.mimetype == "text/csv"
    assert sample.get_data(as_text=True).lstrip("\ufeff") == sample_csv()


def test_sample_file_imports(app, client, staff, admin_login):
    admin_login(client, staff["admin"])
    response = upload(client, "\ufeff" + sample_csv())
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "1 tickets nuevos aceptados" in page and "0 rechazados" in page


def test_good_and_bad_rows_reported_and_reupload_is_idempotent(app, client, staff, admin_login):
    admin_login(client, staff["admin"])
    response = upload(client, GOOD_AND_BAD)
    assert response.status_code == 303
    assert "/admin/tickets/importacion/" in response.headers["Location"]
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "2 tickets nuevos aceptados" in page and "3 rechazados" in page
    assert "36.01" in page  # the total the lines compute, for the row whose total was wrong
    assert "c_ClaveProdServ" in page and "NORTE" in page
    assert count(app, "90000001", "90000003") == 2
    assert count(app, "90000002", "90000004", "90000005") == 0
    with app.app_context():
        record = db.session.scalar(select(TicketImport))
        rows = {r["row"]: r for r in json.loads(record.report)["rows"]}
        assert [rows[n]["status"] for n in range(2, 8)] == [
            "accepted",
            "rejected",
            "accepted",
            "accepted",
            "rejected",
            "rejected",
        ]
        assert rows[3]["message"].startswith("total:")
        assert rows[6]["message"].startswith("clave_prod_serv:")

    again = upload(client, GOOD_AND_BAD)
    page = client.get(again.headers["Location"]).get_data(as_text=True)
    assert "0 tickets nuevos aceptados, 2 ya existían" in page
    assert "ya existía" in page
    assert count(app, "90000001", "90000003") == 2


def test_semicolons_and_bom(app, client, staff, admin_login):
    admin_login(client, staff["admin"])
    text = "\ufeff" + "\n".join([HEADER, row()]).replace(",", ";")
    response = upload(client, text.encode("utf-8"))
    assert response.status_code == 303
    assert count(app, "90000001") == 1


def _stored_forma_pago(app, number: str) -> str | None:
    with app.app_context():
        return db.session.scalar(select(Ticket.forma_pago).where(Ticket.ticket_number == number))


def test_forma_pago_column_is_stored_and_checked(app, client, staff, admin_login):
    admin_login(client, staff["admin"])
    text = "\n".join(
        [
            HEADER,
            row(number="90000001", forma_pago="04"),
            row(number="90000002"),  # empty: the ticket records none
            row(number="90000003", forma_pago="99"),  # por definir: refused
            row(number="90000004", forma_pago="4"),
        ]
    )
    page = client.get(upload(client, text).headers["Location"]).get_data(as_text=True)
    assert "2 tickets nuevos aceptados" in page and "2 rechazados" in page
    assert "forma_pago: Clave de forma de pago del SAT (c_FormaPago)" in page
    assert _stored_forma_pago(app, "90000001") == "04"
    assert _stored_forma_pago(app, "90000002") is None
    assert count(app, "90000003", "90000004") == 0


def test_a_file_without_the_forma_pago_column_is_accepted(app, client, staff, admin_login):
    admin_login(client, staff["admin"])
    columns = [c for c in COLUMNS if c != "forma_pago"]
    line = dict(zip(COLUMNS, row().split(","), strict=True))
    text = "\n".join([",".join(columns), ",".join(line[c] for c in columns)])
    page = client.get(upload(client, text).headers["Location"]).get_data(as_text=True)
    assert "1 tickets nuevos aceptados" in page and "0 rechazados" in page
    assert count(app, "90000001") == 1 and _stored_forma_pago(app, "90000001") is None


def test_rows_of_one_ticket_must_agree_on_forma_pago(app, client, staff, admin_login):
    admin_login(client, staff["admin"])
    text = "\n".join(
        [HEADER, row(total="72.02", forma_pago="04"), row(total="72.02", forma_pago="01")]
    )
    page = client.get(upload(client, text).headers["Location"]).get_data(as_text=True)
    assert "0 tickets nuevos aceptados" in page and "no coinciden con los de la fila 2" in page
    assert count(app, "90000001") == 0


def test_conflicting_reupload_is_rejected(app, client, staff, admin_login):
    admin_login(client, staff["admin"])
    upload(client, "\n".join([HEADER, row()]))
    changed = "\n".join([HEADER, row().replace("500001", "500009")])
    page = client.get(upload(client, changed).headers["Location"]).get_data(as_text=True)
    assert "otro contenido" in page


def test_bad_files_are_refused_next_to_the_field(client, staff, admin_login):
    admin_login(client, staff["admin"])
    cases = [
        (upload(client, b"%PDF-1.4", name="tickets.pdf", mimetype="application/pdf"), "CSV"),
        (upload(client, "a" * (2 * 1024 * 1024 + 10)), "excede"),
        (upload(client, "\n".join([HEADER, row()]).encode("latin-1") + b"\xf1"), "UTF-8"),
        (upload(client, "nombre,total\nx,1"), "Columna desconocida"),
        (upload(client, "branch,total\nx,1"), "Faltan columnas"),
        (upload(client, b""), "vac"),
        (client.post("/admin/tickets", data={}), "Elija un archivo"),
    ]
    for response, text in cases:
        assert response.status_code == 422
        page = response.get_data(as_text=True)
        assert 'class="field-error"' in page and text in page, text


def test_other_issuer_cannot_see_report(app, client, staff, admin_login):
    admin_login(client, staff["admin"])
    location = upload(client, GOOD_AND_BAD).headers["Location"]
    other = app.test_client()
    admin_login(other, staff["other_admin"])
    assert other.get(location).status_code == 404
    listing = other.get("/admin/tickets").get_data(as_text=True)
    assert "tickets.csv" not in listing and "90000001" not in listing


def test_branch_staff_limited_to_their_branch(app, client, staff, admin_login):
    admin = app.test_client()
    admin_login(admin, staff["admin"])
    admins_report = upload(admin, "\n".join([HEADER, row(branch="POLANCO", number="777")]))
    admin_login(client, staff["branch"])
    assert client.get(admins_report.headers["Location"]).status_code == 404
    text = "\n".join([HEADER, row(number="90000001"), row(branch="POLANCO", number="90000002")])
    response = upload(client, text)
    assert response.status_code == 303
    page = client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Sólo puede cargar tickets de su sucursal" in page
    assert count(app, "90000001") == 1 and count(app, "90000002") == 0
    listing = client.get("/admin/tickets").get_data(as_text=True)
    assert "POLANCO" not in listing
    assert client.get("/admin/tickets?sucursal=999999").status_code == 200


def test_ticket_list_filters(app, client, staff, admin_login, demo):
    admin_login(client, staff["admin"])
    with app.app_context():
        polanco = db.session.scalar(
            select(Ticket.branch_id).where(Ticket.ticket_number != "").limit(1)
        )
    page = client.get(f"/admin/tickets?sucursal={polanco}&estado=open").get_data(as_text=True)
    assert "abierto" in page
    none = client.get("/admin/tickets?estado=cancelled").get_data(as_text=True)
    assert "Ningún ticket coincide" in none


# --- Language of the report, files over the app-wide limit ----------------------------------


def english(client) -> None:
    response = client.post("/idioma", data={"lang": "en", "next": "/admin/tickets"})
    assert response.status_code in (302, 303)


def test_report_reads_in_the_language_of_whoever_opens_it(client, staff, admin_login):
    admin_login(client, staff["admin"])
    location = upload(client, GOOD_AND_BAD).headers["Location"]  # uploaded in Spanish
    page = client.get(location).get_data(as_text=True)
    assert "total: El total no coincide con el de las partidas: 36.01." in page
    english(client)
    page = client.get(location).get_data(as_text=True)
    assert "total: The total does not match the lines&#39; total: 36.01." in page
    assert "No hay una sucursal" not in page and "There is no branch with the code" in page
    assert "Accepted." in page and "Aceptado." not in page


def test_a_file_refused_as_a_whole_is_explained_in_english(client, staff, admin_login):
    admin_login(client, staff["admin"])
    english(client)
    response = upload(client, "nombre,total\nx,1")
    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Unknown column: nombre." in page
    assert "Branch code, e.g. CENTRO." in page  # the columns' documentation too


def test_reports_stored_before_translation_still_read(app, client, staff, admin_login):
    admin_login(client, staff["admin"])
    location = upload(client, "\n".join([HEADER, row()])).headers["Location"]
    with app.app_context():  # as reports were stored before: only the Spanish message
        record = db.session.scalar(select(TicketImport))
        record.report = json.dumps(
            {
                "existing": 0,
                "rows": [
                    {
                        "row": 2,
                        "branch": "CENTRO",
                        "ticket_number": "1",
                        "status": "rejected",
                        "message": "total: Texto viejo.",
                    }
                ],
            }
        )
        db.session.commit()
    english(client)
    response = client.get(location)
    assert response.status_code == 200
    assert "total: Texto viejo." in response.get_data(as_text=True)


def csrf_client(make_app, staff):
    """A client of an app that checks CSRF, signed in as the issuer admin."""
    app = make_app(WTF_CSRF_ENABLED=True)
    client = app.test_client()
    page = client.get("/admin/entrar").get_data(as_text=True)
    token = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', page).group(1)
    response = client.post(
        "/admin/entrar",
        data={"email": staff["admin"], "password": STAFF_PASSWORD, "csrf_token": token},
    )
    assert response.status_code == 303
    return client


def test_file_over_the_app_limit_gets_the_import_page_with_413(make_app, staff):
    client = csrf_client(make_app, staff)
    big = "\n".join([HEADER, row()]) + "\n" + "," * (4 * 1024 * 1024)
    response = upload(client, big)
    assert response.status_code == 413
    page = response.get_data(as_text=True)
    assert "Cargar tickets desde un archivo CSV" in page  # the import page, not the error page
    assert '<p class="field-error" id="file-error" role="alert">' in page
    assert "El archivo excede 2 MB; divídalo en varios." in page
    assert "Archivo demasiado grande" not in page


def test_over_the_limit_elsewhere_or_signed_out_is_unchanged(make_app, staff):
    body = {"file": (io.BytesIO(b"x" * (4 * 1024 * 1024 + 1)), "t.csv", "text/csv")}
    signed_out = make_app().test_client()
    response = signed_out.post("/admin/tickets", data=body, content_type="multipart/form-data")
    assert response.status_code == 303 and "/admin/entrar" in response.headers["Location"]

    client = csrf_client(make_app, staff)
    body = {"file": (io.BytesIO(b"x" * (4 * 1024 * 1024 + 1)), "t.csv", "text/csv")}
    response = client.post("/admin/factura-global", data=body, content_type="multipart/form-data")
    assert response.status_code == 413
    assert "Archivo demasiado grande" in response.get_data(as_text=True)
