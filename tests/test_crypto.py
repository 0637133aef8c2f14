"""Encryption at rest: round trips, and a clear failure under another key."""

from __future__ import annotations

import pytest

from webapp import crypto


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
        pytest.raises(crypto.DecryptionError),
    ):
        crypto.decrypt(token)


def test_app_falls_back_to_secret_key(make_app):
    with make_app(SECRET_KEY="one", DATA_KEY=None).app_context():
        token = crypto.encrypt(b"payload")
    with make_app(SECRET_KEY="one", DATA_KEY=None).app_context():
        assert crypto.decrypt(token) == b"payload"
    with (
        make_app(SECRET_KEY="two", DATA_KEY=None).app_context(),
        pytest.raises(crypto.DecryptionError),
    ):
        crypto.decrypt(token)
