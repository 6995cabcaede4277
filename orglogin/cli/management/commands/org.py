from __future__ import annotations

from orglogin.cli.base import OrgloginCommand
from orglogin.organizations.actions import create_organization


class Command(OrgloginCommand):
    help = "Manage organizations: `orglogin org add SLUG --name NAME [--domain D ...]`."

    def add_subcommands(self, subparsers) -> None:
        add = subparsers.add_parser(
            "add", help="Create an organization (domains count as verified)."
        )
        add.add_argument("slug", metavar="SLUG")
        add.add_argument("--name", required=True, metavar="NAME")
        add.add_argument(
            "--domain",
            action="append",
            default=[],
            metavar="D",
            dest="domains",
            help="An email domain of the org; repeat for several. Verified by the operator's word.",
        )
        add.add_argument(
            "--match-subdomains",
            action="store_true",
            help="Let subdomains (mail.acme.com) find the org through acme.com.",
        )

    def do_add(
        self, *, slug: str, name: str, domains: list[str], match_subdomains: bool, **_
    ) -> None:
        org = create_organization(
            slug,
            name,
            domains,
            actor=None,
            domains_verified=True,
            match_subdomains=match_subdomains,
        )
        names = ", ".join(org.domains.values_list("name", flat=True)) or "none"
        self.stdout.write(
            f"Created organization {org.slug} ({org.name}); verified domains: {names}"
        )
