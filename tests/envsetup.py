"""Loaded by pytest before Django (see pyproject `-p tests.envsetup`): test environment defaults.

Anything set from outside (DATABASE_URL for the PostgreSQL leg, REDIS_URL) wins.
"""

import os

os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("SECRET_KEY", "test-secret-key-" + "x" * 40)
os.environ.setdefault("BASE_URL", "http://testserver")
os.environ.setdefault("PLATFORM_NAME", "OrgLogin Learning")
# Playwright's sync API runs an event loop in the test thread; Django's ORM refuses to run
# there unless told it is safe (it is: the loop belongs to Playwright, not to our code).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
