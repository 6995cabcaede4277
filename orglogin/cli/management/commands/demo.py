from __future__ import annotations

from django.conf import settings
from django.urls import reverse
from django.utils import timezone

from orglogin.cli.base import CliError, OrgloginCommand
from orglogin.organizations.actions import add_domain, create_organization, verify_domain
from orglogin.organizations.models import Domain, Organization
from orglogin.sso.connections import create_saml_connection, refresh_saml_metadata
from orglogin.sso.models import Connection

ORG_SLUG = "acme"
ORG_NAME = "Acme Corp"
ORG_DOMAIN = "acme.test"
CONNECTION_NAME = "Acme Corp (development IdP)"
PROGRAM_SLUG = "data-literacy"
PROGRAM_NAME = "Data Literacy"
INVITED_EMAIL = f"sam@{ORG_DOMAIN}"


class Command(OrgloginCommand):
    help = (
        "Seed the demo (spec 5): org Acme Corp (acme.test) logging in through the development "
        "IdP under /dev-idp/, a program and an invitation. Safe to run again."
    )

    def run(self, **options) -> None:
        # The development IdP signs whatever it is asked to: never outside development.
        if not settings.DEBUG or not settings.DEV_IDP_ENABLED:
            raise CliError(
                "the demo needs DEBUG=1 and the development IdP (DEV_IDP); refusing to seed"
            )
        from orglogin.sso.protocols.devidp import dev_idp_metadata_xml

        org = self.organization()
        connection = self.connection(org, dev_idp_metadata_xml())
        program = self.program(org)
        link = self.invitation(program)

        base = settings.BASE_URL
        out = self.stdout.write
        out(f"Demo ready: {org.name} ({org.slug}), verified domain {ORG_DOMAIN}")
        out(f"  SSO connection: {connection.name} -> {base}/dev-idp/")
        out(f"  Program: {program.name}")
        out("")
        out("Try it:")
        out(
            f"  Open {base}{reverse('account_login')} -> Log in with your organization -> "
            f"{ORG_DOMAIN}"
        )
        out(f"  (or go straight to {base}{reverse('sso:discover')}?company={ORG_DOMAIN})")
        out(
            "  At the development IdP pick a test user (e.g. jane@acme.test), then "
            "I'm a new user -> Sign Up."
        )
        if link:
            out(f"  Invitation for {INVITED_EMAIL} to {program.name}: {link}")

    def organization(self) -> Organization:
        org = Organization.objects.filter(slug=ORG_SLUG).first()
        if org is None:
            return create_organization(ORG_SLUG, ORG_NAME, [ORG_DOMAIN], actor=None)
        domain = Domain.objects.filter(organization=org, name=ORG_DOMAIN).first()
        if domain is None:
            add_domain(org, ORG_DOMAIN, actor=None, verified=True)
        elif not domain.verified:
            verify_domain(domain, actor=None, method="demo")
        return org

    def connection(self, org: Organization, metadata_xml: str) -> Connection:
        connection = org.connections.filter(
            protocol=Connection.Protocol.SAML, name=CONNECTION_NAME
        ).first()
        if connection is None:
            return create_saml_connection(
                org, metadata_xml=metadata_xml, name=CONNECTION_NAME, actor=None
            )
        # BASE_URL (and so the IdP's URLs) may have changed since the last run.
        if connection.metadata_xml != metadata_xml or not connection.enabled:
            connection.enabled = True
            refresh_saml_metadata(connection, metadata_xml=metadata_xml, actor=None)
        return connection

    def program(self, org: Organization):
        from orglogin.programs.models import Program

        program, _ = Program.objects.get_or_create(
            organization=org, slug=PROGRAM_SLUG, defaults={"name": PROGRAM_NAME}
        )
        return program

    def invitation(self, program) -> str:
        """A printable link for the demo's invitation: the live one, else a new one."""
        try:
            from orglogin.programs.invite import create_invitations, link_for
            from orglogin.programs.models import Invitation
        except ImportError:  # pragma: no cover - invitations not installed
            return ""
        live = (
            Invitation.objects.filter(
                program=program,
                email__iexact=INVITED_EMAIL,
                status=Invitation.Status.PENDING,
                expires_at__gt=timezone.now(),
            )
            .order_by("-created_at")
            .first()
        )
        if live is not None:
            return link_for(live)
        issued = create_invitations(program, [INVITED_EMAIL], actor=None, send=False)
        return issued[0].link
