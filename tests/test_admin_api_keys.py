"""API keys in the back office: made and shown once, listed with their last use, revoked;
only the issuer's admins (and the operator) and only the issuer's keys."""

from __future__ import annotations

import hashlib
import re

from sqlalchemy import select

from webapp.extensions import db
from webapp.models import ApiKey

KEY = re.compile(r"af_live_[A-Za-z0-9_-]{43}")


def create(client, name="Caja 1") -> str:
    response = client.post("/admin/api", data={"name": name})
    assert response.status_code == 200, response.get_data(as_text=True)[:300]
    assert response.headers["Cache-Control"] == "no-store"
    page = response.get_data(as_text=True)
    found = KEY.search(page)
    assert found, page
    return found.group(0)


def test_create_shows_key_once_and_stores_hash(app, client, staff, admin_login):
    admin_login(client, staff["admin"])
    key = create(client)
    with app.app_context():
        row = db.session.scalar(select(ApiKey))
        assert row.key_hash == hashlib.sha256(key.encode()).hexdigest()
        assert key.startswith(row.prefix) and len(row.prefix) < 20
        assert row.issuer_id == staff["issuer_id"]
    listing = client.get("/admin/api").get_data(as_text=True)
    assert key not in listing
    assert "Caja 1" in listing and row.prefix in listing and "nunca" in listing


def test_name_required(client, staff, admin_login):
    admin_login(client, staff["admin"])
    response = client.post("/admin/api", data={"name": "  "})
    assert response.status_code == 422
    assert "Escriba un nombre" in response.get_data(as_text=True)


def test_last_use_shown_and_revoke(app, client, staff, admin_login):
    admin_login(client, staff["admin"])
    key = create(client)
    api = app.test_client()
    headers = {"Authorization": f"Bearer {key}"}
    assert api.get("/api/v1/tickets/CENTRO/1", headers=headers).status_code == 404
    listing = client.get("/admin/api").get_data(as_text=True)
    assert "nunca" not in listing
    with app.app_context():
        row = db.session.scalar(select(ApiKey))
        assert row.last_used_at is not None
    response = client.post(f"/admin/api/{row.id}/revocar")
    assert response.status_code == 303
    assert "revocada" in client.get(response.headers["Location"]).get_data(as_text=True)
    assert api.get("/api/v1/tickets/CENTRO/1", headers=headers).status_code == 401


def test_other_issuer_cannot_see_or_revoke(app, client, staff, admin_login):
    admin_login(client, staff["admin"])
    create(client, "Caja demo")
    with app.app_context():
        row = db.session.scalar(select(ApiKey))
    other = app.test_client()
    admin_login(other, staff["other_admin"])
    assert "Caja demo" not in other.get("/admin/api").get_data(as_text=True)
    assert other.post(f"/admin/api/{row.id}/revocar").status_code == 404
    with app.app_context():
        assert db.session.get(ApiKey, row.id).revoked_at is None


def test_branch_staff_cannot_manage_keys(client, staff, admin_login):
    admin_login(client, staff["branch"])
    assert client.get("/admin/api").status_code == 403
    assert client.post("/admin/api", data={"name": "x"}).status_code == 403


def test_operator_acts_on_the_picked_issuer(app, client, staff, admin_login):
    admin_login(client, staff["operator"])
    assert client.get("/admin/api").status_code == 303  # pick an issuer first
    client.post("/admin/emisores", data={"issuer": staff["other_issuer_id"]})
    create(client, "Caja otro")
    with app.app_context():
        assert db.session.scalar(select(ApiKey)).issuer_id == staff["other_issuer_id"]
