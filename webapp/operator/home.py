"""home of the operator console (to be built)."""

from webapp.operator import bp  # noqa: F401
