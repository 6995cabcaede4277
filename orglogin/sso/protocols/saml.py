"""SAML 2.0 Web Browser SSO for one Connection: SP endpoints and metadata, the signed
AuthnRequest (HTTP-Redirect), IdP metadata parsing and the Response checks (HTTP-POST).

python3-saml builds and signs the AuthnRequest and the SP metadata. Response verification
is ours (`saml_verify`): python3-saml's defaults are too lax for us (Destination by prefix,
Recipient by substring, missing AudienceRestriction accepted, `Reference URI=""` accepted,
XSLT reaching libxmlsec1, no replay cache; see shared/peers/README.md), so every check is
done by `saml_verify` before and after xmlsec, and values are read only from the verified
element. The flows only ever see the `AssertedIdentity` it returns.

Only `orglogin.sso.protocols` imports python3-saml, xmlsec or lxml signature code.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from django.conf import settings
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from lxml import etree
from onelogin.saml2.auth import OneLogin_Saml2_Auth
from onelogin.saml2.constants import OneLogin_Saml2_Constants
from onelogin.saml2.errors import OneLogin_Saml2_Error
from onelogin.saml2.settings import OneLogin_Saml2_Settings

from orglogin.core.errors import ErrorCode
from orglogin.sso.errors import SsoError
from orglogin.sso.identity import AssertedIdentity
from orglogin.sso.protocols.saml_verify import (
    CLOCK_SKEW,
    CheckResult,
    VerifyPolicy,
    verify_response,
)
from orglogin.sso.protocols.saml_xml import (
    BINDING_POST,
    BINDING_REDIRECT,
    MD,
    NAMEID_PERSISTENT,
    NS,
    UnsafeXml,
    parse_untrusted_xml,
    pem_from_body,
)

__all__ = [
    "CLOCK_SKEW",
    "CheckResult",
    "IdpMetadata",
    "SamlConnector",
    "SamlMetadataError",
    "SpEndpoints",
    "fetch_idp_metadata",
    "generate_sp_keypair",
    "parse_idp_metadata",
    "sp_endpoints",
]

MAX_METADATA_BYTES = 1024 * 1024


# --- SP side --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SpEndpoints:
    entity_id: str
    acs_url: str
    metadata_url: str


def _path(name: str, public_id, fallback: str) -> str:
    try:
        return reverse(name, kwargs={"public_id": public_id})
    except NoReverseMatch:
        return fallback


def sp_endpoints(connection) -> SpEndpoints:
    """Our SP's URLs for a connection, from settings.BASE_URL as it is now (never from the
    request's Host header). The entity ID is the metadata URL."""
    base = settings.BASE_URL.rstrip("/")
    public_id = connection.public_id
    acs = _path("sso:saml_acs", public_id, f"/sso/saml/{public_id}/acs/")
    metadata = _path("sso:saml_metadata", public_id, f"/sso/saml/{public_id}/metadata/")
    return SpEndpoints(entity_id=base + metadata, acs_url=base + acs, metadata_url=base + metadata)


def generate_sp_keypair(common_name: str) -> tuple[str, str]:
    """(private key PEM, self-signed certificate PEM): RSA-2048, valid for 10 years."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name[:64] or "OrgLogin SP")])
    now = timezone.now()
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=3653))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()
    return key_pem, certificate.public_bytes(serialization.Encoding.PEM).decode()


# --- IdP metadata ---------------------------------------------------------------------------


class SamlMetadataError(ValueError):
    """IdP metadata we cannot use; the message is one line for the admin or the operator."""


@dataclass(frozen=True)
class IdpMetadata:
    entity_id: str
    sso_url: str
    slo_url: str
    wants_signed_requests: bool
    certificates: tuple[str, ...]  # PEM, signing use


def parse_idp_metadata(xml: str | bytes) -> IdpMetadata:
    """Read an IdP's SAML metadata (an EntityDescriptor, or an EntitiesDescriptor holding
    exactly one IdP). Refuses DTDs/entities. Does NOT verify a metadata signature: the
    admin vouches for the document or URL they configure.
    """
    data = xml.encode("utf-8") if isinstance(xml, str) else xml
    if len(data) > MAX_METADATA_BYTES:
        raise SamlMetadataError("the metadata is larger than 1 MB")
    try:
        root = _parse_metadata_xml(data)
    except UnsafeXml as exc:
        raise SamlMetadataError(f"the metadata was refused: {exc}") from None
    except (etree.XMLSyntaxError, ValueError) as exc:
        raise SamlMetadataError(f"the metadata is not well-formed XML: {exc}") from None

    if root.tag == f"{{{MD}}}EntityDescriptor":
        entities = [root]
    elif root.tag == f"{{{MD}}}EntitiesDescriptor":
        entities = root.xpath(".//md:EntityDescriptor[md:IDPSSODescriptor]", namespaces=NS)
    else:
        raise SamlMetadataError("the document is not SAML 2.0 metadata (no EntityDescriptor)")
    entities = [e for e in entities if e.find("md:IDPSSODescriptor", NS) is not None]
    if not entities:
        raise SamlMetadataError("the metadata describes no identity provider (IDPSSODescriptor)")
    if len(entities) > 1:
        raise SamlMetadataError(
            f"the metadata describes {len(entities)} identity providers; give the metadata "
            "of exactly one"
        )
    entity = entities[0]
    entity_id = (entity.get("entityID") or "").strip()
    if not entity_id:
        raise SamlMetadataError("the EntityDescriptor has no entityID")
    descriptors = [
        d
        for d in entity.findall("md:IDPSSODescriptor", NS)
        if OneLogin_Saml2_Constants.NS_SAMLP in (d.get("protocolSupportEnumeration") or "").split()
    ]
    if not descriptors:
        raise SamlMetadataError("the IdP does not declare SAML 2.0 protocol support")
    descriptor = descriptors[0]

    sso_url = _location(descriptor, "md:SingleSignOnService")
    if not sso_url:
        raise SamlMetadataError("the IdP has no SingleSignOnService with the HTTP-Redirect binding")
    slo_url = _location(descriptor, "md:SingleLogoutService")

    certificates: list[str] = []
    for key_descriptor in descriptor.findall("md:KeyDescriptor", NS):
        if key_descriptor.get("use", "signing") != "signing":
            continue
        for cert in key_descriptor.findall("ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS):
            body = (cert.text or "").strip()
            try:
                pem = pem_from_body(body)
                x509.load_pem_x509_certificate(pem.encode())
            except ValueError:
                raise SamlMetadataError("an IdP signing certificate is not valid") from None
            if pem not in certificates:
                certificates.append(pem)
    if not certificates:
        raise SamlMetadataError("the metadata has no IdP signing certificate")

    return IdpMetadata(
        entity_id=entity_id,
        sso_url=sso_url,
        slo_url=slo_url,
        wants_signed_requests=(descriptor.get("WantAuthnRequestsSigned") or "").strip()
        in {"true", "1"},
        certificates=tuple(certificates),
    )


def _parse_metadata_xml(data: bytes) -> etree._Element:
    # Metadata may exceed the response size cap; the same hardened parser otherwise.
    return parse_untrusted_xml(data, max_bytes=MAX_METADATA_BYTES)


def _location(descriptor, tag: str) -> str:
    for service in descriptor.findall(tag, NS):
        if service.get("Binding") == BINDING_REDIRECT:
            location = (service.get("Location") or "").strip()
            if urlsplit(location).scheme in {"http", "https"}:
                return location
    return ""


def fetch_idp_metadata(url: str, timeout: float = 10) -> str:
    """GET an IdP's metadata (http/https only, no redirects, at most 1 MB). In production,
    addresses that are not public (loopback, private, link-local) are refused: the URL comes
    from an org admin and must not reach into our network. (Checked on resolution; a DNS rebinding
    between the check and the connection is not defeated.)
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise SamlMetadataError("the metadata URL must be an http:// or https:// URL")
    if not _private_hosts_allowed():
        _refuse_private_host(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
    try:
        with requests.get(
            url.strip(),
            timeout=timeout,
            stream=True,
            allow_redirects=False,
            headers={"Accept": "application/samlmetadata+xml, application/xml, text/xml"},
        ) as response:
            if response.is_redirect:
                raise SamlMetadataError(
                    f"the metadata URL redirects (HTTP {response.status_code}); give the final URL"
                )
            if response.status_code != 200:
                raise SamlMetadataError(f"the metadata URL answered HTTP {response.status_code}")
            chunks, size = [], 0
            for chunk in response.iter_content(64 * 1024):
                size += len(chunk)
                if size > MAX_METADATA_BYTES:
                    raise SamlMetadataError("the metadata is larger than 1 MB")
                chunks.append(chunk)
    except requests.Timeout:
        raise SamlMetadataError(f"the metadata URL did not answer within {timeout:g} s") from None
    except requests.RequestException as exc:
        reason = type(exc).__name__
        raise SamlMetadataError(f"the metadata URL could not be fetched ({reason})") from None
    body = b"".join(chunks)
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError:
        raise SamlMetadataError("the metadata is not UTF-8 text") from None


def _private_hosts_allowed() -> bool:
    """settings.SAML_METADATA_ALLOW_PRIVATE when set; otherwise only in development (the
    DEBUG of the environment: Django's test runner turns settings.DEBUG off, and local peer
    IdPs such as SimpleSAMLphp listen on 127.0.0.1)."""
    explicit = getattr(settings, "SAML_METADATA_ALLOW_PRIVATE", None)
    if explicit is not None:
        return bool(explicit)
    config = getattr(settings, "CONFIG", None)
    return bool(config.debug) if config is not None else bool(settings.DEBUG)


def _refuse_private_host(host: str, port: int) -> None:
    try:
        infos = socket.getaddrinfo(host, port, proto=socket.IPPROTO_TCP)
    except OSError:
        raise SamlMetadataError(f"the metadata host {host} does not resolve") from None
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if not address.is_global:
            raise SamlMetadataError(f"the metadata host {host} is not a public address")


# --- the connector --------------------------------------------------------------------------


class SamlConnector:
    """SAML 2.0 for one Connection (protocol "saml")."""

    def __init__(self, connection) -> None:
        self.connection = connection

    @property
    def endpoints(self) -> SpEndpoints:
        return sp_endpoints(self.connection)

    # python3-saml, configured strictly; used to build requests and metadata only.
    def _onelogin_settings(self, *, sp_only: bool = False) -> OneLogin_Saml2_Settings:
        connection = self.connection
        endpoints = self.endpoints
        sign_requests = bool(connection.idp_wants_signed_requests)
        certificates = [c.pem for c in connection.certificates.all()] if not sp_only else []
        data = {
            "strict": True,
            "debug": False,
            "sp": {
                "entityId": endpoints.entity_id,
                "assertionConsumerService": {"url": endpoints.acs_url, "binding": BINDING_POST},
                "NameIDFormat": NAMEID_PERSISTENT,
                "x509cert": connection.sp_certificate or "",
                "privateKey": connection.sp_private_key or "",
            },
            "idp": {
                "entityId": connection.idp_entity_id or "",
                "singleSignOnService": {
                    "url": connection.idp_sso_url or "",
                    "binding": BINDING_REDIRECT,
                },
                "x509certMulti": {"signing": certificates} if certificates else {},
            },
            "security": {
                "authnRequestsSigned": sign_requests,
                "wantAssertionsSigned": True,
                "wantMessagesSigned": False,
                "wantNameId": True,
                "wantAttributeStatement": False,
                "wantXMLValidation": True,
                "rejectDeprecatedAlgorithm": not connection.allow_sha1,
                "signatureAlgorithm": OneLogin_Saml2_Constants.RSA_SHA256,
                "digestAlgorithm": OneLogin_Saml2_Constants.SHA256,
                # No RequestedAuthnContext: asking for PasswordProtectedTransport breaks IdPs
                # that log people in with MFA, Kerberos or certificates (ADFS, Entra).
                "requestedAuthnContext": False,
                "allowSingleLabelDomains": True,
                "lowercaseUrlencoding": False,
            },
        }
        if sp_only:
            data["idp"] = {}
        return OneLogin_Saml2_Settings(data, sp_validation_only=sp_only)

    def _request_data(self) -> dict:
        # From BASE_URL, never from client headers; the port travels inside http_host.
        endpoints = self.endpoints
        parts = urlsplit(settings.BASE_URL)
        return {
            "https": "on" if parts.scheme == "https" else "off",
            "http_host": parts.netloc,
            "script_name": urlsplit(endpoints.acs_url).path,
            "get_data": {},
            "post_data": {},
        }

    def authn_request_redirect(
        self, *, relay_state: str, force_authn: bool = False
    ) -> tuple[str, str]:
        """(URL to send the browser to, AuthnRequest ID). HTTP-Redirect binding; signed with
        the connection's SP key (RSA-SHA256) when the IdP wants signed requests.

        `force_authn` sets ForceAuthn="true": the IdP must authenticate the user again even if
        it has a session. It is only a request: the caller proves the IdP honoured it by giving
        `parse_response` the moment of this request as `require_authn_after`."""
        connection = self.connection
        if not connection.idp_sso_url:
            raise SsoError(ErrorCode.SSO_NOT_CONFIGURED, "configuration", "no IdP SSO URL")
        if connection.idp_wants_signed_requests and not connection.sp_private_key:
            raise SsoError(
                ErrorCode.SSO_NOT_CONFIGURED,
                "configuration",
                "the IdP wants signed requests and the connection has no SP key",
            )
        try:
            auth = OneLogin_Saml2_Auth(self._request_data(), self._onelogin_settings())
            url = auth.login(return_to=relay_state, force_authn=force_authn)
        except OneLogin_Saml2_Error as exc:
            raise SsoError(ErrorCode.SSO_NOT_CONFIGURED, "configuration", str(exc)) from exc
        return url, auth.get_last_request_id()

    def _policy(self) -> VerifyPolicy:
        connection = self.connection
        endpoints = self.endpoints
        return VerifyPolicy(
            connection_id=connection.pk,
            idp_entity_id=connection.idp_entity_id,
            sp_entity_id=endpoints.entity_id,
            acs_url=endpoints.acs_url,
            certificates=tuple(c.pem for c in connection.certificates.all()),
            allow_sha1=bool(connection.allow_sha1),
            allow_idp_initiated=bool(connection.allow_idp_initiated),
            attribute_mapping={
                k: v for k, v in (connection.attribute_mapping or {}).items() if isinstance(v, str)
            },
        )

    def parse_response(
        self,
        saml_response: str,
        *,
        expected_request_id: str | None,
        now: datetime | None = None,
        require_authn_after: datetime | None = None,
    ) -> AssertedIdentity:
        """Verify the base64 SAMLResponse POST value; raise SsoError(code, check, detail) on
        any failure. `expected_request_id` None means unsolicited (IdP-initiated), refused
        unless the connection allows it. On success the assertion ID is consumed (replay).

        `require_authn_after` (opt-in, for a login that asked for ForceAuthn): the verified
        Assertion's latest AuthnStatement@AuthnInstant must be at or after this moment, less
        CLOCK_SKEW; no AuthnStatement / AuthnInstant is refused (check "authn_instant",
        SSO_REAUTH_REQUIRED). A naive datetime is taken as UTC."""
        if not self.connection.enabled:
            raise SsoError(ErrorCode.SSO_NOT_CONFIGURED, "configuration", "connection disabled")
        if require_authn_after is not None and require_authn_after.tzinfo is None:
            require_authn_after = require_authn_after.replace(tzinfo=UTC)
        identity, _ = verify_response(
            self._policy(),
            saml_response,
            expected_request_id=expected_request_id,
            now=now or timezone.now(),
            require_authn_after=require_authn_after,
        )
        assert identity is not None  # strict mode raises on every failure
        return identity

    def check_report(
        self,
        saml_response: str,
        *,
        expected_request_id: str | None,
        now: datetime | None = None,
    ) -> list[CheckResult]:
        """Every check with pass/fail and detail, for the admin's "Test connection"
        (spec 3). Never raises for a bad response and writes nothing (the replay cache is
        only read). Details may quote the response: escape them when rendering."""
        _, results = verify_response(
            self._policy(),
            saml_response,
            expected_request_id=expected_request_id,
            now=now or timezone.now(),
            report=True,
        )
        return results

    def sp_metadata_xml(self) -> str:
        """Our SP metadata: entity ID, ACS (HTTP-POST), signing certificate, NameIDFormat
        persistent, AuthnRequestsSigned / WantAssertionsSigned. No encryption key is
        published, so IdPs do not encrypt assertions (which we refuse)."""
        onelogin = self._onelogin_settings(sp_only=True)
        metadata = onelogin.get_sp_metadata()
        root = parse_untrusted_xml(metadata if isinstance(metadata, bytes) else metadata.encode())
        # python3-saml stamps validUntil = now + 2 days: metadata an admin uploads to the IdP
        # once would then expire there (SimpleSAMLphp and Shibboleth honour it).
        for attribute in ("validUntil", "cacheDuration"):
            root.attrib.pop(attribute, None)
        return etree.tostring(root, encoding="unicode")
