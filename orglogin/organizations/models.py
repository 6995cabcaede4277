from __future__ import annotations

import secrets

from django.conf import settings
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q

slug_validator = RegexValidator(
    r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$",
    "Use lowercase letters, digits and hyphens (not at the start or end), at most 64.",
)


class Organization(models.Model):
    slug = models.CharField(max_length=64, unique=True, validators=[slug_validator])
    name = models.CharField(max_length=200)
    # Subdomains (mail.acme.com) match the parent domain only when the org allows it (spec 2.1.2).
    match_subdomains = models.BooleanField(default=False)
    jit_signup_enabled = models.BooleanField(
        default=True, help_text="Create accounts just in time on first SSO login."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


def new_verification_token() -> str:
    return secrets.token_urlsafe(24)


class Domain(models.Model):
    """An email domain an org claims. Only verified domains route logins (home realm discovery)."""

    organization = models.ForeignKey(Organization, on_delete=models.CASCADE, related_name="domains")
    name = models.CharField(max_length=253, db_index=True)  # lowercase, IDNA (punycode)
    verified = models.BooleanField(default=False)
    verification_token = models.CharField(max_length=64, default=new_verification_token)
    verified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            # A verified domain belongs to exactly one org; unverified claims may overlap.
            models.UniqueConstraint(
                fields=["name"],
                condition=Q(verified=True),
                name="organizations_domain_verified_once",
            ),
            models.UniqueConstraint(
                fields=["organization", "name"], name="organizations_domain_per_org"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def dns_txt_record(self) -> str:
        return f"orglogin-verification={self.verification_token}"


class Membership(models.Model):
    class Role(models.TextChoices):
        LEARNER = "learner"
        ADMIN = "admin"

    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="memberships"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships"
    )
    role = models.CharField(max_length=16, choices=Role.choices, default=Role.LEARNER)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["organization", "user"], name="organizations_membership_once"
            )
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.organization} ({self.role})"
