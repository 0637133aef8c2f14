"""The restore drill: scripts/backup.sh dumps a database that holds a stamped invoice,
scripts/restore.sh restores it into a new database on the same server, and what comes back is
the same (row counts, the stamped XML byte for byte); with the same DATA_KEY, the restored
installation signs with its stored CSD."""

from __future__ import annotations

import importlib.util
import os
import subprocess

import pytest
from sqlalchemy import func, make_url, select, text

from tests.flows import start, ticket_data
from webapp.config import ROOT
from webapp.csd import issuer_signer
from webapp.db import make_engine
from webapp.extensions import db
from webapp.models import Invoice, InvoiceStatus, Issuer, metadata

pytestmark = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(
        not os.environ.get("TEST_DATABASE_URL"),
        reason="needs PostgreSQL (TEST_DATABASE_URL; make test runs it)",
    ),
]


def _pg_bindir() -> str:
    """The PostgreSQL programs scripts/with_postgres.py runs the test server with."""
    spec = importlib.util.spec_from_file_location(
        "with_postgres", ROOT / "scripts/with_postgres.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.pg_bindir()


def _run(script: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(ROOT / "scripts" / script), *args],
        env={**os.environ, "PG_BINDIR": _pg_bindir(), **env},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture
def new_database(database_url):
    """The URL of a new, empty database on the test server; dropped afterwards."""
    name = f"{make_url(database_url).database}_restored"
    server = make_engine(database_url).execution_options(isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield make_url(database_url).set(database=name).render_as_string(hide_password=False)
    with server.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    server.dispose()


def _snapshot(url: str) -> dict:
    """Rows per table of the app, the stamped invoices' XML, the schema revision."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            counts = {
                t.name: conn.scalar(select(func.count()).select_from(t))
                for t in metadata.sorted_tables
            }
            xml = conn.execute(
                select(Invoice.id, Invoice.uuid, Invoice.xml)
                .where(Invoice.status == InvoiceStatus.STAMPED)
                .order_by(Invoice.id)
            ).all()
            revision = conn.scalar(text("SELECT version_num FROM alembic_version"))
    finally:
        engine.dispose()
    return {"counts": counts, "xml": [tuple(r) for r in xml], "revision": revision}


def test_backup_then_restore_gives_back_the_legal_record(
    make_app, app, client, demo, database_url, new_database, tmp_path
):
    t = demo["fresh"][0]
    r = client.post("/facturar/demo/ticket", data=ticket_data(t, start(client, t["branch_id"])))
    assert r.status_code == 303, r.get_data(as_text=True)[:500]
    source = _snapshot(database_url)
    [(_, uuid, xml)] = source["xml"]
    assert uuid and b"TimbreFiscalDigital" in xml
    assert source["counts"]["issuer"] and source["counts"]["ticket"]

    backup = _run("backup.sh", str(tmp_path), DATABASE_URL=database_url)
    assert backup.returncode == 0, backup.stderr
    [dump] = tmp_path.glob("autofactura-*.dump")
    assert f"backup: {dump}" in backup.stdout
    assert "DATA_KEY and SECRET_KEY are not in it" in backup.stdout
    assert dump.stat().st_mode & 0o077 == 0  # the dump holds customers' data
    assert (tmp_path / f"{dump.name}.sha256").exists()
    assert not list(tmp_path.glob("*.partial"))

    restore = _run("restore.sh", str(dump), new_database)
    assert restore.returncode == 0, restore.stderr
    assert f"schema revision: {source['revision']}" in restore.stdout
    assert f"invoices: {source['counts']['invoice']}," in restore.stdout

    restored = _snapshot(new_database)
    assert restored["counts"] == source["counts"]
    assert restored["xml"] == source["xml"]  # the stamped XML, byte for byte
    assert restored["revision"] == source["revision"]

    # With the same DATA_KEY, the restored installation signs with the stored CSD.
    restored_app = make_app(DATABASE_URL=new_database)
    try:
        with restored_app.app_context():
            issuer = db.session.scalar(select(Issuer).where(Issuer.slug == "demo"))
            assert issuer_signer(issuer).rfc == "TDG150312K46"
    finally:
        restored_app.extensions["db"].engine.dispose()

    # A second restore into the now non-empty database is refused and changes nothing.
    again = _run("restore.sh", str(dump), new_database)
    assert again.returncode == 1
    assert "the target database is not empty" in again.stderr
    assert _snapshot(new_database) == restored


def _tables(url: str) -> int:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return conn.scalar(text("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"))
    finally:
        engine.dispose()


def test_a_broken_dump_leaves_the_target_empty(app, demo, database_url, new_database, tmp_path):
    backup = _run("backup.sh", str(tmp_path / "whole.dump"), DATABASE_URL=database_url)
    assert backup.returncode == 0, backup.stderr
    whole = (tmp_path / "whole.dump").read_bytes()

    # Cut short (a copy that did not finish): the restore fails as a whole, nothing stays.
    cut = tmp_path / "cut" / "autofactura-20260101T000000Z.dump"
    cut.parent.mkdir()
    cut.write_bytes(whole[: len(whole) * 2 // 3])
    result = _run("restore.sh", str(cut), new_database)
    assert result.returncode != 0
    assert "pg_restore" in result.stderr
    assert _tables(new_database) == 0

    # Altered, with the checksum backup.sh wrote: refused before pg_restore runs.
    (tmp_path / "whole.dump").write_bytes(whole[:-1] + bytes([whole[-1] ^ 1]))
    result = _run("restore.sh", str(tmp_path / "whole.dump"), new_database)
    assert result.returncode == 1
    assert "does not match" in result.stderr
    assert _tables(new_database) == 0


def test_backup_refuses_a_sqlite_database(tmp_path):
    result = _run("backup.sh", str(tmp_path), DATABASE_URL="sqlite:///instance/autofactura.db")
    assert result.returncode == 1
    assert "not a PostgreSQL URL" in result.stderr
    assert list(tmp_path.iterdir()) == []
