"""Factories for the SSO flow and view tests (plain functions, named for what they make)."""

from __future__ import annotations

from functools import lru_cache

from django.contrib.auth.models import AnonymousUser
from django.contrib.sessions.middleware import SessionMiddleware
from django.test import RequestFactory

from orglogin.organizations.actions import create_organization
from orglogin.sso.connections import create_saml_connection
from orglogin.sso.identity import AssertedIdentity
from tests.support.certs import KeyPair, make_key_pair

IDP_ENTITY_ID = "https://idp.acme.test/saml/metadata"
IDP_SSO_URL = "https://idp.acme.test/saml/sso"


@lru_cache(maxsize=1)
def idp_keys() -> KeyPair:
    return make_key_pair("idp.acme.test")


def idp_metadata_xml(
    *, entity_id: str = IDP_ENTITY_ID, sso_url: str = IDP_SSO_URL, certificates=None
) -> str:
    certs = certificates if certificates is not None else [idp_keys().certificate_b64]
    key_descriptors = "".join(
        '<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data>'
        f"<ds:X509Certificate>{cert}</ds:X509Certificate>"
        "</ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
        for cert in certs
    )
    return (
        '<?xml version="1.0" encoding="UTF-8"?>'
        '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
        f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity_id}">'
        '<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
        f"{key_descriptors}"
        "<md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent</md:NameIDFormat>"
        '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" '
        f'Location="{sso_url}"/>'
        "</md:IDPSSODescriptor></md:EntityDescriptor>"
    )


def make_org(slug: str = "acme", domains=("acme.test",), **options):
    return create_organization(
        slug, options.pop("name", slug.title() + " Corp"), domains, actor=None, **options
    )


def make_saml_connection(org, **options):
    return create_saml_connection(
        org,
        metadata_xml=options.pop("metadata_xml", None) or idp_metadata_xml(),
        actor=None,
        **options,
    )


def asserted(
    connection, subject: str = "jane-0001", email: str = "jane@acme.test", **fields
) -> AssertedIdentity:
    fields.setdefault("email_verified", True)
    fields.setdefault("given_name", "Jane")
    fields.setdefault("family_name", "Doe")
    return AssertedIdentity(connection_id=connection.pk, subject=subject, email=email, **fields)


def session_request(method: str = "get", path: str = "/", data=None, user=None):
    """A request with a real (saved) session and a user, for calling flows without HTTP."""
    request = getattr(RequestFactory(), method)(path, data or {})
    SessionMiddleware(lambda r: None).process_request(request)
    request.session.save()
    request.user = user or AnonymousUser()
    return request
