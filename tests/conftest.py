"""Fixtures: `app`, `client`, `make_app`; the database is SQLite, or PostgreSQL when
TEST_DATABASE_URL is set (make test runs the suite both ways)."""

from __future__ import annotations

import os

import pytest
from sqlalchemy import text

from webapp import create_app
from webapp.db import make_engine
from webapp.migrate import upgrade
from webapp.models import metadata

POSTGRES_URL = os.environ.get("TEST_DATABASE_URL")


def pytest_report_header(config):
    backend = "PostgreSQL (TEST_DATABASE_URL)" if POSTGRES_URL else "SQLite"
    return f"autofactura database backend: {backend}"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory) -> str:
    """A database migrated to the newest revision, once per test session."""
    if POSTGRES_URL:
        engine = make_engine(POSTGRES_URL)
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
        engine.dispose()
        url = POSTGRES_URL
    else:
        url = f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"
    upgrade(url)
    return url


@pytest.fixture
def make_app(database_url, tmp_path):
    """Build apps on the test database; rows are wiped after the test."""
    apps = []

    def factory(**overrides):
        config = {
            "TESTING": True,
            "SECRET_KEY": "test-secret-key",
            "DATABASE_URL": database_url,
            "MAIL_URL": f"file://{tmp_path / 'mail'}",
            "BASE_URL": "http://localhost",
            "WTF_CSRF_ENABLED": False,
        }
        config.update(overrides)
        app = create_app(config)
        apps.append(app)
        return app

    yield factory
    engine = make_engine(database_url)
    with engine.begin() as conn:
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()
    for app in apps:
        app.extensions["db"].engine.dispose()


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def client(app):
    return app.test_client()
