"""The development IdP: a real SAML 2.0 IdP served by this process under /dev-idp/.

DEVELOPMENT ONLY. It signs an assertion for whatever email the developer picks. It is
mounted only when settings.DEV_IDP_ENABLED, which orglogin.core.config refuses with DEBUG
off. Its responses are real (RSA-SHA256, assertion and response signed) and go through the
same ACS code path and checks as any IdP's.

Its key pair is generated on first use and kept in `settings.DEV_IDP_DIR` (default
BASE_DIR/data/dev-idp/idp.pem, mode 0600), so the IdP certificate stays stable across
restarts and the demo connection keeps working.
"""

from __future__ import annotations

import base64
import binascii
import os
import tempfile
import threading
import zlib
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from urllib.parse import unquote_plus

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from django.conf import settings
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac
from lxml import etree

from orglogin.sso.protocols.saml import generate_sp_keypair, sp_endpoints
from orglogin.sso.protocols.saml_build import (
    UNSET,
    ResponseSpec,
    build_response,
    sign_response,
    to_post_value,
)
from orglogin.sso.protocols.saml_xml import (
    BINDING_REDIRECT,
    DS,
    MD,
    NAMEID_PERSISTENT,
    RSA_SHA256,
    RSA_SHA384,
    RSA_SHA512,
    SAML,
    SAMLP,
    UnsafeXml,
    parse_untrusted_xml,
    pem_body,
    text_of,
)

DEFAULT_DOMAIN = "acme.test"
MAX_REQUEST_BYTES = 64 * 1024
_lock = threading.Lock()
_keypair_cache: dict[Path, tuple[str, str]] = {}


class DevIdpError(ValueError):
    """An AuthnRequest the development IdP will not answer; the message says why."""


@dataclass(frozen=True)
class DevUser:
    email: str
    given_name: str
    family_name: str

    @property
    def display_name(self) -> str:
        return f"{self.given_name} {self.family_name}".strip()


def test_users(domain: str = DEFAULT_DOMAIN) -> list[DevUser]:
    return [
        DevUser(f"jane@{domain}", "Jane", "Doe"),
        DevUser(f"sam@{domain}", "Sam", "Lee"),
    ]


# --- identity of the IdP --------------------------------------------------------------------


def _url(name: str, fallback: str) -> str:
    try:
        path = reverse(name)
    except NoReverseMatch:
        path = fallback
    return settings.BASE_URL.rstrip("/") + path


def entity_id() -> str:
    """The IdP's entity ID: its metadata URL."""
    return _url("devidp:metadata", "/dev-idp/metadata/")


def sso_url() -> str:
    return _url("devidp:sso", "/dev-idp/sso/")


def key_dir() -> Path:
    configured = getattr(settings, "DEV_IDP_DIR", None)
    return Path(configured) if configured else Path(settings.BASE_DIR) / "data" / "dev-idp"


def keypair() -> tuple[str, str]:
    """(private key PEM, certificate PEM), generated once and stored; safe when several
    processes start at once (the first file to be linked in place wins)."""
    path = key_dir() / "idp.pem"
    with _lock:
        if path in _keypair_cache:
            return _keypair_cache[path]
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            key_pem, cert_pem = generate_sp_keypair("OrgLogin development IdP")
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".idp-", suffix=".pem")
            try:
                with os.fdopen(fd, "w") as handle:
                    handle.write(key_pem + cert_pem)
                os.chmod(tmp, 0o600)
                try:
                    os.link(tmp, path)
                except FileExistsError:
                    pass
            finally:
                os.unlink(tmp)
        text = path.read_text()
        marker = "-----BEGIN CERTIFICATE-----"
        key_pem, _, rest = text.partition(marker)
        pair = (key_pem.strip() + "\n", marker + rest)
        _keypair_cache[path] = pair
        return pair


def dev_idp_metadata_xml() -> str:
    """The IdP metadata (entity ID = its URL, HTTP-Redirect SSO, signing certificate,
    WantAuthnRequestsSigned: connections created from it sign their AuthnRequests)."""
    _, cert_pem = keypair()
    root = etree.Element(f"{{{MD}}}EntityDescriptor", nsmap={"md": MD, "ds": DS})
    root.set("entityID", entity_id())
    descriptor = etree.SubElement(root, f"{{{MD}}}IDPSSODescriptor")
    descriptor.set("protocolSupportEnumeration", SAMLP)
    descriptor.set("WantAuthnRequestsSigned", "true")
    key_descriptor = etree.SubElement(descriptor, f"{{{MD}}}KeyDescriptor", use="signing")
    key_info = etree.SubElement(key_descriptor, f"{{{DS}}}KeyInfo")
    x509_data = etree.SubElement(key_info, f"{{{DS}}}X509Data")
    etree.SubElement(x509_data, f"{{{DS}}}X509Certificate").text = pem_body(cert_pem)
    etree.SubElement(descriptor, f"{{{MD}}}NameIDFormat").text = NAMEID_PERSISTENT
    etree.SubElement(
        descriptor, f"{{{MD}}}SingleSignOnService", Binding=BINDING_REDIRECT, Location=sso_url()
    )
    return etree.tostring(root, encoding="unicode", pretty_print=True)


def persistent_name_id(email: str) -> str:
    """Stable per email (and per SECRET_KEY), opaque: an HMAC, like a real IdP's pairwise ID."""
    return salted_hmac(
        "orglogin.devidp.nameid", email.strip().lower(), algorithm="sha256"
    ).hexdigest()


def build_signed_response(
    connection,
    *,
    email: str,
    given_name: str = "",
    family_name: str = "",
    display_name: str = "",
    in_response_to: str | None,
    now: datetime | None = None,
    authn_instant: datetime | None = None,
) -> str:
    """A base64 SAMLResponse for `connection`: persistent NameID (HMAC of the email),
    mail/givenName/sn/displayName, InResponseTo, Destination, Recipient, Audience, a
    5-minute window, RSA-SHA256; assertion signed and response signed.

    AuthnInstant is `now` (the developer just picked the user: every answer is a fresh
    login, so ForceAuthn is always honoured); `authn_instant` overrides it for tests."""
    endpoints = sp_endpoints(connection)
    key_pem, cert_pem = keypair()
    display = display_name or f"{given_name} {family_name}".strip()
    spec = ResponseSpec(
        idp_entity_id=entity_id(),
        acs_url=endpoints.acs_url,
        sp_entity_id=endpoints.entity_id,
        name_id=persistent_name_id(email),
        now=now or timezone.now(),
        in_response_to=in_response_to,
        authn_instant=authn_instant if authn_instant is not None else UNSET,
        attributes=[
            ("mail", [email]),
            ("givenName", [given_name] if given_name else []),
            ("sn", [family_name] if family_name else []),
            ("displayName", [display] if display else []),
        ],
    )
    root = build_response(spec)
    sign_response(root, key_pem=key_pem, cert_pem=cert_pem)
    return to_post_value(root)


# --- the AuthnRequest (HTTP-Redirect binding) -----------------------------------------------


@dataclass(frozen=True)
class DevAuthnRequest:
    request_id: str
    connection: object  # orglogin.sso.models.Connection
    acs_url: str
    relay_state: str
    signed: bool


_SIG_ALGORITHMS = {
    RSA_SHA256: hashes.SHA256,
    RSA_SHA384: hashes.SHA384,
    RSA_SHA512: hashes.SHA512,
}


def _raw_params(query_string: str) -> dict[str, str]:
    raw: dict[str, str] = {}
    for part in query_string.split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        name = unquote_plus(name)
        if name in raw:
            raise DevIdpError(f"the parameter {name} appears twice")
        raw[name] = value
    return raw


def parse_authn_request(query_string: str) -> DevAuthnRequest:
    """Check an HTTP-Redirect AuthnRequest from the raw query string: well-formed, from the
    SP entity of an enabled SAML connection of ours that uses this IdP, asking for that
    connection's ACS URL; its signature verified with the connection's SP certificate when
    present, and required when the connection signs requests."""
    from orglogin.sso.models import Connection

    raw = _raw_params(query_string)
    if "SAMLRequest" not in raw:
        raise DevIdpError("no SAMLRequest: start the login from the application")
    try:
        deflated = base64.b64decode(unquote_plus(raw["SAMLRequest"]), validate=True)
        inflater = zlib.decompressobj(-15)
        xml = inflater.decompress(deflated, MAX_REQUEST_BYTES)
        if inflater.unconsumed_tail:
            raise DevIdpError("the SAMLRequest is too large")
    except (binascii.Error, zlib.error, ValueError) as exc:
        if isinstance(exc, DevIdpError):
            raise
        raise DevIdpError("the SAMLRequest is not deflated base64") from None
    try:
        root = parse_untrusted_xml(xml)
    except UnsafeXml as exc:
        raise DevIdpError(f"the SAMLRequest was refused: {exc}") from None
    except (etree.XMLSyntaxError, ValueError):
        raise DevIdpError("the SAMLRequest is not well-formed XML") from None
    if root.tag != f"{{{SAMLP}}}AuthnRequest" or root.get("Version") != "2.0":
        raise DevIdpError("the SAMLRequest is not a SAML 2.0 AuthnRequest")
    request_id = root.get("ID") or ""
    if not request_id:
        raise DevIdpError("the AuthnRequest has no ID")
    destination = root.get("Destination")
    if destination is not None and destination != sso_url():
        raise DevIdpError(f"the AuthnRequest is addressed to {destination}, not to this IdP")
    issuer = text_of(root.find(f"{{{SAML}}}Issuer"))

    connection = None
    for candidate in Connection.objects.filter(
        protocol=Connection.Protocol.SAML, enabled=True, idp_entity_id=entity_id()
    ):
        if sp_endpoints(candidate).entity_id == issuer:
            connection = candidate
            break
    if connection is None:
        raise DevIdpError(
            f"no enabled SAML connection with SP entity ID {issuer!r} uses this development IdP"
        )
    acs_url = sp_endpoints(connection).acs_url
    requested_acs = root.get("AssertionConsumerServiceURL")
    if requested_acs is not None and requested_acs != acs_url:
        raise DevIdpError(
            f"the AssertionConsumerServiceURL {requested_acs} is not the connection's"
        )

    signed = "Signature" in raw
    if signed:
        _verify_redirect_signature(raw, connection)
    elif connection.idp_wants_signed_requests:
        raise DevIdpError("the AuthnRequest must be signed for this connection")
    relay_state = unquote_plus(raw.get("RelayState", ""))
    return DevAuthnRequest(request_id, connection, acs_url, relay_state, signed)


def _verify_redirect_signature(raw: dict[str, str], connection) -> None:
    algorithm = unquote_plus(raw.get("SigAlg", ""))
    if algorithm not in _SIG_ALGORITHMS:
        raise DevIdpError(f"the signature algorithm {algorithm!r} is not accepted")
    if not connection.sp_certificate:
        raise DevIdpError("the AuthnRequest is signed but the connection has no SP certificate")
    # SAML bindings 3.4.4.1: the signature covers the parameters exactly as sent.
    signed_parts = [f"SAMLRequest={raw['SAMLRequest']}"]
    if "RelayState" in raw:
        signed_parts.append(f"RelayState={raw['RelayState']}")
    signed_parts.append(f"SigAlg={raw['SigAlg']}")
    try:
        signature = base64.b64decode(unquote_plus(raw["Signature"]), validate=True)
        certificate = x509.load_pem_x509_certificate(connection.sp_certificate.encode())
        certificate.public_key().verify(
            signature,
            "&".join(signed_parts).encode(),
            padding.PKCS1v15(),
            _SIG_ALGORITHMS[algorithm](),
        )
    except (InvalidSignature, binascii.Error, ValueError, TypeError, AttributeError):
        raise DevIdpError("the AuthnRequest signature does not verify") from None


def default_domain(connection) -> str:
    """The email domain offered for test users: the org's first verified domain."""
    domains = connection.organization.domains.order_by("-verified", "name")
    first = domains.first()
    return first.name if first is not None else DEFAULT_DOMAIN
