"""A test SAML IdP: keys, a response builder with a knob for every field, an xmlsec signer
(assertion-signed, response-signed or both; SHA-256 or SHA-1; any Reference URI; KeyInfo
or not) and the raw material of the attacks (signature wrapping, comment injection, DTDs).

Real crypto throughout: the SP side is never mocked.

    idp = TestIdp.default()
    connection = make_connection(idp)
    factory = ResponseFactory(connection, idp)
    value = factory.post_value(in_response_to="_req1", sign_assertion=True)
    SamlConnector(connection).parse_response(value, expected_request_id="_req1")
"""

from __future__ import annotations

import base64
import copy
import hashlib
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django.utils import timezone
from lxml import etree

from orglogin.organizations.models import Domain, Organization
from orglogin.sso.models import Connection, IdpCertificate
from orglogin.sso.protocols.saml import generate_sp_keypair, sp_endpoints
from orglogin.sso.protocols.saml_build import UNSET, ResponseSpec, build_response
from orglogin.sso.protocols.saml_xml import NAMEID_PERSISTENT, NS, SAML, SAMLP
from tests.support.certs import KeyPair, make_key_pair

DS = NS["ds"]
XSLT_TRANSFORM = "http://www.w3.org/TR/1999/REC-xslt-19991116"
XPATH_TRANSFORM = "http://www.w3.org/TR/1999/REC-xpath-19991116"


@lru_cache(maxsize=8)
def keys(name: str = "idp") -> KeyPair:
    """A cached RSA-2048 key pair per name ("idp", "idp-next", "attacker", ...)."""
    return make_key_pair(f"{name}.test")


@lru_cache(maxsize=2)
def sp_keys() -> tuple[str, str]:
    return generate_sp_keypair("sp.orglogin.test")


@dataclass(frozen=True)
class TestIdp:
    __test__ = False  # not a pytest class

    entity_id: str
    sso_url: str
    key: KeyPair

    @classmethod
    def default(cls, name: str = "idp") -> TestIdp:
        return cls(
            entity_id=f"https://{name}.example.test/saml/metadata",
            sso_url=f"https://{name}.example.test/saml/sso",
            key=keys(name),
        )

    def metadata_xml(self, *, certificates: list[KeyPair] | None = None, signed_requests=False):
        certs = certificates if certificates is not None else [self.key]
        key_descriptors = "".join(
            '<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data>'
            f"<ds:X509Certificate>{c.certificate_b64}</ds:X509Certificate>"
            "</ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
            for c in certs
        )
        wants = ' WantAuthnRequestsSigned="true"' if signed_requests else ""
        return (
            '<?xml version="1.0" encoding="UTF-8"?>'
            '<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
            f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{self.entity_id}">'
            '<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:'
            f'protocol"{wants}>{key_descriptors}'
            "<md:NameIDFormat>urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
            "</md:NameIDFormat>"
            '<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"'
            f' Location="{self.sso_url}/logout"/>'
            '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST" '
            f'Location="{self.sso_url}/post"/>'
            '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" '
            f'Location="{self.sso_url}"/>'
            "</md:IDPSSODescriptor></md:EntityDescriptor>"
        )


def fingerprint(pem: str) -> str:
    der = x509.load_pem_x509_certificate(pem.encode()).public_bytes(serialization.Encoding.DER)
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def make_connection(
    idp: TestIdp | None = None,
    *,
    certificates: list[KeyPair] | None = None,
    slug: str = "acme",
    domain: str = "acme.test",
    **fields: Any,
) -> Connection:
    """An org with a verified domain and an enabled SAML connection trusting `idp`'s key
    (or `certificates`), straight through the ORM."""
    idp = idp or TestIdp.default()
    org, _ = Organization.objects.get_or_create(slug=slug, defaults={"name": slug.title()})
    Domain.objects.get_or_create(organization=org, name=domain, defaults={"verified": True})
    sp_key, sp_cert = sp_keys()
    values = {
        "organization": org,
        "protocol": Connection.Protocol.SAML,
        "name": "Test IdP",
        "idp_entity_id": idp.entity_id,
        "idp_sso_url": idp.sso_url,
        "sp_private_key": sp_key,
        "sp_certificate": sp_cert,
    }
    values.update(fields)
    connection = Connection.objects.create(**values)
    for pair in certificates if certificates is not None else [idp.key]:
        IdpCertificate.objects.create(
            connection=connection,
            pem=pair.certificate_pem,
            sha256_fingerprint=fingerprint(pair.certificate_pem),
        )
    return connection


# --- signing ---------------------------------------------------------------------------------


def sign(
    element: etree._Element,
    key: KeyPair,
    *,
    sha1: bool = False,
    reference_uri: Any = UNSET,
    include_cert: bool = True,
) -> etree._Element:
    """Sign `element` in place with xmlsec, the signature right after its Issuer.

    reference_uri: UNSET -> "#<ID>"; anything else is used as is ("" signs the whole document).
    include_cert: put the signer's certificate in KeyInfo (what an attacker does with theirs).
    """
    uri = "#" + element.get("ID") if reference_uri is UNSET else reference_uri
    signature = xmlsec.template.create(
        element,
        xmlsec.Transform.EXCL_C14N,
        xmlsec.Transform.RSA_SHA1 if sha1 else xmlsec.Transform.RSA_SHA256,
        ns="ds",
    )
    issuer = element.find(f"{{{SAML}}}Issuer")
    if issuer is not None:
        issuer.addnext(signature)
    else:
        element.insert(0, signature)
    reference = xmlsec.template.add_reference(
        signature, xmlsec.Transform.SHA1 if sha1 else xmlsec.Transform.SHA256, uri=uri
    )
    xmlsec.template.add_transform(reference, xmlsec.Transform.ENVELOPED)
    xmlsec.template.add_transform(reference, xmlsec.Transform.EXCL_C14N)
    if include_cert:
        xmlsec.template.add_x509_data(xmlsec.template.ensure_key_info(signature))
    xmlsec.tree.add_ids(element.getroottree().getroot(), ["ID"])
    private = xmlsec.Key.from_memory(key.private_key_pem.encode(), xmlsec.KeyFormat.PEM)
    if include_cert:
        private.load_cert_from_memory(key.certificate_pem.encode(), xmlsec.KeyFormat.CERT_PEM)
    ctx = xmlsec.SignatureContext()
    ctx.key = private
    ctx.sign(signature)
    return signature


def encode(root: etree._Element | bytes | str) -> str:
    """The base64 SAMLResponse POST value of a tree or raw XML."""
    if isinstance(root, str):
        root = root.encode("utf-8")
    if not isinstance(root, bytes):
        root = etree.tostring(root, encoding="utf-8", xml_declaration=True)
    return base64.b64encode(root).decode()


def decode(value: str) -> etree._Element:
    return etree.fromstring(base64.b64decode(value))  # noqa: S320 - our own test output


def assertion_of(root: etree._Element) -> etree._Element:
    return root.find(f"{{{SAML}}}Assertion")


def name_id_of(root: etree._Element) -> etree._Element:
    return root.find(f"{{{SAML}}}Assertion/{{{SAML}}}Subject/{{{SAML}}}NameID")


def clone(element: etree._Element) -> etree._Element:
    return copy.deepcopy(element)


def insert_extensions(root: etree._Element) -> etree._Element:
    """samlp:Extensions in its schema place (after Issuer and Signature, before Status)."""
    extensions = etree.Element(f"{{{SAMLP}}}Extensions")
    root.find(f"{{{SAMLP}}}Status").addprevious(extensions)
    return extensions


class ResponseFactory:
    """Responses for one connection from one test IdP; every field can be overridden."""

    def __init__(self, connection: Connection, idp: TestIdp | None = None) -> None:
        self.connection = connection
        self.idp = idp or TestIdp.default()

    def spec(self, **overrides: Any) -> ResponseSpec:
        endpoints = sp_endpoints(self.connection)
        values: dict[str, Any] = {
            "idp_entity_id": self.idp.entity_id,
            "acs_url": endpoints.acs_url,
            "sp_entity_id": endpoints.entity_id,
            "name_id": "id-jane-0001",
            "name_id_format": NAMEID_PERSISTENT,
            "now": timezone.now(),
            "attributes": [
                ("mail", ["jane@acme.test"]),
                ("givenName", ["Jane"]),
                ("sn", ["Doe"]),
                ("displayName", ["Jane Doe"]),
            ],
        }
        values.update(overrides)
        return ResponseSpec(**values)

    def tree(self, **overrides: Any) -> etree._Element:
        """Unsigned response tree."""
        return build_response(self.spec(**overrides))

    def signed_tree(
        self,
        *,
        sign_assertion: bool = True,
        sign_response: bool = False,
        key: KeyPair | None = None,
        sha1: bool = False,
        include_cert: bool = True,
        **overrides: Any,
    ) -> etree._Element:
        root = self.tree(**overrides)
        key = key or self.idp.key
        if sign_assertion:
            sign(assertion_of(root), key, sha1=sha1, include_cert=include_cert)
        if sign_response:
            sign(root, key, sha1=sha1, include_cert=include_cert)
        return root

    def post_value(self, **kwargs: Any) -> str:
        return encode(self.signed_tree(**kwargs))
