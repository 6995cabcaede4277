"""Writes to SSO connections and their IdP certificates, plus what an admin pastes into the IdP.

Actions take `*, actor` and write a `sso.connection_changed` audit event in the same
transaction. The SAML protocol module parses metadata and makes keys; this module only
stores what it returns.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from django.db import transaction
from django.utils import timezone

from orglogin.audit import Event, record
from orglogin.organizations.models import Organization
from orglogin.sso.models import Connection, IdpCertificate


class ConnectionSetupError(ValueError):
    """Bad input for a connection action; the message is safe to show an operator."""


def certificate_facts(pem: str) -> tuple[str, Any]:
    """(SHA-256 fingerprint as AA:BB:..., not_after) of a PEM certificate."""
    try:
        cert = x509.load_pem_x509_certificate(pem.encode("ascii"))
    except ValueError as exc:
        raise ConnectionSetupError(f"not a PEM certificate: {exc}") from exc
    digest = cert.fingerprint(hashes.SHA256()).hex().upper()
    fingerprint = ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))
    return fingerprint, cert.not_valid_after_utc


def _sync_certificates(connection: Connection, pems: Iterable[str], *, source: str) -> list[str]:
    """Make the `source` certificates exactly `pems` (rollover: the metadata lists every
    certificate the IdP currently signs with); certificates from other sources stay."""
    wanted: dict[str, tuple[str, Any]] = {}
    for pem in pems:
        fingerprint, not_after = certificate_facts(pem)
        wanted[fingerprint] = (pem.strip(), not_after)
    if not wanted:
        raise ConnectionSetupError("the IdP metadata has no signing certificate")
    existing = {c.sha256_fingerprint: c for c in connection.certificates.all()}
    for fingerprint, (pem, not_after) in wanted.items():
        if fingerprint not in existing:
            IdpCertificate.objects.create(
                connection=connection,
                pem=pem,
                sha256_fingerprint=fingerprint,
                not_after=not_after,
                source=source,
            )
    stale = [f for f, c in existing.items() if c.source == source and f not in wanted]
    connection.certificates.filter(sha256_fingerprint__in=stale).delete()
    return list(wanted)


def _parse_metadata(metadata_xml: str):
    from orglogin.sso.protocols.saml import SamlMetadataError, parse_idp_metadata

    try:
        return parse_idp_metadata(metadata_xml)
    except SamlMetadataError as exc:
        raise ConnectionSetupError(f"unusable IdP metadata: {exc}") from exc


def fetch_metadata(url: str) -> str:
    from orglogin.sso.protocols.saml import SamlMetadataError, fetch_idp_metadata

    try:
        return fetch_idp_metadata(url)
    except SamlMetadataError as exc:
        raise ConnectionSetupError(f"could not fetch IdP metadata from {url}: {exc}") from exc


def _apply_metadata(connection: Connection, metadata_xml: str) -> list[str]:
    meta = _parse_metadata(metadata_xml)
    connection.idp_entity_id = meta.entity_id
    connection.idp_sso_url = meta.sso_url
    connection.idp_slo_url = meta.slo_url or ""
    connection.idp_wants_signed_requests = bool(meta.wants_signed_requests)
    connection.metadata_xml = metadata_xml
    connection.metadata_refreshed_at = timezone.now()
    connection.save()
    return _sync_certificates(connection, meta.certificates, source="metadata")


@transaction.atomic
def create_saml_connection(
    organization: Organization,
    *,
    metadata_xml: str,
    actor: Any,
    metadata_url: str = "",
    name: str = "",
    allow_idp_initiated: bool = False,
    request=None,
) -> Connection:
    """A SAML connection from IdP metadata, with a fresh SP key pair of its own."""
    from orglogin.sso.protocols.saml import generate_sp_keypair

    name = (name or "").strip() or "SAML"
    if organization.connections.filter(name=name).exists():
        raise ConnectionSetupError(f"{organization.slug} already has a connection named {name!r}")
    connection = Connection(
        organization=organization,
        protocol=Connection.Protocol.SAML,
        name=name,
        allow_idp_initiated=allow_idp_initiated,
        metadata_url=metadata_url,
    )
    connection.sp_private_key, connection.sp_certificate = generate_sp_keypair(
        f"OrgLogin SP {organization.slug}"
    )
    fingerprints = _apply_metadata(connection, metadata_xml)
    record(
        Event.CONNECTION_CHANGED,
        actor=actor,
        organization=organization,
        request=request,
        action="create_saml_connection",
        connection=str(connection.public_id),
        idp_entity_id=connection.idp_entity_id,
        certificates=fingerprints,
        allow_idp_initiated=allow_idp_initiated,
    )
    return connection


@transaction.atomic
def refresh_saml_metadata(
    connection: Connection, *, metadata_xml: str, actor: Any, request=None
) -> Connection:
    """Re-read IdP metadata (entity ID, SSO URL, certificates); the SP key pair stays."""
    before = set(connection.certificates.values_list("sha256_fingerprint", flat=True))
    fingerprints = _apply_metadata(connection, metadata_xml)
    record(
        Event.CONNECTION_CHANGED,
        actor=actor,
        organization=connection.organization,
        request=request,
        action="refresh_saml_metadata",
        connection=str(connection.public_id),
        idp_entity_id=connection.idp_entity_id,
        certificates_added=sorted(set(fingerprints) - before),
    )
    return connection


def _oidc_issuer(raw: str) -> str:
    """The issuer exactly as the provider names itself (discovery compares it verbatim, so a
    trailing slash matters and is kept): an https URL without query or fragment; plain http
    only for loopback or with DEBUG (development providers)."""
    from urllib.parse import urlsplit

    from django.conf import settings

    from orglogin.sso.protocols.oidc import _is_loopback

    issuer = (raw or "").strip()
    try:
        parts = urlsplit(issuer)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ConnectionSetupError(f"issuer {issuer!r} is not a URL: {exc}") from exc
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConnectionSetupError(f"issuer {issuer!r} is not an https URL")
    if parts.scheme == "http" and not (_is_loopback(parts.hostname) or settings.DEBUG):
        raise ConnectionSetupError(f"issuer {issuer!r} must use https")
    if parts.query or parts.fragment:
        raise ConnectionSetupError(f"issuer {issuer!r} must not have a query or fragment")
    return issuer


def _oidc_scopes(raw: str) -> str:
    scopes = list(dict.fromkeys((raw or "").split()))
    if "openid" not in scopes:
        raise ConnectionSetupError(f"scopes {raw!r} must include openid")
    return " ".join(scopes)


def create_oidc_connection(
    organization: Organization,
    *,
    issuer: str,
    client_id: str,
    client_secret: str,
    actor: Any,
    name: str = "",
    preset: str = "",
    scopes: str = "",
    check_discovery: bool = True,
    request=None,
) -> Connection:
    """An OpenID Connect connection (authorization code flow, see `sso/protocols/oidc.py`).

    With `check_discovery` (the default) the issuer's discovery document is fetched first and
    must name exactly this issuer, so a typo or a mix-up fails here and not at the first
    learner's login. Without it (offline setup) nothing about the provider is checked.
    The client secret is stored as given and never echoed or audited.
    """
    from orglogin.sso.errors import SsoError
    from orglogin.sso.protocols.oidc import DEFAULT_SCOPES, PRESETS, discover

    issuer = _oidc_issuer(issuer)
    client_id = (client_id or "").strip()
    if not client_id:
        raise ConnectionSetupError("the client id is empty")
    if not client_secret or not client_secret.strip():
        raise ConnectionSetupError("the client secret is empty")
    preset = (preset or "").strip().lower()
    if preset and preset not in PRESETS:
        raise ConnectionSetupError(
            f"unknown preset {preset!r} (known: {', '.join(sorted(PRESETS))})"
        )
    if preset == "entra" and any(
        f"/{tenant}/" in issuer + "/" for tenant in ("common", "organizations", "consumers")
    ):
        # Multi-tenant endpoints accept accounts of every tenant: the org's own tenant only.
        raise ConnectionSetupError(
            "Entra needs the tenant's own issuer "
            "(https://login.microsoftonline.com/{tenant-id}/v2.0), not common/organizations"
        )
    scopes = _oidc_scopes(scopes or DEFAULT_SCOPES)
    for label, value, field in (
        ("issuer", issuer, "oidc_issuer"),
        ("client id", client_id, "oidc_client_id"),
        ("client secret", client_secret, "oidc_client_secret"),
        ("scopes", scopes, "oidc_scopes"),
    ):
        limit = Connection._meta.get_field(field).max_length
        if len(value) > limit:
            raise ConnectionSetupError(f"the {label} is longer than {limit} characters")
    name = (name or "").strip() or (PRESETS[preset].name.title() if preset else "OIDC")
    if organization.connections.filter(name=name).exists():
        raise ConnectionSetupError(f"{organization.slug} already has a connection named {name!r}")
    if check_discovery:
        # Before any write: no transaction (nor SQLite's write lock) is held across the
        # network call when the caller has none open.
        try:
            metadata = discover(issuer)
            metadata.token_auth_method  # noqa: B018 - refuses a provider we can't talk to
        except SsoError as exc:
            raise ConnectionSetupError(
                f"OIDC discovery failed for issuer {issuer}: {exc.detail or exc.check}"
            ) from exc
    with transaction.atomic():
        if organization.connections.filter(name=name).exists():  # again, now under the lock
            raise ConnectionSetupError(
                f"{organization.slug} already has a connection named {name!r}"
            )
        connection = Connection.objects.create(
            organization=organization,
            protocol=Connection.Protocol.OIDC,
            name=name,
            oidc_issuer=issuer,
            oidc_client_id=client_id,
            oidc_client_secret=client_secret,
            oidc_scopes=scopes,
            oidc_preset=preset,
        )
        record(
            Event.CONNECTION_CHANGED,
            actor=actor,
            organization=organization,
            request=request,
            action="create_oidc_connection",
            connection=str(connection.public_id),
            issuer=issuer,
            client_id=client_id,
            preset=preset,
            scopes=scopes,
            discovery_checked=check_discovery,
        )
    return connection


def oidc_redirect_uri(connection: Connection) -> str:
    from orglogin.sso.protocols.oidc import redirect_uri

    return redirect_uri(connection)


def describe_connection(connection: Connection) -> dict[str, Any]:
    """What an admin or operator needs to configure the IdP side (spec 3, spec 4 `sso show`)."""
    data: dict[str, Any] = {
        "public_id": str(connection.public_id),
        "protocol": connection.protocol,
        "name": connection.name,
        "enabled": connection.enabled,
        "allow_idp_initiated": connection.allow_idp_initiated,
    }
    if connection.protocol == Connection.Protocol.SAML:
        from orglogin.sso.protocols.saml import sp_endpoints

        endpoints = sp_endpoints(connection)
        data.update(
            sp_entity_id=endpoints.entity_id,
            acs_url=endpoints.acs_url,
            metadata_url=endpoints.metadata_url,
            idp_entity_id=connection.idp_entity_id,
            idp_sso_url=connection.idp_sso_url,
            idp_certificates=[
                {
                    "sha256_fingerprint": c.sha256_fingerprint,
                    "not_after": c.not_after.isoformat() if c.not_after else None,
                }
                for c in connection.certificates.all()
            ],
        )
    elif connection.protocol == Connection.Protocol.OIDC:
        data.update(
            redirect_uri=oidc_redirect_uri(connection),
            issuer=connection.oidc_issuer,
            client_id=connection.oidc_client_id,
        )
    return data
