from __future__ import annotations

from orglogin.cli.base import CliError, OrgloginCommand
from orglogin.organizations.models import Organization
from orglogin.programs.actions import create_program


def get_org(slug: str) -> Organization:
    org = Organization.objects.filter(slug=slug).first()
    if org is None:
        raise CliError(f"no organization with slug {slug!r}")
    return org


class Command(OrgloginCommand):
    help = (
        "Manage an organization's programs: `orglogin program add SLUG PROGRAM_SLUG --name NAME`."
    )

    def add_subcommands(self, subparsers) -> None:
        add = subparsers.add_parser("add", help="Create a program of an organization.")
        add.add_argument("slug", metavar="SLUG", help="The organization.")
        add.add_argument(
            "program_slug",
            metavar="PROGRAM_SLUG",
            help="Lowercase letters, digits and hyphens; unique within the organization.",
        )
        add.add_argument("--name", required=True, metavar="NAME")

        listing = subparsers.add_parser("list", help="List an organization's programs.")
        listing.add_argument("slug", metavar="SLUG")

    def do_add(self, *, slug: str, program_slug: str, name: str, **_) -> None:
        org = get_org(slug)
        program = create_program(org, program_slug, name, actor=None)
        self.stdout.write(
            f"Created program {program.slug} ({program.name}) of {org.slug} ({org.name})\n"
            f"Invite learners: orglogin invite {org.slug} {program.slug} "
            "(--email E ... | --csv F) [--print-links]"
        )

    def do_list(self, *, slug: str, **_) -> None:
        org = get_org(slug)
        programs = list(org.programs.order_by("slug"))
        self.stdout.write(f"{org.name} ({org.slug}): {len(programs)} program(s)")
        for program in programs:
            self.stdout.write(f"- {program.slug}: {program.name}")
