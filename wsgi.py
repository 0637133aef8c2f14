"""WSGI entry point for production servers, e.g. `gunicorn wsgi:app`."""

from webapp.app import create_app

app = create_app()
