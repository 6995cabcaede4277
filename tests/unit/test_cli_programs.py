"""`orglogin program add`, `orglogin invite` and `orglogin invite-status` (spec 4): what they
write, what they print, and the bad-input contract (exit 2, one stderr line, nothing written).

Mail is never sent by `invite` itself: these tests run the queue explicitly when they want it.
"""

from __future__ import annotations

import io
import json

import pytest
from django.core import mail
from django_tasks_db.models import DBTaskResult

from orglogin.audit.models import AuditEvent
from orglogin.organizations.models import Organization
from orglogin.programs.invite import find_invitation
from orglogin.programs.models import Invitation, Program
from orglogin.programs.tasks import MAX_ATTEMPTS, send_invitations
from tests.support.cli import assert_usage_error, run_cli
from tests.support.tasks import run_task_queue

pytestmark = pytest.mark.django_db


# --- helpers ----------------------------------------------------------------------------------


def state():
    return (
        Organization.objects.count(),
        Program.objects.count(),
        Invitation.objects.count(),
        list(Invitation.objects.values_list("status", flat=True).order_by("pk")),
        DBTaskResult.objects.count(),
        AuditEvent.objects.count(),
    )


@pytest.fixture
def org():
    return Organization.objects.create(slug="acme", name="Acme Corp")


@pytest.fixture
def program(org):
    return Program.objects.create(organization=org, slug="data", name="Data Literacy")


def write(tmp_path, name, text, encoding="utf-8"):
    path = tmp_path / name
    path.write_text(text, encoding=encoding)
    return path


# --- program add -------------------------------------------------------------------------------


def test_program_add(capsys, org):
    code, out, err = run_cli(capsys, "program", "add", "acme", "data", "--name", " Data Literacy ")
    assert (code, err) == (0, ""), err
    program = Program.objects.get()
    assert (program.organization, program.slug, program.name) == (org, "data", "Data Literacy")
    assert "Created program data (Data Literacy) of acme (Acme Corp)" in out
    event = AuditEvent.objects.get()
    assert event.event == "org.changed" and event.organization == org
    assert event.detail["action"] == "create_program" and event.detail["program"] == "data"

    code, out, _ = run_cli(capsys, "program", "list", "acme")
    assert code == 0 and "- data: Data Literacy" in out


def test_the_same_program_slug_in_another_org_is_fine(capsys, program):
    Organization.objects.create(slug="globex", name="Globex")
    code, _, err = run_cli(capsys, "program", "add", "globex", "data", "--name", "Data")
    assert (code, err) == (0, "")
    assert Program.objects.filter(slug="data").count() == 2


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["program", "add", "nobody", "data2", "--name", "X"], "no organization"),
        (["program", "add", "acme", "Bad_Slug", "--name", "X"], "invalid program slug"),
        (["program", "add", "acme", "-data", "--name", "X"], ""),
        (["program", "add", "acme", "data", "--name", "Again"], "already has a program"),
        (["program", "add", "acme", "new", "--name", "  "], "needs a name"),
        (["program", "add", "acme", "new", "--name", "x" * 201], "longer than 200"),
        (["program", "add", "acme", "new"], "--name"),
        (["program", "add", "acme"], "PROGRAM_SLUG"),
        (["program", "list", "nobody"], "no organization"),
        (["program", "frobnicate"], "frobnicate"),
        (["program"], ""),
    ],
)
def test_program_bad_input(capsys, program, argv, fragment):
    before = state()
    assert_usage_error(run_cli(capsys, *argv), fragment)
    assert state() == before


# --- invite --------------------------------------------------------------------------------


def test_invite_by_email_queues_mail_and_sends_nothing_itself(capsys, program):
    code, out, err = run_cli(
        capsys,
        "invite",
        "acme",
        "data",
        "--email",
        "jane@acme.test",
        "--email",
        "Sam@ACME.test",
        "--email",
        "JANE@acme.test",
    )
    assert (code, err) == (0, ""), err
    assert out.splitlines()[0] == (
        "Invited 2 addresses to Data Literacy (data) of Acme Corp (acme); mail queued in "
        "1 batch — run `orglogin db_worker` (make run starts one) to deliver"
    )
    assert "1 duplicate skipped" in out
    assert "orglogin invite-status acme data" in out
    assert sorted(Invitation.objects.values_list("email", "delivery")) == [
        ("Sam@acme.test", "queued"),
        ("jane@acme.test", "queued"),
    ]
    assert DBTaskResult.objects.count() == 1
    assert mail.outbox == []  # the worker sends, never the command

    run_task_queue()
    assert sorted(m.to[0] for m in mail.outbox) == ["Sam@acme.test", "jane@acme.test"]
    assert set(Invitation.objects.values_list("delivery", flat=True)) == {"sent"}


def test_reinviting_says_it_replaced_the_earlier_link(capsys, program):
    run_cli(capsys, "invite", "acme", "data", "--email", "jane@acme.test")
    code, out, _ = run_cli(capsys, "invite", "acme", "data", "--email", "jane@acme.test")
    assert code == 0 and "1 earlier pending link revoked (replaced)" in out
    assert sorted(Invitation.objects.values_list("status", flat=True)) == ["pending", "revoked"]


def test_invite_csv_with_header_blank_lines_and_bom(capsys, tmp_path, program):
    path = write(
        tmp_path,
        "people.csv",
        "\ufeffName,E-mail,Team\r\n"
        "Jane Doe,jane@acme.test,blue\r\n"
        "\r\n"
        ",,\r\n"
        '"Doe, Sam", sam@acme.test ,red\r\n'
        "\r\n",
    )
    code, out, err = run_cli(capsys, "invite", "acme", "data", "--csv", path)
    assert (code, err) == (0, ""), err
    assert "Invited 2 addresses" in out
    assert sorted(Invitation.objects.values_list("email", flat=True)) == [
        "jane@acme.test",
        "sam@acme.test",
    ]


def test_invite_csv_single_column_without_header(capsys, tmp_path, program):
    path = write(tmp_path, "list.csv", "jane@acme.test\n\nsam@acme.test\n   \nlee@acme.test")
    code, out, err = run_cli(capsys, "invite", "acme", "data", "--csv", path)
    assert (code, err) == (0, ""), err
    assert "Invited 3 addresses" in out and Invitation.objects.count() == 3


def test_invite_csv_from_stdin(capsys, monkeypatch, program):
    monkeypatch.setattr("sys.stdin", io.StringIO("\ufeffEmail\njane@acme.test\n"))
    code, out, err = run_cli(capsys, "invite", "acme", "data", "--csv", "-")
    assert (code, err) == (0, ""), err
    assert Invitation.objects.get().email == "jane@acme.test"


def test_large_csv_shows_progress_on_stderr_and_queues_in_batches(capsys, tmp_path, program):
    rows = "\n".join(f"learner{i:05d}@acme.test" for i in range(2500))
    path = write(tmp_path, "big.csv", "email\n" + rows + "\n")
    code, out, err = run_cli(capsys, "invite", "acme", "data", "--csv", path)
    assert code == 0, err
    assert err.splitlines() == [
        "invite: 1000/2500 invitations issued",
        "invite: 2000/2500 invitations issued",
        "invite: 2500/2500 invitations issued",
    ]
    assert "Invited 2500 addresses" in out and "mail queued in 25 batches" in out
    assert Invitation.objects.count() == 2500
    assert DBTaskResult.objects.count() == 25
    assert mail.outbox == []


def test_quiet_large_csv_shows_no_progress(capsys, tmp_path, program):
    path = write(tmp_path, "big.csv", "\n".join(f"l{i}@acme.test" for i in range(1500)))
    code, _, err = run_cli(capsys, "invite", "acme", "data", "--csv", path, "-v", "0")
    assert (code, err) == (0, "")


def test_print_links_keeps_stdout_for_the_links(capsys, program):
    code, out, err = run_cli(
        capsys,
        "invite",
        "acme",
        "data",
        "--email",
        "jane@acme.test",
        "--email",
        "sam@acme.test",
        "--print-links",
    )
    assert code == 0, err
    lines = out.splitlines()
    assert [line.split("\t")[0] for line in lines] == ["jane@acme.test", "sam@acme.test"]
    for line in lines:
        email, link = line.split("\t")
        assert link.startswith("http://testserver/programs/invitation/")
        token = link.rstrip("/").rsplit("/", 1)[1]
        assert find_invitation(token).email == email
    assert "Invited 2 addresses" in err and "mail queued in 1 batch" in err
    # The mail still goes out (in the background) unless --no-mail.
    assert set(Invitation.objects.values_list("delivery", flat=True)) == {"queued"}
    assert DBTaskResult.objects.count() == 1


def test_print_links_without_mail(capsys, program):
    code, out, err = run_cli(
        capsys, "invite", "acme", "data", "--email", "jane@acme.test", "--print-links", "--no-mail"
    )
    assert code == 0, err
    assert out.startswith("jane@acme.test\thttp://testserver/programs/invitation/")
    assert "no mail sent (--no-mail)" in err
    assert Invitation.objects.get().delivery == "not_sent"
    assert DBTaskResult.objects.count() == 0
    run_task_queue()
    assert mail.outbox == []


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["--email", "jane@acme.test", "--email", "not-an-email"], "--email: 'not-an-email'"),
        (["--csv", "{bad_line_4}"], "line 4: 'jane(at)acme.test' is not a valid email"),
        (["--csv", "{bad_header}"], "line 3: 'nope' is not a valid email"),
        (["--csv", "{no_header}"], "line 1: several columns but no 'email' column header"),
        (["--csv", "{wide_later}"], "line 2: several columns"),
        (["--csv", "{empty_cell}"], "line 3: no email address"),
        (["--csv", "{blank}"], "no email addresses in"),
        (["--csv", "{header_only}"], "no email addresses in"),
        (["--csv", "{latin1}"], "not UTF-8"),
        (["--csv", "{nul}"], "line 1"),
        (["--csv", "/nonexistent/people.csv"], "does not exist"),
        (["--csv", "{dir}"], "directory"),
        (["--email", "a@acme.test", "--csv", "{bad_line_4}"], "not allowed with"),
        ([], "one of the arguments --email --csv is required"),
        (["--email", "a@acme.test", "--no-mail"], "--no-mail needs --print-links"),
        (["--email"], "--email"),
        (["--email", "a" * 250 + "@acme.test"], "longer than 254"),
    ],
)
def test_invite_bad_input(capsys, tmp_path, program, argv, fragment):
    files = {
        "bad_line_4": "email\njane@acme.test\n\njane(at)acme.test\nsam@acme.test\n",
        "bad_header": "name,email\nJane,jane@acme.test\nNo One,nope\n",
        "no_header": "Jane,jane@acme.test\n",
        "wide_later": "jane@acme.test\nsam@acme.test,extra\n",
        "empty_cell": "email,name\njane@acme.test,Jane\n,Sam\n",
        "blank": "\n\n  \n",
        "header_only": "email\n\n",
        "nul": "jane@acme.test\0\n",
    }
    paths = {key: write(tmp_path, f"{key}.csv", text) for key, text in files.items()}
    paths["latin1"] = write(tmp_path, "latin1.csv", "email\njosé@acme.test\n", "latin-1")
    paths["dir"] = tmp_path
    # A live invitation that a failed run must not revoke.
    run_cli(capsys, "invite", "acme", "data", "--email", "jane@acme.test")
    before = state()
    argv = [a.format(**paths) for a in argv]
    assert_usage_error(run_cli(capsys, "invite", "acme", "data", *argv), fragment)
    assert state() == before


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["invite", "nobody", "data", "--email", "a@acme.test"], "no organization"),
        (["invite", "acme", "nope", "--email", "a@acme.test"], "has no program 'nope'"),
        (["invite", "acme", "--email", "a@acme.test"], "PROGRAM_SLUG"),
        (["invite-status", "nobody", "data"], "no organization"),
        (["invite-status", "acme", "nope"], "has no program"),
        (["invite-status", "acme"], "PROGRAM_SLUG"),
    ],
)
def test_unknown_org_or_program(capsys, program, argv, fragment):
    before = state()
    assert_usage_error(run_cli(capsys, *argv), fragment)
    assert state() == before


# --- invite-status -----------------------------------------------------------------------------


def status(capsys, *extra):
    code, out, err = run_cli(capsys, "invite-status", "acme", "data", *extra)
    assert (code, err) == (0, ""), err
    return out


def test_invite_status_counts_queued_then_sent(capsys, program):
    run_cli(
        capsys, "invite", "acme", "data", "--email", "jane@acme.test", "--email", "sam@acme.test"
    )
    report = json.loads(status(capsys, "--json"))
    assert report["invitations"] == 2
    assert report["delivery"] == {
        "queued": 2,
        "sending": 0,
        "retry": 0,
        "sent": 0,
        "failed": 0,
        "not_sent": 0,
    }
    assert "2 still to deliver: a worker must be running" in status(capsys)

    run_task_queue()
    report = json.loads(status(capsys, "--json"))
    assert report["delivery"]["sent"] == 2 and report["delivery"]["queued"] == 0
    assert report["status"] == {"pending": 2, "expired": 0, "used": 0}
    text = status(capsys)
    assert "mail: queued 0, sending 0, retry 0, sent 2, failed 0, not sent 0" in text
    assert "still to deliver" not in text


def test_invite_status_reports_retries_and_failures_with_their_error(capsys, program, settings):
    settings.EMAIL_BACKEND = "tests.unit.test_invitations.FailingBackend"
    run_cli(
        capsys, "invite", "acme", "data", "--email", "jane@acme.test", "--email", "sam@acme.test"
    )
    run_task_queue()  # first attempt fails; the retry waits (run_after in the future)
    report = json.loads(status(capsys, "--json"))
    assert report["delivery"]["retry"] == 2
    assert [(r["email"], r["attempts"]) for r in report["retry"]] == [
        ("jane@acme.test", 1),
        ("sam@acme.test", 1),
    ]
    assert "SMTP down" in report["retry"][0]["error"]
    text = status(capsys)
    assert "Waiting to retry:" in text
    assert "jane@acme.test: ConnectionRefusedError: SMTP down (1 attempt so far)" in text

    # Let the later attempts run now (as if their backoff had passed) until it gives up.
    jane = Invitation.objects.get(email="jane@acme.test").pk
    for _ in range(MAX_ATTEMPTS - 1):
        send_invitations.call([jane])
    capsys.readouterr()  # the task logs its give-up on stderr
    report = json.loads(status(capsys, "--json"))
    assert report["delivery"]["failed"] == 1 and report["delivery"]["retry"] == 1
    assert report["failed"] == [
        {
            "email": "jane@acme.test",
            "attempts": MAX_ATTEMPTS,
            "error": "ConnectionRefusedError: SMTP down",
        }
    ]
    text = status(capsys)
    assert "Failed for good" in text
    assert f"jane@acme.test: ConnectionRefusedError: SMTP down ({MAX_ATTEMPTS} attempts)" in text


def test_invite_status_leaves_out_replaced_invitations(capsys, program):
    run_cli(
        capsys, "invite", "acme", "data", "--email", "jane@acme.test", "--print-links", "--no-mail"
    )
    run_cli(capsys, "invite", "acme", "data", "--email", "jane@acme.test")
    report = json.loads(status(capsys, "--json"))
    assert report["invitations"] == 1 and report["revoked"] == 1
    assert report["delivery"]["queued"] == 1 and report["delivery"]["not_sent"] == 0
