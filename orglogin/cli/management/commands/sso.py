from __future__ import annotations

import json
from pathlib import Path

from orglogin.cli.base import CliError, OrgloginCommand
from orglogin.organizations.models import Organization
from orglogin.sso.connections import (
    create_oidc_connection,
    create_saml_connection,
    describe_connection,
    fetch_metadata,
)
from orglogin.sso.protocols.oidc import DEFAULT_SCOPES, PRESETS

MAX_METADATA_BYTES = 5 * 1024 * 1024


def get_org(slug: str) -> Organization:
    org = Organization.objects.filter(slug=slug).first()
    if org is None:
        raise CliError(f"no organization with slug {slug!r}")
    return org


def read_metadata_file(path: str) -> str:
    file = Path(path)
    try:
        if file.stat().st_size > MAX_METADATA_BYTES:
            raise CliError(f"metadata file {path} is larger than 5 MB")
        return file.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise CliError(f"metadata file {path} does not exist") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read metadata file {path}: {exc}") from exc


class Command(OrgloginCommand):
    help = "Manage an organization's SSO connections (add-saml, add-oidc, show)."

    def add_subcommands(self, subparsers) -> None:
        saml = subparsers.add_parser(
            "add-saml", help="Add a SAML 2.0 connection from IdP metadata."
        )
        saml.add_argument("slug", metavar="SLUG")
        source = saml.add_mutually_exclusive_group(required=True)
        source.add_argument("--metadata-file", metavar="F")
        source.add_argument("--metadata-url", metavar="U")
        saml.add_argument(
            "--allow-idp-initiated",
            action="store_true",
            help="Accept logins that start at the IdP (off by default).",
        )
        saml.add_argument("--name", default="", metavar="NAME")

        oidc = subparsers.add_parser(
            "add-oidc",
            help="Add an OpenID Connect connection (authorization code flow with PKCE).",
            description=(
                "Add an OpenID Connect connection. The issuer's discovery document is fetched "
                "first and must name exactly this issuer (an unreachable issuer or a mix-up "
                "is refused, nothing is written). Prints the redirect URI to register at "
                "the provider."
            ),
        )
        oidc.add_argument("slug", metavar="SLUG")
        oidc.add_argument(
            "--issuer",
            required=True,
            metavar="URL",
            help="The provider's issuer, exactly as its discovery document names it.",
        )
        oidc.add_argument("--client-id", required=True, metavar="ID")
        oidc.add_argument(
            "--client-secret",
            required=True,
            metavar="S",
            help="Stored as given; never printed (note: visible in shell history).",
        )
        oidc.add_argument("--name", default="", metavar="NAME")
        oidc.add_argument(
            "--preset",
            choices=sorted(PRESETS),
            default="",
            help="Provider rules: okta; entra (tenant issuer, `oid` as subject); google "
            "(`hd` must be a verified domain of the org).",
        )
        oidc.add_argument(
            "--scopes",
            default=DEFAULT_SCOPES,
            metavar="SCOPES",
            help=f"Space-separated, must include openid (default: {DEFAULT_SCOPES!r}).",
        )
        oidc.add_argument(
            "--skip-discovery",
            action="store_true",
            help="Don't contact the issuer now (offline setup, provider not reachable from "
            "here). Nothing about it is checked: a wrong issuer fails at the first login.",
        )

        show = subparsers.add_parser("show", help="Show an organization's connections.")
        show.add_argument("slug", metavar="SLUG")
        show.add_argument("--json", action="store_true", help="Machine-readable output.")

    def do_add_saml(
        self,
        *,
        slug: str,
        metadata_file: str | None,
        metadata_url: str | None,
        allow_idp_initiated: bool,
        name: str,
        **_,
    ) -> None:
        org = get_org(slug)
        if metadata_file:
            xml = read_metadata_file(metadata_file)
        else:
            xml = fetch_metadata(metadata_url or "")
        connection = create_saml_connection(
            org,
            metadata_xml=xml,
            metadata_url=metadata_url or "",
            name=name,
            allow_idp_initiated=allow_idp_initiated,
            actor=None,
        )
        info = describe_connection(connection)
        self.stdout.write(
            f"Created SAML connection {connection.name!r} for {org.slug} "
            f"(IdP {connection.idp_entity_id})\n"
            f"SP entity ID: {info['sp_entity_id']}\n"
            f"ACS URL: {info['acs_url']}\n"
            f"Metadata URL: {info['metadata_url']}"
        )

    def handle(self, *args, **options) -> None:
        if options.get("subcommand") == "add-oidc":
            # The action fetches discovery before it opens its own transaction: no write lock
            # held across a network call of up to several seconds.
            self.run(*args, **options)
            return
        super().handle(*args, **options)

    def do_add_oidc(
        self,
        *,
        slug: str,
        issuer: str,
        client_id: str,
        client_secret: str,
        name: str,
        preset: str,
        scopes: str,
        skip_discovery: bool,
        **_,
    ) -> None:
        org = get_org(slug)
        connection = create_oidc_connection(
            org,
            issuer=issuer,
            client_id=client_id,
            client_secret=client_secret,
            name=name,
            preset=preset,
            scopes=scopes,
            check_discovery=not skip_discovery,
            actor=None,
        )
        info = describe_connection(connection)
        out = self.stdout.write
        out(
            f"Created OIDC connection {connection.name!r} for {org.slug} "
            f"(issuer {connection.oidc_issuer}"
            + (f", preset {connection.oidc_preset}" if connection.oidc_preset else "")
            + ")"
        )
        out(f"Redirect URI (register it at the provider): {info['redirect_uri']}")
        out(f"Scopes: {connection.oidc_scopes}")
        if skip_discovery:
            out("Discovery was skipped: the issuer is checked at the first login.")
        if PRESETS.get(preset) and PRESETS[preset].require_hosted_domain:
            if not org.domains.filter(verified=True).exists():
                out(
                    "Note: the google preset admits only accounts whose `hd` is a verified "
                    f"domain of {org.slug}, and it has none yet (`orglogin org add` / console)."
                )

    def do_show(self, *, slug: str, **options) -> None:
        org = get_org(slug)
        connections = [describe_connection(c) for c in org.connections.order_by("name", "pk")]
        if options["json"]:
            self.stdout.write(json.dumps(show_payload(org, connections), indent=2))
            return
        self.stdout.write(f"{org.name} ({org.slug}): {len(connections)} connection(s)")
        for info in connections:
            self.stdout.write(
                f"- {info['name']} [{info['protocol']}] {info['public_id']}"
                + ("" if info["enabled"] else " (disabled)")
            )
            for key in ("sp_entity_id", "acs_url", "metadata_url", "redirect_uri"):
                if key in info:
                    self.stdout.write(f"    {key}: {info[key]}")


def show_payload(org: Organization, connections: list[dict]) -> dict:
    return {
        "organization": {
            "slug": org.slug,
            "name": org.name,
            "domains": list(org.domains.filter(verified=True).values_list("name", flat=True)),
        },
        "connections": connections,
    }
