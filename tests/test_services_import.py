"""CSV upload of a service provider's data in the back office: accounts with their lines,
charges and payments, each with its row-by-row report; re-uploads change nothing; bad files
and bad rows are explained, never a 500."""

from __future__ import annotations

import io

import pytest
from sqlalchemy import func, select

from webapp.billing import csvfile
from webapp.extensions import db
from webapp.models import Charge, Payment, ServiceAccount, ServiceLine

URL = "/admin/servicios/cargar"
ACCOUNTS = ",".join(csvfile.ACCOUNTS.columns)


@pytest.fixture
def signed_in(client, telecom_admin, admin_login):
    admin_login(client, telecom_admin)
    return client


def upload(client, kind: str, text: str | bytes, name="datos.csv"):
    data = text.encode() if isinstance(text, str) else text
    return client.post(
        URL,
        data={"tipo": kind, "file": (io.BytesIO(data), name, "text/csv")},
        content_type="multipart/form-data",
    )


def report_rows(response) -> list[list[str]]:
    """The report table's rows as text cells (row, key, result, reason)."""
    import re

    html = response.get_data(as_text=True)
    body = html.split("Resultado de cada fila", 1)[1].split("</table>", 1)[0]
    rows = []
    for tr in re.findall(r"<tr>(.*?)</tr>", body, re.S)[1:]:
        cells = [
            re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", tr, re.S)
        ]
        rows.append(cells)
    return rows


def account_row(number="200001", line="55 8200 0001", type_="MOVIL", plan="M-5GB", **cols):
    values = dict.fromkeys(csvfile.ACCOUNTS.columns, "")
    values.update(
        account_number=number,
        holder_name="Juan Pérez López",
        holder_id="XAXX010101000",
        billing_day="8",
        line_number=line,
        service_type=type_,
        plan=plan,
    )
    values.update(cols)
    return ",".join(values[c] for c in csvfile.ACCOUNTS.columns)


def test_page_documents_the_three_layouts_with_samples(signed_in):
    page = signed_in.get(URL)
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    for kind in ("cuentas", "cargos", "pagos"):
        assert f"/admin/servicios/ejemplo-{kind}.csv" in html
    sample = signed_in.get("/admin/servicios/ejemplo-cuentas.csv")
    assert sample.status_code == 200 and sample.mimetype == "text/csv"
    assert sample.get_data(as_text=True).lstrip("\ufeff").startswith(ACCOUNTS)
    assert signed_in.get("/admin/servicios/ejemplo-otro.csv").status_code == 404


def test_the_samples_load_as_they_are(app, signed_in):
    for kind in ("cuentas", "cargos", "pagos"):
        response = upload(signed_in, kind, csvfile.sample_csv(csvfile.KINDS[kind]))
        assert response.status_code == 200
        assert all(row[2] == "creado" for row in report_rows(response)), report_rows(response)
    with app.app_context():
        account = db.session.scalar(select(ServiceAccount).where(ServiceAccount.number == "100900"))
        assert account.fiscal_rfc == "FUNK671228PH6" and account.billing_day == 15
        assert sorted(line.number for line in account.lines) == ["+525581000000", "C90000900"]
        assert db.session.scalar(select(func.count()).select_from(Charge)) == 2
        assert (
            db.session.scalar(select(Charge.tax_rate).where(Charge.external_id == "CARGO-0002"))
            is None
        )
        assert db.session.scalar(select(func.count()).select_from(Payment)) == 2
    again = upload(signed_in, "cuentas", csvfile.sample_csv(csvfile.ACCOUNTS))
    assert {row[2] for row in report_rows(again)} == {"sin cambios"}


def test_accounts_report_row_by_row(app, signed_in):
    text = "\n".join(
        [
            ACCOUNTS,
            account_row("200001", "55 8200 0001"),  # row 2: account of two lines, created
            account_row("200001", "C20000001", "HOGAR", "H-50"),  # row 3
            account_row("200002", "55 8200 0002", plan="NOPE"),  # row 4: unknown plan
            account_row("200003", "55 8200 0003", billing_day="31"),  # row 5
            account_row("200004", "55 8200 0004"),  # rows 6-7: account columns disagree
            account_row("200004", "55 8200 0005", holder_name="OTRO"),
            account_row("200005", "", "", "", fiscal_rfc="FUNK671228PH6"),  # row 8: partial
            account_row("100001", mobile_number_of(1)),  # row 9: an existing account: updated
        ]
    )
    response = upload(signed_in, "cuentas", text)
    assert response.status_code == 200
    rows = {int(r[0]): r for r in report_rows(response)}
    assert rows[2][2] == rows[3][2] == "creado"
    assert rows[4][2] == "rechazado" and "plan: " in rows[4][3] and "NOPE" in rows[4][3]
    assert rows[5][2] == "rechazado" and rows[5][3].startswith("billing_day:")
    assert rows[7][2] == "rechazado" and "fila 6" in rows[7][3]
    assert rows[6][2] == "rechazado" and "fila 7" in rows[6][3]
    assert rows[8][2] == "rechazado" and "fiscal_cp" in rows[8][3]
    assert rows[9][2] == "actualizado"
    with app.app_context():
        numbers = set(db.session.scalars(select(ServiceAccount.number)))
        assert "200001" in numbers and not numbers & {"200002", "200003", "200004", "200005"}
        assert db.session.scalar(
            select(ServiceLine.number).where(ServiceLine.number == "+525582000001")
        )


def mobile_number_of(i: int) -> str:
    from webapp.demo.services import mobile_number

    return mobile_number(i)


def test_charges_and_payments_report_row_by_row(app, signed_in):
    charges = "\n".join(
        [
            ",".join(csvfile.CHARGES.columns),
            "C-1,100001,,2026-05,Datos extra,1,86.21,,,",
            "C-2,100001,,2026-5,Datos extra,1,abc,0.5,,",
            "C-3,999999,,2026-05,Datos extra,,10,exento,,",
        ]
    )
    response = upload(signed_in, "cargos", charges)
    rows = {int(r[0]): r for r in report_rows(response)}
    assert rows[2][2] == "creado"
    assert rows[3][2] == "rechazado"
    assert all(f"{c}:" in rows[3][3] for c in ("period", "unit_price", "tax_rate"))
    assert rows[4][2] == "rechazado" and "999999" in rows[4][3]

    payments = "\n".join(
        [
            ",".join(csvfile.PAYMENTS.columns),
            "P-1,100001,349.00,2026-05-03T10:00:00-06:00,03,SPEI",
            "P-1,100001,350.00,2026-05-03T10:00:00-06:00,03,SPEI",
            "P-2,100001,1e3,ayer,99,",
        ]
    )
    response = upload(signed_in, "pagos", payments)
    rows = {int(r[0]): r for r in report_rows(response)}
    assert rows[2][2] == "creado"
    assert rows[3][2] == "rechazado" and "no se modifica" in rows[3][3]
    assert rows[4][2] == "rechazado"
    assert all(f"{c}:" in rows[4][3] for c in ("amount", "received_at", "forma_pago"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\xff\xfe\x00bad", "CSV"),
        ("nada,de,esto\n1,2,3", "Columna desconocida"),
        ("account_number,holder_name\n1,2", "Faltan columnas"),
        ('external_id,account,period,description,unit_price\n"abc,1', "No pudimos leer"),
        ("", "vacío"),
    ],
)
def test_bad_files_are_explained(signed_in, data, message):
    kind = "cargos" if isinstance(data, str) and data.startswith("external") else "cuentas"
    response = upload(signed_in, kind, data)
    assert response.status_code == 422
    assert message in response.get_data(as_text=True)


def test_hostile_rows_never_500(signed_in):
    huge = "x" * 5000
    text = "\n".join(
        [
            ACCOUNTS,
            account_row(huge, huge, huge, huge, holder_name=huge, email=huge),
            account_row("200010", "\x01", billing_day="1e9", contact_mobile="+999"),
        ]
    )
    response = upload(signed_in, "cuentas", text)
    assert response.status_code == 200
    assert {r[2] for r in report_rows(response)} == {"rechazado"}


def test_wrong_kind_and_retail_issuer(client, signed_in, staff, admin_login):
    response = signed_in.post(
        URL,
        data={"tipo": "otro", "file": (io.BytesIO(b"a"), "x.csv", "text/csv")},
        content_type="multipart/form-data",
    )
    assert response.status_code == 422
    retail = client.application.test_client()
    admin_login(retail, staff["admin"])
    page = retail.get(URL)
    assert page.status_code == 200
    assert "proveedores de servicios" in page.get_data(as_text=True)
    assert upload(retail, "cuentas", csvfile.sample_csv(csvfile.ACCOUNTS)).status_code == 200
    with client.application.app_context():
        assert not db.session.scalar(
            select(ServiceAccount).where(ServiceAccount.number == "100900")
        )


def test_branch_staff_cannot_upload(app, client, staff, admin_login):
    admin_login(client, staff["branch"])
    assert client.get(URL).status_code == 403
