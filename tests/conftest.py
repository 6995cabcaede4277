"""Shared fixtures: real SMTP, headless Chromium, the live app, SimpleSAMLphp, the legs.

A test that needs something the machine lacks goes through ``require_peer``: a visible
SKIP locally, a failure when ``ORGLOGIN_REQUIRE_PEERS=1`` (CI).
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

import pytest

from tests.support import system
from tests.support.browser import Screenshots, launch_chromium
from tests.support.legs import POSTGRES_LEG_REASON, on_postgres_leg
from tests.support.peers import PEER_MISSING_PREFIX, REQUIRE_PEERS_ENV, peers_required, require_peer
from tests.support.smtp import SMTPServer


# --- hooks ---------------------------------------------------------------------------------
def pytest_collection_modifyitems(config, items):
    if on_postgres_leg():
        return
    skip = pytest.mark.skip(reason=POSTGRES_LEG_REASON)
    for item in items:
        if item.get_closest_marker("postgres"):
            item.add_marker(skip)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    # Any "peer missing" skip, however it was raised, fails when peers are required.
    if report.skipped and peers_required() and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        if PEER_MISSING_PREFIX in str(reason):
            report.outcome = "failed"
            report.longrepr = f"{reason} ({REQUIRE_PEERS_ENV} is set: a missing peer is a failure)"
    setattr(item, f"report_{report.when}", report)


# --- the test database ---------------------------------------------------------------------
@pytest.fixture(scope="session")
def django_db_modify_db_settings(django_db_modify_db_settings_parallel_suffix, tmp_path_factory):
    """One test database per pytest process, so runs side by side in one tree never share
    (and delete) each other's: SQLite in pytest's temporary folder, PostgreSQL
    ``test_<name>_<pid>``. pytest-django still creates and drops it."""
    from django.conf import settings

    for db in settings.DATABASES.values():
        test = db.setdefault("TEST", {})
        if db["ENGINE"].endswith("sqlite3"):
            test["NAME"] = str(tmp_path_factory.getbasetemp() / "test-orglogin.sqlite3")
        else:
            test["NAME"] = f"{test.get('NAME') or 'test_' + db['NAME']}_{os.getpid()}"


# --- every test --------------------------------------------------------------------------------
def pytest_configure(config):
    """Cache keys of this pytest process get their own prefix, so runs side by side on one
    Redis never see (or wipe) each other's sessions and rate-limit counters."""
    from django.conf import settings
    from django.core.exceptions import ImproperlyConfigured

    try:
        caches = settings.CACHES
    except ImproperlyConfigured:  # pytest run without Django settings (nothing to prefix)
        return
    for cache in caches.values():
        cache["KEY_PREFIX"] = f"{cache.get('KEY_PREFIX', '')}test{os.getpid()}"


def _clear_cache(cache) -> None:
    from django.core.cache.backends.redis import RedisCache

    if isinstance(cache, RedisCache):
        client = cache._cache.get_client(write=True)
        keys = list(client.scan_iter(match=f"{cache.key_prefix}:*", count=1000))
        if keys:
            client.delete(*keys)
    else:
        cache.clear()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Rate limits and cached sessions must not leak from one test into the next."""
    from django.core.cache import caches

    for alias in caches:
        _clear_cache(caches[alias])
    yield


# --- the legs ----------------------------------------------------------------------------------
@pytest.fixture
def postgres_leg():
    """Use in tests that need PostgreSQL + Redis (or mark them ``@pytest.mark.postgres``)."""
    if not on_postgres_leg():
        pytest.skip(POSTGRES_LEG_REASON)


# --- mail ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def _smtp_server_session():
    server = SMTPServer().start()
    yield server
    server.stop()


@pytest.fixture
def smtp_server(_smtp_server_session) -> SMTPServer:
    """A real SMTP server on 127.0.0.1, emptied for this test (Django is not pointed at it)."""
    _smtp_server_session.clear()
    return _smtp_server_session


@pytest.fixture
def smtp_mail(smtp_server, settings) -> SMTPServer:
    """Django sends real SMTP to ``smtp_server`` for this test (instead of pytest-django's
    in-memory outbox)."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = smtp_server.host
    settings.EMAIL_PORT = smtp_server.port
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_TIMEOUT = 10
    return smtp_server


# --- the app served over HTTP ------------------------------------------------------------------
@pytest.fixture
def live_app(live_server, settings) -> str:
    """The app on a real port (transactional DB); BASE_URL and hosts follow it. Returns its URL."""
    url = live_server.url.rstrip("/")
    host = urlsplit(url).hostname
    settings.BASE_URL = url
    settings.ALLOWED_HOSTS = sorted({*settings.ALLOWED_HOSTS, host, "127.0.0.1", "localhost"})
    settings.CSRF_TRUSTED_ORIGINS = sorted({*settings.CSRF_TRUSTED_ORIGINS, url})
    return url


# --- the browser -------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def _playwright():
    if not system.chromium_ok():
        require_peer(system.missing_reason(system.CHROMIUM_NEED))
    from playwright.sync_api import sync_playwright

    manager = sync_playwright().start()
    yield manager
    manager.stop()


@pytest.fixture(scope="session")
def browser(_playwright):
    """Debian's Chromium, headless, shared by the session (each test gets its own context)."""
    instance = launch_chromium(_playwright)
    yield instance
    instance.close()


@pytest.fixture
def screenshots(request) -> Screenshots:
    """``screenshots(page, "step")`` -> test-output/screenshots/<test>/NN-step.png."""
    return Screenshots(request.node.name)


@pytest.fixture
def page(browser, screenshots, request):
    """A fresh browser context (own cookies) and page; a failed test leaves a last screenshot."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    context.set_default_timeout(10_000)
    tab = context.new_page()
    yield tab
    failed = any(
        getattr(getattr(request.node, f"report_{when}", None), "failed", False)
        for when in ("setup", "call")
    )
    if failed:
        try:
            screenshots(tab, "failure")
        except Exception:  # noqa: BLE001 - the page may already be gone
            pass
    context.close()


# --- SimpleSAMLphp -------------------------------------------------------------------------
@pytest.fixture(scope="session")
def _simplesamlphp_session(tmp_path_factory):
    if not system.simplesamlphp_ok():
        require_peer(system.missing_reason(system.SIMPLESAMLPHP_NEED))
    from tests.support.simplesamlphp import SimpleSAMLphpIdP

    idp = SimpleSAMLphpIdP(tmp_path_factory.mktemp("simplesamlphp")).start()
    yield idp
    idp.stop()


@pytest.fixture
def simplesamlphp(_simplesamlphp_session):
    """A running SimpleSAMLphp IdP with the default users and no SPs: add yours with
    ``simplesamlphp.set_remote_sps([RemoteSP(entity_id, acs_url, ...)])``."""
    from tests.support.simplesamlphp import default_users

    _simplesamlphp_session.set_users(default_users())
    _simplesamlphp_session.set_remote_sps([])
    return _simplesamlphp_session
