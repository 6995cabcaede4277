"""Which leg of `make test` this run is: SQLite + local memory, or PostgreSQL + Redis."""

from __future__ import annotations

import os

LEG_ENV = "ORGLOGIN_TEST_LEG"  # set by tests/suite.py: "sqlite" or "postgres"
POSTGRES_LEG_REASON = "runs in the PostgreSQL + Redis leg of `make test` only"


def on_postgres_leg() -> bool:
    """True when Django's database is PostgreSQL and the cache + sessions are on Redis."""
    from django.conf import settings

    engine = settings.DATABASES["default"]["ENGINE"]
    backend = settings.CACHES["default"]["BACKEND"]
    return "postgresql" in engine and "redis" in backend.lower()


def leg_name() -> str:
    return os.environ.get(LEG_ENV) or ("postgres" if on_postgres_leg() else "sqlite")
