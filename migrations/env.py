"""Alembic environment: the models' metadata and the app's DATABASE_URL."""

from alembic import context
from sqlalchemy.types import TypeDecorator

from webapp.config import from_environment
from webapp.db import make_engine
from webapp.models import metadata

config = context.config
url = config.attributes.get("database_url") or from_environment()["DATABASE_URL"]


def render_item(type_, obj, _autogen_context):
    """Write the app's column types as their plain SQLAlchemy implementation."""
    if type_ == "type" and isinstance(obj, TypeDecorator):
        return f"sa.{obj.impl!r}"
    return False


def run_migrations_offline() -> None:
    context.configure(url=url, target_metadata=metadata, literal_binds=True, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
            render_item=render_item,
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
