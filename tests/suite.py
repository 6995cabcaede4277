"""`make test`: install what the real peers need, then the whole suite on both legs.

    python -m tests.suite [--leg sqlite|postgres] [pytest args...]

1. Debian packages for the peers (chromium; simplesamlphp php-cli php-xml php-mbstring) are
   installed with apt-get when missing and we are root; otherwise the exact command is
   printed and the tests that need them SKIP with that reason. The OIDC peer's node
   packages (tests/peers/oidc) get `npm ci` when their node_modules is missing.
2. Leg "sqlite": DATABASE_URL and REDIS_URL unset (SQLite file, local-memory cache).
3. Leg "postgres": DATABASE_URL=$TEST_DATABASE_URL, REDIS_URL=$TEST_REDIS_URL (cache and
   sessions on Redis); pytest-django creates and drops the test_ database. Unreachable
   servers skip the leg with the reason, or fail it when ORGLOGIN_REQUIRE_PEERS=1 (CI).

Exit status 0 only if every leg that ran passed and none was refused.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field

from tests.support import system
from tests.support.legs import LEG_ENV
from tests.support.peers import REQUIRE_PEERS_ENV, peers_required

DEFAULT_DATABASE_URL = "postgres://postgres@127.0.0.1:5432/orglogin"
DEFAULT_REDIS_URL = "redis://127.0.0.1:6379/15"
LEG_TIMEOUT = 25 * 60  # seconds; CI allows 60 minutes for everything
COUNT_RE = re.compile(
    r"(\d+) (passed|failed|skipped|errors?|xfailed|xpassed|deselected|warnings?)\b"
)
SUMMARY_RE = re.compile(r"^=*\s*(?:no tests ran|\d+ \w+.*) in [\d.]+s")


@dataclass
class Leg:
    name: str
    env: dict[str, str]
    status: str = "not run"  # passed | FAILED | skipped | not run
    reason: str = ""
    summary: str = ""
    seconds: float = 0.0
    counts: dict[str, int] = field(default_factory=dict)


def log(text: str = "") -> None:
    print(text, flush=True)


def banner(text: str) -> None:
    log()
    log("#" * 88)
    log(f"# {text}")
    log("#" * 88)


def install_peers() -> list[str]:
    if os.environ.get("ORGLOGIN_SKIP_INSTALL"):
        log("ORGLOGIN_SKIP_INSTALL is set: not installing peers")
        return []
    hints = system.ensure_debian_packages() + system.ensure_node_packages()
    for hint in hints:
        log(f"MISSING: {hint}")
    if hints:
        log("  -> the tests that need these are SKIPPED locally (they FAIL in CI)")
    return hints


def postgres_unreachable(database_url: str, redis_url: str) -> str:
    """Why the PostgreSQL + Redis leg cannot run, or "" when both servers answer."""
    import dj_database_url
    import psycopg
    import redis

    try:
        db = dj_database_url.parse(database_url)
        conn = psycopg.connect(
            host=db.get("HOST") or None,
            port=db.get("PORT") or None,
            user=db.get("USER") or None,
            password=db.get("PASSWORD") or None,
            dbname="postgres",  # the test_ database is created from here
            connect_timeout=5,
        )
        conn.close()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        return f"PostgreSQL at {database_url} is not reachable: {' '.join(str(exc).split())}"
    try:
        client = redis.Redis.from_url(redis_url, socket_connect_timeout=5, socket_timeout=5)
        client.ping()
    except Exception as exc:  # noqa: BLE001
        return f"Redis at {redis_url} is not reachable: {exc}"
    return ""


def run_leg(leg: Leg, pytest_args: list[str]) -> None:
    banner(f"leg {leg.name}: {leg.reason}")
    cmd = [sys.executable, "-m", "pytest", "--durations=5", *pytest_args]
    started = time.monotonic()
    process = subprocess.Popen(
        cmd,
        env=leg.env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    assert process.stdout is not None
    try:
        for line in process.stdout:
            print(line, end="", flush=True)
            if SUMMARY_RE.match(line.strip().strip("=").strip()) or SUMMARY_RE.match(line):
                leg.summary = line.strip().strip("=").strip()
            if time.monotonic() - started > LEG_TIMEOUT:
                process.kill()
                leg.summary = f"killed after {LEG_TIMEOUT}s"
                break
        code = process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    leg.seconds = time.monotonic() - started
    for number, word in COUNT_RE.findall(leg.summary):
        word = {"error": "errors", "warning": "warnings"}.get(word, word)
        leg.counts[word] = leg.counts.get(word, 0) + int(number)
    if code == 0:
        leg.status = "passed"
    else:
        leg.status = "FAILED"
        if code == 5:
            leg.reason += "; pytest collected no tests"
        elif not leg.summary:
            leg.summary = f"pytest exited {code}"


def main(argv: list[str]) -> int:
    wanted = {"sqlite", "postgres"}
    pytest_args: list[str] = []
    for arg in argv:
        if arg.startswith("--leg="):
            wanted = {arg.split("=", 1)[1]}
        else:
            pytest_args.append(arg)

    started = time.monotonic()
    banner("make test: peers")
    required = peers_required()
    mode = "1 (a missing peer fails)" if required else "unset (a missing peer skips)"
    log(f"{REQUIRE_PEERS_ENV}={mode}")
    hints = install_peers()
    if not hints:
        log(
            "all peers present: chromium, SimpleSAMLphp"
            + (", oidc-provider" if system.oidc_peer_ok() else "")
        )

    base_env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "REDIS_URL"}}
    legs: list[Leg] = []
    if "sqlite" in wanted:
        legs.append(
            Leg(
                "sqlite",
                {**base_env, LEG_ENV: "sqlite"},
                reason="SQLite (default DATABASE_URL), local-memory cache, database sessions",
            )
        )
    if "postgres" in wanted:
        database_url = os.environ.get("TEST_DATABASE_URL") or DEFAULT_DATABASE_URL
        redis_url = os.environ.get("TEST_REDIS_URL") or DEFAULT_REDIS_URL
        env = {
            **base_env,
            LEG_ENV: "postgres",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
        }
        leg = Leg("postgres", env, reason=f"{database_url} + cache and sessions on {redis_url}")
        problem = postgres_unreachable(database_url, redis_url)
        if problem:
            leg.status = "FAILED" if required else "skipped"
            leg.reason = problem + (
                f" ({REQUIRE_PEERS_ENV} is set)"
                if required
                else " (set TEST_DATABASE_URL / TEST_REDIS_URL)"
            )
        legs.append(leg)

    for leg in legs:
        if leg.status == "not run":
            run_leg(leg, pytest_args)

    banner("make test: summary")
    totals: dict[str, int] = {}
    for leg in legs:
        log(f"  {leg.name:<9} {leg.status:<7} {leg.seconds:7.1f}s  {leg.summary or '-'}")
        if leg.status != "passed" or "no tests" in leg.reason:
            log(f"  {'':<9} {leg.reason}")
        for word, number in leg.counts.items():
            totals[word] = totals.get(word, 0) + number
    for hint in hints:
        log(f"  missing: {hint}")
    ok = all(leg.status in {"passed", "skipped"} for leg in legs) and bool(legs)
    log(f"  total time {time.monotonic() - started:.1f}s; result: {'OK' if ok else 'FAILED'}")
    skipped = f", {totals['skipped']} skipped" if totals.get("skipped") else ""
    failed = totals.get("failed", 0) + totals.get("errors", 0)
    if not ok and failed == 0:
        failed = 1  # a refused leg counts as a failure even though no test reported one
    log(f"total: {totals.get('passed', 0)} passed, {failed} failed{skipped}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
