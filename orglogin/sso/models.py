from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from orglogin.organizations.models import Organization


class Connection(models.Model):
    """One way an org's people log in (spec 1). Protocol modules read their own fields."""

    class Protocol(models.TextChoices):
        SAML = "saml", "SAML 2.0"
        OIDC = "oidc", "OpenID Connect"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="connections"
    )
    # Appears in URLs (ACS, metadata, redirect URI); never guessable from the org slug alone.
    public_id = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    protocol = models.CharField(max_length=8, choices=Protocol.choices)
    name = models.CharField(max_length=200)
    enabled = models.BooleanField(default=True)
    allow_idp_initiated = models.BooleanField(default=False)
    # Map of our field (email, given_name, family_name, display_name, subject) to the IdP's
    # attribute/claim name; empty values fall back to the protocol's defaults.
    attribute_mapping = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    # --- SAML 2.0 -------------------------------------------------------------------------
    idp_entity_id = models.CharField(max_length=1024, blank=True)
    idp_sso_url = models.URLField(max_length=1024, blank=True)
    idp_slo_url = models.URLField(max_length=1024, blank=True)
    idp_wants_signed_requests = models.BooleanField(default=False)
    metadata_url = models.URLField(max_length=1024, blank=True)
    metadata_xml = models.TextField(blank=True)
    metadata_refreshed_at = models.DateTimeField(null=True, blank=True)
    # Opt-in only for IdPs that cannot do better (spec 6: SHA-1 refused unless opted in).
    allow_sha1 = models.BooleanField(default=False)
    # SP key pair for signing AuthnRequests; generated per connection.
    sp_private_key = models.TextField(blank=True)
    sp_certificate = models.TextField(blank=True)

    # --- OpenID Connect -------------------------------------------------------------------
    oidc_issuer = models.URLField(max_length=1024, blank=True)
    oidc_client_id = models.CharField(max_length=512, blank=True)
    oidc_client_secret = models.CharField(max_length=1024, blank=True)
    oidc_scopes = models.CharField(max_length=512, blank=True, default="openid email profile")
    oidc_preset = models.CharField(max_length=32, blank=True)

    class Meta:
        ordering = ["organization__name", "name"]

    def __str__(self) -> str:
        return f"{self.organization.name}: {self.name} ({self.get_protocol_display()})"


class IdpCertificate(models.Model):
    """An IdP signing certificate; several at once allow rollover (spec 3)."""

    connection = models.ForeignKey(
        Connection, on_delete=models.CASCADE, related_name="certificates"
    )
    pem = models.TextField()
    sha256_fingerprint = models.CharField(max_length=95)
    not_after = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=16, default="manual")  # manual | metadata
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["connection", "sha256_fingerprint"], name="sso_certificate_once"
            )
        ]

    def __str__(self) -> str:
        return self.sha256_fingerprint


class OrgIdentity(models.Model):
    """A link (spec 1): the org identity (connection, subject) belongs to one account.

    Scoped to the connection, never to the email: an email is a claim the IdP may change.
    """

    connection = models.ForeignKey(Connection, on_delete=models.CASCADE, related_name="identities")
    subject = models.CharField(max_length=512)
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="org_identities"
    )
    email = models.EmailField(blank=True)  # as last asserted; informational only
    created_at = models.DateTimeField(auto_now_add=True)
    last_login_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["connection", "subject"], name="sso_identity_once")
        ]

    def __str__(self) -> str:
        return f"{self.subject} @ {self.connection_id} -> {self.user_id}"
