"""Encryption at rest: round trips, a clear failure under another key, DATA_KEY as a setting of
its own (a SECRET_KEY change breaks nothing), legacy data still opening, and `data-key rotate`."""

from __future__ import annotations

import json
import threading

import pytest
from sqlalchemy import select

from webapp import crypto
from webapp.config import _instance_key, from_environment
from webapp.csd import issuer_signer
from webapp.extensions import db
from webapp.models import Issuer


def test_round_trip_and_ciphertext_hides_the_data():
    secret = b"contrasena del CSD"
    token = crypto.encrypt_with(crypto.cipher("data key"), secret)
    assert secret not in token
    assert crypto.decrypt_with(crypto.cipher("data key"), token) == secret


def test_wrong_key_fails_clearly():
    token = crypto.encrypt_with(crypto.cipher("right key"), b"payload")
    with pytest.raises(crypto.DecryptionError, match="another key"):
        crypto.decrypt_with(crypto.cipher("wrong key"), token)


def test_altered_token_fails():
    f = crypto.cipher("k")
    token = bytearray(crypto.encrypt_with(f, b"payload"))
    token[-5] = ord("A") if token[-5] != ord("A") else ord("B")
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt_with(f, bytes(token))


def test_empty_key_material_is_refused():
    with pytest.raises(ValueError):
        crypto.cipher("")


def test_secret_key_and_data_key_derive_different_keys():
    token = crypto.encrypt_with(crypto.cipher("same string"), b"x")
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt_with(crypto.cipher("same string", from_secret_key=True), token)


# --- DATA_KEY, a setting of its own --------------------------------------------------------


def test_data_key_is_generated_once_apart_from_secret_key(tmp_path, monkeypatch):
    monkeypatch.delenv("DATA_KEY", raising=False)
    monkeypatch.delenv("SECRET_KEY", raising=False)
    first = from_environment(tmp_path)
    assert len(first["DATA_KEY"]) >= 40 and first["DATA_KEY"] != first["SECRET_KEY"]
    assert (tmp_path / "data_key").read_text() == first["DATA_KEY"]
    assert (tmp_path / "data_key").stat().st_mode & 0o077 == 0
    # A new SECRET_KEY leaves the DATA_KEY alone; DATA_KEY from the environment wins.
    monkeypatch.setenv("SECRET_KEY", "a new secret key")
    assert from_environment(tmp_path)["DATA_KEY"] == first["DATA_KEY"]
    monkeypatch.setenv("DATA_KEY", "from the environment")
    assert from_environment(tmp_path)["DATA_KEY"] == "from the environment"


def test_processes_starting_together_agree_on_one_generated_key(tmp_path):
    keys: list[str] = []
    barrier = threading.Barrier(8)

    def start() -> None:
        barrier.wait()
        keys.append(_instance_key(tmp_path, "data_key"))

    threads = [threading.Thread(target=start) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8 and len(set(keys)) == 1
    assert (tmp_path / "data_key").read_text() == keys[0]
    assert [p.name for p in tmp_path.iterdir()] == ["data_key"]  # nothing left aside


def test_an_empty_key_file_is_refused_not_used(tmp_path, monkeypatch):
    monkeypatch.delenv("DATA_KEY", raising=False)
    (tmp_path / "data_key").write_text("\n")
    with pytest.raises(RuntimeError, match="data_key is empty"):
        from_environment(tmp_path)


def test_app_uses_data_key_when_set(make_app):
    first = make_app(SECRET_KEY="one", DATA_KEY="shared data key")
    with first.app_context():
        token = crypto.encrypt(b"payload")
    # Another SECRET_KEY does not matter while DATA_KEY is the same...
    with make_app(SECRET_KEY="two", DATA_KEY="shared data key").app_context():
        assert crypto.decrypt(token) == b"payload"
    # ...and another DATA_KEY cannot read it.
    with (
        make_app(SECRET_KEY="one", DATA_KEY="other data key").app_context(),
        pytest.raises(crypto.DecryptionError, match="another key"),
    ):
        crypto.decrypt(token)


def test_a_new_secret_key_still_signs_with_the_stored_csd(make_app, demo):
    """The operator rotates SECRET_KEY (sessions and email links): invoicing goes on."""
    with make_app(SECRET_KEY="a rotated secret key").app_context():
        issuer = db.session.scalar(select(Issuer).where(Issuer.slug == "demo"))
        assert issuer_signer(issuer).rfc == "TDG150312K46"


def test_data_sealed_before_data_key_existed_still_opens(make_app):
    """Installations that ran without DATA_KEY sealed under the SECRET_KEY derivation."""
    legacy = crypto.encrypt_with(crypto.cipher("old secret", from_secret_key=True), b"csd")
    with make_app(SECRET_KEY="old secret", DATA_KEY="new data key").app_context():
        assert crypto.decrypt(legacy) == b"csd"
        fresh = crypto.encrypt(b"csd")  # new data goes under DATA_KEY, not the legacy key
    assert crypto.decrypt_with(crypto.cipher("new data key"), fresh) == b"csd"
    with (
        make_app(SECRET_KEY="another secret", DATA_KEY="new data key").app_context(),
        pytest.raises(crypto.DecryptionError),
    ):
        crypto.decrypt(legacy)  # why `data-key rotate` exists: see below


# --- flask data-key status / rotate --------------------------------------------------------

SEALED = ("csd_key_encrypted", "csd_password_encrypted", "pac_credentials_encrypted")
PAC_CREDENTIALS = {"username": "facturas@tienda.example", "password": "s3creta"}


def _seal_demo(app, fernet) -> dict[str, bytes]:
    """Re-encrypt the demo issuer's CSD and PAC credentials under `fernet`; their plain bytes."""
    with app.app_context():
        issuer = db.session.scalar(select(Issuer).where(Issuer.slug == "demo"))
        plain = {
            "csd_key_encrypted": crypto.decrypt(issuer.csd_key_encrypted),
            "csd_password_encrypted": crypto.decrypt(issuer.csd_password_encrypted),
            "pac_credentials_encrypted": json.dumps(PAC_CREDENTIALS).encode(),
        }
        for name, value in plain.items():
            setattr(issuer, name, crypto.encrypt_with(fernet, value))
        db.session.commit()
        return plain


def _stored(app) -> dict[str, bytes]:
    with app.app_context():
        issuer = db.session.scalar(select(Issuer).where(Issuer.slug == "demo"))
        return {name: bytes(getattr(issuer, name)) for name in SEALED}


def _cli(app, *args, **env):
    return app.test_cli_runner().invoke(args=["data-key", *args], env=env or None)


def test_rotate_reseals_legacy_data_so_secret_key_can_change(make_app, app, demo):
    plain = _seal_demo(app, crypto.cipher(app.config["SECRET_KEY"], from_secret_key=True))

    status = _cli(app, "status")
    assert status.exit_code == 0, status.output
    assert "under SECRET_KEY (legacy): 3" in status.output
    assert "3 to reseal" in status.output

    result = _cli(app, "rotate")
    assert result.exit_code == 0, result.output
    assert "resealed under the current DATA_KEY: 3" in result.output
    data_key = crypto.cipher(app.config["DATA_KEY"])
    assert {k: data_key.decrypt(v) for k, v in _stored(app).items()} == plain

    # SECRET_KEY may now change: the CSD still signs and the PAC credentials still open.
    with make_app(SECRET_KEY="the next secret key").app_context():
        issuer = db.session.scalar(select(Issuer).where(Issuer.slug == "demo"))
        assert issuer_signer(issuer).rfc == "TDG150312K46"
        assert json.loads(crypto.decrypt(issuer.pac_credentials_encrypted)) == PAC_CREDENTIALS

    before = _stored(app)
    again = _cli(app, "rotate")
    assert again.exit_code == 0, again.output
    assert "under DATA_KEY: 3" in again.output
    assert "resealed under the current DATA_KEY: 0" in again.output
    assert _stored(app) == before  # what is under DATA_KEY already is left alone


def test_rotate_moves_data_from_an_old_data_key(make_app, app, demo):
    plain = _seal_demo(app, crypto.cipher("the old data key"))
    new = make_app(DATA_KEY="the new data key")
    with new.app_context(), pytest.raises(crypto.DecryptionError):
        issuer_signer(db.session.scalar(select(Issuer).where(Issuer.slug == "demo")))

    refused = _cli(new, "rotate")  # without the old key nothing opens: nothing changes
    assert refused.exit_code == 1
    assert "nothing changed: 3 stored secret(s) open under no key given" in refused.output
    assert "Issuer #" in refused.output and "csd_key_encrypted" in refused.output

    result = _cli(new, "rotate", "--old-key", "the old data key")
    assert result.exit_code == 0, result.output
    assert "under --old-key: 3" in result.output
    assert "resealed under the current DATA_KEY: 3" in result.output

    stored = _stored(app)
    new_key, old_key = crypto.cipher("the new data key"), crypto.cipher("the old data key")
    assert {k: new_key.decrypt(v) for k, v in stored.items()} == plain
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt_with(old_key, stored["csd_key_encrypted"])
    with new.app_context():
        issuer = db.session.scalar(select(Issuer).where(Issuer.slug == "demo"))
        assert issuer_signer(issuer).rfc == "TDG150312K46"


def test_the_old_key_can_come_from_the_environment(make_app, app, demo):
    _seal_demo(app, crypto.cipher("the old data key"))
    new = make_app(DATA_KEY="the new data key")
    result = _cli(new, "rotate", OLD_DATA_KEY="the old data key")
    assert result.exit_code == 0, result.output
    assert "resealed under the current DATA_KEY: 3" in result.output


def test_rotate_changes_nothing_when_one_secret_opens_under_no_key(app, demo):
    _seal_demo(app, crypto.cipher(app.config["SECRET_KEY"], from_secret_key=True))
    with app.app_context():
        issuer = db.session.scalar(select(Issuer).where(Issuer.slug == "demo"))
        issuer.pac_credentials_encrypted = crypto.encrypt_with(crypto.cipher("lost"), b"{}")
        db.session.commit()
        issuer_id = issuer.id
    before = _stored(app)

    result = _cli(app, "rotate")
    assert result.exit_code == 1
    assert f"Issuer #{issuer_id}: pac_credentials_encrypted" in result.output
    assert "under SECRET_KEY (legacy): 2" in result.output
    assert "upload that CSD or those PAC credentials again" in result.output
    assert _stored(app) == before  # all or nothing

    status = _cli(app, "status")
    assert status.exit_code == 1
    assert "under no key given: 1" in status.output
