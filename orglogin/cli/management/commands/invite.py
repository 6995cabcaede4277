from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from math import ceil
from pathlib import Path
from typing import TextIO

from django.db.models.functions import Lower

from orglogin.cli.base import CliError, OrgloginCommand
from orglogin.organizations.models import Organization
from orglogin.programs.invite import (
    INSERT_CHUNK,
    SEND_BATCH,
    InvitationInputError,
    create_invitations,
    normalize_emails,
)
from orglogin.programs.models import Invitation, Program

# One run is one transaction; beyond this, split the file.
MAX_ADDRESSES = 100_000
# Progress goes to stderr (stdout stays clean for --print-links) for runs larger than this,
# or on a terminal; one line per chunk written.
PROGRESS_ABOVE = INSERT_CHUNK
MAX_EMAIL_LENGTH = Invitation._meta.get_field("email").max_length
EMAIL_HEADERS = frozenset({"email", "e-mail", "email address", "mail"})


def get_program(slug: str, program_slug: str) -> Program:
    org = Organization.objects.filter(slug=slug).first()
    if org is None:
        raise CliError(f"no organization with slug {slug!r}")
    program = Program.objects.filter(organization=org, slug=program_slug).first()
    if program is None:
        raise CliError(
            f"{slug} has no program {program_slug!r} (create it: orglogin program add "
            f"{slug} {program_slug} --name NAME)"
        )
    return program


def _checked(email: str, where: str) -> str:
    try:
        normalize_emails([email])
    except InvitationInputError:
        raise CliError(f"{where}: {email!r} is not a valid email address") from None
    if len(email) > MAX_EMAIL_LENGTH:  # the validator allows 320; the column holds 254
        raise CliError(f"{where}: address longer than {MAX_EMAIL_LENGTH} characters")
    return email


def read_csv(file: TextIO, name: str) -> Iterator[str]:
    """Addresses from a CSV with an `email` column header, or from a single column without
    header. Blank lines are skipped; a bad row stops everything, naming its line."""
    reader = csv.reader(file)
    column: int | None = None  # decided by the first non-blank row
    single_column = False
    try:
        for row in reader:
            cells = [cell.strip().lstrip("\ufeff") for cell in row]  # BOM: stdin, Excel
            if not any(cells):
                continue
            where = f"{name} line {reader.line_num}"
            if column is None:
                headers = [i for i, cell in enumerate(cells) if cell.lower() in EMAIL_HEADERS]
                if headers:
                    column = headers[0]
                    continue
                column = 0
                single_column = True
            if column == 0 and single_column and any(cells[1:]):
                raise CliError(f"{where}: several columns but no 'email' column header")
            email = cells[column] if column < len(cells) else ""
            if not email:
                raise CliError(f"{where}: no email address")
            yield _checked(email, where)
    except csv.Error as exc:
        raise CliError(f"{name} line {reader.line_num}: not readable as CSV: {exc}") from exc
    except UnicodeDecodeError as exc:
        raise CliError(f"{name} is not UTF-8 text: {exc.reason}") from exc


def read_csv_path(path: str) -> list[str]:
    if path == "-":
        return list(read_csv(sys.stdin, "stdin"))
    file = Path(path)
    try:
        with file.open(encoding="utf-8-sig", newline="") as handle:
            return list(read_csv(handle, path))
    except FileNotFoundError as exc:
        raise CliError(f"CSV file {path} does not exist") from exc
    except IsADirectoryError as exc:
        raise CliError(f"CSV file {path} is a directory") from exc
    except OSError as exc:
        raise CliError(f"cannot read CSV file {path}: {exc.strerror or exc}") from exc


def pending_count(program: Program, emails: list[str]) -> int:
    """Live invitations these addresses already have: re-inviting revokes (replaces) them."""
    lowered = sorted({email.lower() for email in emails})
    total = 0
    for start in range(0, len(lowered), INSERT_CHUNK):
        total += (
            Invitation.objects.annotate(email_lower=Lower("email"))
            .filter(
                program=program,
                status=Invitation.Status.PENDING,
                email_lower__in=lowered[start : start + INSERT_CHUNK],
            )
            .count()
        )
    return total


def plain(text: str) -> str:
    return text


def plural(count: int, word: str, many: str = "") -> str:
    return f"{count} {word if count == 1 else (many or word + 's')}"


class Command(OrgloginCommand):
    help = (
        "Invite people to a program: one invitation link each (single use, 14 days). "
        "The command returns once the invitations are issued and their mail is queued; the "
        "mail is delivered by the background worker (`orglogin db_worker`; `make run` starts "
        "one). Re-inviting an address replaces its earlier pending link. "
        "Check delivery with `orglogin invite-status SLUG PROGRAM_SLUG`."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug", metavar="SLUG", help="The organization.")
        parser.add_argument("program_slug", metavar="PROGRAM_SLUG", help="Its program.")
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument(
            "--email",
            action="append",
            dest="emails",
            metavar="E",
            help="An address to invite; repeat for several.",
        )
        source.add_argument(
            "--csv",
            dest="csv_file",
            metavar="F",
            help="A UTF-8 CSV file with an 'email' column header, or a single column of "
            "addresses without header; blank lines are ignored ('-' reads stdin).",
        )
        parser.add_argument(
            "--print-links",
            action="store_true",
            help="Print 'EMAIL<TAB>LINK' per address on stdout, for pasting into an LMS "
            "(the summary then goes to stderr). The mail is still sent unless --no-mail.",
        )
        parser.add_argument(
            "--no-mail",
            action="store_true",
            help="Send no mail (needs --print-links: the printed links are the only copy).",
        )

    def run(
        self,
        *,
        slug: str,
        program_slug: str,
        emails: list[str] | None,
        csv_file: str | None,
        print_links: bool,
        no_mail: bool,
        verbosity: int = 1,
        **_,
    ) -> None:
        if no_mail and not print_links:
            raise CliError("--no-mail needs --print-links (otherwise nobody gets the links)")
        program = get_program(slug, program_slug)
        if csv_file is not None:
            addresses = read_csv_path(csv_file)
            if not addresses:
                raise CliError(f"no email addresses in {'stdin' if csv_file == '-' else csv_file}")
        else:
            addresses = [_checked(e.strip(), "--email") for e in emails or []]
        if len(addresses) > MAX_ADDRESSES:
            raise CliError(
                f"{len(addresses)} addresses; at most {MAX_ADDRESSES} per run, split the file"
            )
        replaced = pending_count(program, addresses)
        show_progress = verbosity >= 1 and (len(addresses) > PROGRESS_ABOVE or sys.stderr.isatty())

        def progress(done: int, total: int) -> None:
            self.stderr.write(f"invite: {done}/{total} invitations issued", style_func=plain)

        issued = create_invitations(
            program,
            addresses,
            actor=None,
            send=not no_mail,
            progress=progress if show_progress else None,
        )
        if print_links:
            for item in issued:
                self.stdout.write(f"{item.invitation.email}\t{item.link}")
        # With --print-links stdout carries only the links (redirect it straight into a file).
        self.summary(
            program,
            len(addresses),
            len(issued),
            replaced,
            mailed=not no_mail,
            out=self.stderr if print_links else self.stdout,
        )

    def summary(
        self, program: Program, given: int, invited: int, replaced: int, *, mailed: bool, out
    ) -> None:
        org = program.organization
        text = (
            f"Invited {plural(invited, 'address', 'addresses')} to {program.name} "
            f"({program.slug}) of {org.name} ({org.slug})"
        )
        if mailed:
            batches = ceil(invited / SEND_BATCH)
            text += (
                f"; mail queued in {plural(batches, 'batch', 'batches')} — run `orglogin "
                "db_worker` (make run starts one) to deliver"
            )
        else:
            text += "; no mail sent (--no-mail): the links above are the only copy"
        lines = [text]
        if given > invited:
            lines.append(f"  {plural(given - invited, 'duplicate')} skipped")
        if replaced:
            lines.append(f"  {plural(replaced, 'earlier pending link')} revoked (replaced)")
        if mailed:
            lines.append(f"  Delivery: orglogin invite-status {org.slug} {program.slug}")
        for line in lines:
            out.write(line, style_func=plain)
