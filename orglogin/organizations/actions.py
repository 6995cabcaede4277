"""Writes to organizations, domains and memberships. Each is an action with `*, actor` that
writes its audit event in the same transaction; the CLI, the admin console and the flows call
these, never the models directly.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone

from orglogin.audit import Event, record
from orglogin.organizations.domains import DomainError, normalize_domain
from orglogin.organizations.models import Domain, Membership, Organization, slug_validator


class OrganizationError(ValueError):
    """Bad input for an organization action; the message is safe to show an operator."""


def _validate_slug(slug: str) -> str:
    try:
        slug_validator(slug)
    except ValidationError as exc:
        raise OrganizationError(f"invalid slug {slug!r}: {exc.messages[0]}") from exc
    return slug


def _normalize(raw: str) -> str:
    try:
        return normalize_domain(raw)
    except DomainError as exc:
        raise OrganizationError(str(exc)) from exc


def _ensure_domain_free(name: str, organization: Organization | None) -> None:
    taken = Domain.objects.filter(name=name, verified=True)
    if organization is not None:
        taken = taken.exclude(organization=organization)
    if taken.exists():
        raise OrganizationError(f"domain {name} is already verified for another organization")


@transaction.atomic
def create_organization(
    slug: str,
    name: str,
    domains: Iterable[str] = (),
    *,
    actor: Any,
    domains_verified: bool = True,
    match_subdomains: bool = False,
    jit_signup_enabled: bool = True,
    request=None,
) -> Organization:
    """Create an org with its domains. Operator-given domains count as verified (spec 4)."""
    slug = _validate_slug(slug)
    name = (name or "").strip()
    if not name:
        raise OrganizationError("the organization needs a name")
    if Organization.objects.filter(slug=slug).exists():
        raise OrganizationError(f"organization {slug!r} already exists")
    names = list(dict.fromkeys(_normalize(d) for d in domains))
    if domains_verified:
        for domain in names:
            _ensure_domain_free(domain, None)
    org = Organization.objects.create(
        slug=slug,
        name=name,
        match_subdomains=match_subdomains,
        jit_signup_enabled=jit_signup_enabled,
    )
    now = timezone.now() if domains_verified else None
    for domain in names:
        Domain.objects.create(
            organization=org, name=domain, verified=domains_verified, verified_at=now
        )
    record(
        Event.ORG_CHANGED,
        actor=actor,
        organization=org,
        request=request,
        action="create_organization",
        slug=slug,
        domains=names,
        domains_verified=domains_verified,
    )
    return org


@transaction.atomic
def add_domain(
    organization: Organization, raw_name: str, *, actor: Any, verified: bool = False, request=None
) -> Domain:
    """Claim a domain for the org; unverified claims may overlap, verified ones may not."""
    name = _normalize(raw_name)
    if Domain.objects.filter(organization=organization, name=name).exists():
        raise OrganizationError(f"{organization.slug} already has the domain {name}")
    if verified:
        _ensure_domain_free(name, organization)
    try:
        with transaction.atomic():
            domain = Domain.objects.create(
                organization=organization,
                name=name,
                verified=verified,
                verified_at=timezone.now() if verified else None,
            )
    except IntegrityError as exc:  # a concurrent claim won the race
        raise OrganizationError(f"domain {name} is already verified elsewhere") from exc
    record(
        Event.ORG_CHANGED,
        actor=actor,
        organization=organization,
        request=request,
        action="add_domain",
        domain=name,
        verified=verified,
    )
    return domain


@transaction.atomic
def verify_domain(domain: Domain, *, actor: Any, method: str = "operator", request=None) -> Domain:
    """Mark a domain verified (DNS TXT check or an operator's word, named by `method`)."""
    if domain.verified:
        return domain
    _ensure_domain_free(domain.name, domain.organization)
    domain.verified = True
    domain.verified_at = timezone.now()
    try:
        with transaction.atomic():
            domain.save(update_fields=["verified", "verified_at"])
    except IntegrityError as exc:
        raise OrganizationError(f"domain {domain.name} is already verified elsewhere") from exc
    record(
        Event.ORG_CHANGED,
        actor=actor,
        organization=domain.organization,
        request=request,
        action="verify_domain",
        domain=domain.name,
        method=method,
    )
    return domain


def ensure_membership(
    organization: Organization, user, role: str = Membership.Role.LEARNER
) -> Membership:
    """The membership row, created if missing. No audit event of its own: callers (JIT
    sign-up, invitation use) record the event that explains why the learner joined."""
    membership, _ = Membership.objects.get_or_create(
        organization=organization, user=user, defaults={"role": role}
    )
    return membership


@transaction.atomic
def add_member(
    organization: Organization,
    user,
    *,
    actor: Any,
    role: str = Membership.Role.LEARNER,
    request=None,
) -> Membership:
    membership = ensure_membership(organization, user, role)
    if membership.role != role:
        membership.role = role
        membership.save(update_fields=["role"])
    record(
        Event.ORG_CHANGED,
        actor=actor,
        organization=organization,
        request=request,
        action="add_member",
        user_id=user.pk,
        role=role,
    )
    return membership
