"""Bulk invitations through the real CLI and real worker processes to a real SMTP server.

`.venv/bin/orglogin` runs in its own processes against a temporary SQLite *file* database
(WAL, as in `make run`), mailing the aiosmtpd server of `smtp_server`:

- `invite --csv` of 5,000 addresses returns once they are issued and queued: no mail has
  been sent when it exits (no worker is running yet);
- two `db_worker` processes then deliver every invitation exactly once (counted per address
  at the SMTP server), and `invite-status` reports 5,000 sent;
- with the SMTP server down the invitations end in "retry" with the error shown by
  `invite-status`; once the backoff has passed and SMTP is back, they are delivered.

Runs once, in the sqlite leg: it never touches the leg's database (its own SQLite file,
its own processes), so the postgres leg would repeat it unchanged for another ~40 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.support.legs import on_postgres_leg
from tests.support.net import free_port

ORGLOGIN = Path(sys.executable).with_name("orglogin")
BULK = 5_000
WORKERS = 2

pytestmark = [pytest.mark.timeout(300)]


@pytest.fixture(autouse=True)
def _once():
    if on_postgres_leg():
        pytest.skip("uses its own SQLite file and processes: runs once, in the sqlite leg")
    if not ORGLOGIN.exists():
        pytest.skip(f"the orglogin console script is not installed ({ORGLOGIN})")


class Cli:
    """`orglogin ...` in a subprocess with the test's environment (database, SMTP)."""

    def __init__(self, tmp_path: Path, smtp_port: int) -> None:
        self.tmp_path = tmp_path
        self.env = {
            **os.environ,
            "DEBUG": "1",
            "DEV_IDP": "0",
            "SECRET_KEY": "bulk-invite-secret-" + "x" * 40,
            "BASE_URL": "http://127.0.0.1:8000",
            "DATABASE_URL": f"sqlite:///{tmp_path / 'bulk.sqlite3'}",
            "EMAIL_HOST": "127.0.0.1",
        }
        for name in ("DJANGO_SETTINGS_MODULE", "REDIS_URL"):
            self.env.pop(name, None)
        self.smtp_port = smtp_port

    def environment(self) -> dict[str, str]:
        return {**self.env, "EMAIL_PORT": str(self.smtp_port)}

    def __call__(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
        result = subprocess.run(
            [str(ORGLOGIN), *argv],
            env=self.environment(),
            cwd=self.tmp_path,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, (argv, result.stdout, result.stderr)
        return result

    def workers(self, count: int, *, timeout: float) -> list[str]:
        """Run `count` batch workers side by side until the ready queue is empty."""
        logs = []
        processes = []
        for index in range(count):
            log = self.tmp_path / f"worker-{len(list(self.tmp_path.glob('worker-*')))}.log"
            logs.append(log)
            processes.append(
                subprocess.Popen(
                    [
                        str(ORGLOGIN),
                        "db_worker",
                        "--queue-name",
                        "*",
                        "--batch",
                        "--no-reload",
                        "--no-startup-delay",
                        "--worker-id",
                        f"bulk-{index}-{time.monotonic_ns()}",
                    ],
                    env=self.environment(),
                    cwd=self.tmp_path,
                    stdout=log.open("w"),
                    stderr=subprocess.STDOUT,
                )
            )
        deadline = time.monotonic() + timeout
        try:
            for process in processes:
                process.wait(timeout=max(1, deadline - time.monotonic()))
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                    process.wait()
        texts = [log.read_text() for log in logs]
        for process, text in zip(processes, texts, strict=True):
            assert process.returncode == 0, text[-3000:]
        return texts

    def status(self, org: str, program: str) -> dict:
        return json.loads(self("invite-status", org, program, "--json").stdout)


@pytest.fixture
def cli(tmp_path, smtp_server) -> Cli:
    cli = Cli(tmp_path, smtp_server.port)
    cli("migrate", "--noinput", "-v", "0")
    cli("org", "add", "acme", "--name", "Acme Corp", "--domain", "acme.test")
    cli("program", "add", "acme", "data", "--name", "Data Literacy")
    return cli


def test_five_thousand_invitations_return_at_once_then_two_workers_deliver_each_once(
    cli, smtp_server, tmp_path
):
    addresses = [f"learner{i:05d}@acme.test" for i in range(BULK)]
    csv = tmp_path / "learners.csv"
    # A header with another column, blank lines here and there: a spreadsheet export.
    rows = ["name,email"]
    for i, address in enumerate(addresses):
        rows.append(f"Learner {i},{address}")
        if i % 997 == 0:
            rows.append("")
    csv.write_text("\n".join(rows) + "\n")

    started = time.monotonic()
    result = cli("invite", "acme", "data", "--csv", str(csv), "--print-links")
    invite_seconds = time.monotonic() - started

    # Returned with everything issued and queued, nothing delivered: no worker runs yet.
    assert smtp_server.mails == []
    links = dict(line.split("\t") for line in result.stdout.splitlines())
    assert sorted(links) == addresses  # stdout: only the EMAIL<TAB>LINK lines
    assert "invite: 5000/5000 invitations issued" in result.stderr  # progress, on stderr
    assert "Invited 5000 addresses to Data Literacy (data) of Acme Corp (acme)" in result.stderr
    assert "mail queued in 50 batches" in result.stderr
    status = cli.status("acme", "data")
    assert status["invitations"] == BULK and status["delivery"]["queued"] == BULK

    started = time.monotonic()
    cli.workers(WORKERS, timeout=200)
    deliver_seconds = time.monotonic() - started

    received = Counter(to for mail in smtp_server.mails for to in mail.envelope_to)
    assert set(received) == set(addresses), f"missing: {len(set(addresses) - set(received))}"
    assert set(received.values()) == {1}, received.most_common(3)  # each exactly once
    sample = smtp_server.mails_to(addresses[1234])[0]
    assert links[addresses[1234]] in sample.links  # the mailed link is the printed one
    # Both workers took part: the 50 tasks were shared between them, each run once.
    runs = json.loads(
        cli(
            "shell",
            "-v",
            "0",
            "-c",
            "import json; from django_tasks_db.models import DBTaskResult; "
            "print(json.dumps([(r.status, r.worker_ids) for r in DBTaskResult.objects.all()]))",
        ).stdout
    )
    assert len(runs) == BULK // 100 and {status for status, _ in runs} == {"SUCCESSFUL"}
    assert all(len(ids) == 1 for _, ids in runs)
    assert len({ids[0] for _, ids in runs}) == WORKERS, Counter(ids[0] for _, ids in runs)

    status = cli.status("acme", "data")
    assert status["delivery"]["sent"] == BULK, status["delivery"]
    assert status["failed"] == [] and status["retry"] == []
    print(f"invite: {invite_seconds:.1f}s, delivery by {WORKERS} workers: {deliver_seconds:.1f}s")


def test_smtp_down_then_back_retries_and_delivers(cli, smtp_server):
    addresses = [f"retry{i:02d}@acme.test" for i in range(12)]
    argv = ["invite", "acme", "data"]
    for address in addresses:
        argv += ["--email", address]
    cli(*argv)

    # SMTP down: nothing listens on the port the worker is given.
    live_port, cli.smtp_port = cli.smtp_port, free_port()
    cli.workers(1, timeout=60)
    status = cli.status("acme", "data")
    assert status["delivery"]["retry"] == len(addresses), status["delivery"]
    assert {row["email"] for row in status["retry"]} == set(addresses)
    assert all(row["attempts"] == 1 for row in status["retry"])
    assert all("ConnectionRefusedError" in row["error"] for row in status["retry"])
    human = cli("invite-status", "acme", "data").stdout
    assert "Waiting to retry:" in human and "retry00@acme.test: ConnectionRefused" in human
    assert smtp_server.mails == []

    # The retry waits for its backoff (30 s): jump the clock instead of sleeping.
    cli(
        "shell",
        "-v",
        "0",
        "-c",
        "from django.utils import timezone; "
        "from django_tasks_db.models import DBTaskResult; "
        "DBTaskResult.objects.filter(status='READY').update(run_after=timezone.now())",
    )
    # SMTP back.
    cli.smtp_port = live_port
    cli.workers(WORKERS, timeout=60)
    received = Counter(to for mail in smtp_server.mails for to in mail.envelope_to)
    assert received == Counter(addresses)
    status = cli.status("acme", "data")
    assert status["delivery"]["sent"] == len(addresses), status["delivery"]
    assert status["retry"] == [] and status["failed"] == []
