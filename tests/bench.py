"""`make bench`: what the login path costs on this machine, as a table.

    python -m tests.bench [--quick] [name-substring ...]

Runs on a throw-away SQLite database (or BENCH_DATABASE_URL, e.g. a scratch PostgreSQL
database: it is migrated and written to). Each row reports the median of several batches.
Add a row with the ``@bench`` decorator: a function that receives ``n`` and does the
operation ``n`` times (set-up belongs in a ``setup`` callable, which is not timed).
"""

from __future__ import annotations

import atexit
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Bench:
    name: str
    func: Callable[[int], None]
    n: int
    setup: Callable[[], None] | None = None


BENCHES: list[Bench] = []


def bench(name: str, *, n: int, setup: Callable[[], None] | None = None):
    def register(func: Callable[[int], None]) -> Callable[[int], None]:
        BENCHES.append(Bench(name, func, n, setup))
        return func

    return register


def configure_django() -> None:
    scratch = tempfile.mkdtemp(prefix="orglogin-bench-")
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    os.environ.setdefault("DEBUG", "1")
    os.environ["DATABASE_URL"] = os.environ.get(
        "BENCH_DATABASE_URL", f"sqlite:///{scratch}/bench.sqlite3"
    )
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "orglogin.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)


# --- rows ------------------------------------------------------------------------------------
def _hasher():
    from orglogin.accounts.hashers import OwaspArgon2PasswordHasher

    return OwaspArgon2PasswordHasher()


@bench("password hash (argon2id, OWASP minimum)", n=10)
def password_hash(n: int) -> None:
    hasher = _hasher()
    for _ in range(n):
        hasher.encode("correct horse battery staple", hasher.salt())


_ENCODED: list[str] = []


def _encode_once() -> None:
    if not _ENCODED:
        hasher = _hasher()
        _ENCODED.append(hasher.encode("correct horse battery staple", hasher.salt()))


@bench("password verify (argon2id, OWASP minimum)", n=10, setup=_encode_once)
def password_verify(n: int) -> None:
    hasher = _hasher()
    for _ in range(n):
        assert hasher.verify("correct horse battery staple", _ENCODED[0])


ORG_COUNT = 1000


def _seed_orgs() -> None:
    from orglogin.organizations.models import Domain, Organization

    if Organization.objects.filter(slug="bench-0").exists():
        return
    orgs = Organization.objects.bulk_create(
        Organization(slug=f"bench-{i}", name=f"Bench Org {i}") for i in range(ORG_COUNT)
    )
    Domain.objects.bulk_create(
        Domain(organization=org, name=f"bench-{i}.test", verified=True)
        for i, org in enumerate(orgs)
    )


@bench(f"domain -> org lookup (email, {ORG_COUNT} orgs)", n=500, setup=_seed_orgs)
def domain_lookup(n: int) -> None:
    from orglogin.organizations.hrd import find_organization

    for i in range(n):
        assert find_organization(f"jane@bench-{i % ORG_COUNT}.test") is not None


@bench(f"domain -> org lookup (unknown domain, {ORG_COUNT} orgs)", n=500, setup=_seed_orgs)
def domain_lookup_miss(n: int) -> None:
    from orglogin.organizations.hrd import find_organization

    for i in range(n):
        assert find_organization(f"https://www.nowhere-{i}.test/") is None


# --- the SAML login path ------------------------------------------------------------------
SAML_RESPONSES: list[str] = []
SAML_STATE: dict = {}


def _saml_setup() -> None:
    """A dev-IdP connection that allows IdP-initiated login (no pending request to forge),
    one linked learner, and fresh signed responses (each assertion ID is single-use)."""
    from orglogin.accounts.models import User
    from orglogin.organizations.actions import create_organization
    from orglogin.sso.connections import create_saml_connection
    from orglogin.sso.models import OrgIdentity
    from orglogin.sso.protocols import devidp

    if SAML_STATE:
        return
    org = create_organization("bench-saml", "Bench SAML", ["bench-saml.test"], actor=None)
    connection = create_saml_connection(
        org, metadata_xml=devidp.dev_idp_metadata_xml(), actor=None, allow_idp_initiated=True
    )
    user = User.objects.create_user("jane@bench-saml.test", "correct horse battery staple")
    OrgIdentity.objects.create(
        connection=connection,
        subject=devidp.persistent_name_id("jane@bench-saml.test"),
        user=user,
    )
    SAML_STATE["connection"] = connection


def _fresh_responses(count: int) -> list[str]:
    from orglogin.sso.protocols import devidp

    connection = SAML_STATE["connection"]
    return [
        devidp.build_signed_response(
            connection, email="jane@bench-saml.test", given_name="Jane", in_response_to=None
        )
        for _ in range(count)
    ]


@bench("SAML response verify + checks (parse_response)", n=200, setup=_saml_setup)
def saml_parse(n: int) -> None:
    from orglogin.sso.protocols.saml import SamlConnector

    responses = _fresh_responses(n)  # signing is the IdP's cost; excluded below
    connector = SamlConnector(SAML_STATE["connection"])
    started = time.perf_counter()
    for response in responses:
        connector.parse_response(response, expected_request_id=None)
    _exclude(time.perf_counter() - started)


@bench("SAML returning login: ACS POST + 303 + continue (Django)", n=100, setup=_saml_setup)
def saml_acs_round_trip(n: int) -> None:
    from django.test import Client

    connection = SAML_STATE["connection"]
    acs = f"/sso/saml/{connection.public_id}/acs/"
    responses = _fresh_responses(n)
    started = time.perf_counter()
    for response in responses:
        browser = Client()
        handoff = browser.post(acs, {"SAMLResponse": response})
        final = browser.get(handoff["Location"])
        assert final.status_code == 302 and final["Location"] == "/dashboard/", final
    _exclude(time.perf_counter() - started)


# Rows whose set-up must happen inside the timed function report only the part they time.
_TIMED: list[float] = []


def _exclude(seconds: float) -> None:
    _TIMED.append(seconds)


# --- running -----------------------------------------------------------------------------------
def run(benches: list[Bench], *, batches: int) -> list[tuple[Bench, float]]:
    results = []
    for item in benches:
        if item.setup:
            item.setup()
        item.func(max(1, item.n // 10))  # warm up
        per_call = []
        for _ in range(batches):
            _TIMED.clear()
            started = time.perf_counter()
            item.func(item.n)
            elapsed = sum(_TIMED) if _TIMED else time.perf_counter() - started
            per_call.append(elapsed / item.n)
        results.append((item, statistics.median(per_call)))
    return results


def format_time(seconds: float) -> str:
    if seconds >= 1e-3:
        return f"{seconds * 1e3:,.2f} ms"
    return f"{seconds * 1e6:,.1f} µs"


def main(argv: list[str]) -> int:
    quick = "--quick" in argv
    wanted = [a for a in argv if not a.startswith("--")]
    configure_django()
    benches = [b for b in BENCHES if not wanted or any(w in b.name for w in wanted)]
    results = run(benches, batches=1 if quick else 5)
    from django.db import connection

    print(f"database: {connection.vendor}; {os.cpu_count()} cores; Python {sys.version.split()[0]}")
    width = max(len(b.name) for b, _ in results)
    print(f"{'operation':<{width}}  {'calls':>6}  {'median/call':>12}  {'per core/s':>11}")
    print(f"{'-' * width}  {'-' * 6}  {'-' * 12}  {'-' * 11}")
    for item, seconds in results:
        rate = 1 / seconds if seconds else float("inf")
        calls = item.n * (1 if quick else 5)
        print(f"{item.name:<{width}}  {calls:>6}  {format_time(seconds):>12}  {rate:>11,.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
