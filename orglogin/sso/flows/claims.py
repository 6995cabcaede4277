"""Unproven claims on an address the organization has just proven (pre-account hijacking).

The attack (Sudhodanan & Paverd, USENIX Security 2022): before the learner ever arrives, an
attacker signs up with the learner's org email (never confirming it) and a password of their
own, or asks to change another account's email to that address, or adds a social login to
the squatting account; then waits for the learner to come in through SSO and either absorb
the learner's identity into the attacker's account or block the learner.

The rule, enforced by `release_unproven_claims` on every SSO arrival whose email the
organization vouches for (`org_proves_email`: the IdP asserts it verified AND it lies in one
of the org's verified domains):

* An address recorded by allauth as unverified (EmailAddress.verified False) on another
  account, with no verified row for it on that account, is a claim that was never proven.
  The SSO login just proved the address belongs to the learner, so the claim is dropped:
  - an account with nothing else (no verified address at all, no org link, no social link,
    no certificate, no program or org membership, no second factor) is deleted: it is a
    pre-account; its sessions die with it;
  - an account whose *login* email is the claimed address but that holds something of value
    keeps everything except the address: its login email becomes its verified address if it
    has one, else a never-deliverable placeholder (``unclaimed+<id>@email.invalid``, RFC 2606),
    and all its sessions end (`end_all_sessions`) so a session opened under the address can't
    reach anything later;
  - a pending email change (a secondary, unverified row) is cancelled: the row is deleted,
    which also voids its confirmation link.
* An account whose address is verified, or that has no EmailAddress row for it at all (made by
  an operator; its status is unknown), is left alone: the learner proves ownership of it by
  password ("I'm an existing user") or meets the conflict screen.
* Nothing of the dropped claim is carried over to the learner: no link, no social account, no
  password. Each drop is audited (`sso.claim_dropped`, with the account id and what was done).
"""

from __future__ import annotations

from typing import Any

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest

from orglogin.audit import Event, record
from orglogin.organizations.domains import DomainError, normalize_domain
from orglogin.organizations.models import Organization
from orglogin.sso.identity import AssertedIdentity

CLAIM_DROPPED = Event.SSO_CLAIM_DROPPED
PLACEHOLDER_DOMAIN = "email.invalid"


def org_vouches_for(organization: Organization, email: str) -> bool:
    """An IdP is trusted to vouch only for addresses in its org's verified domains."""
    try:
        domain = normalize_domain(email.rsplit("@", 1)[-1])
    except DomainError:
        return False
    for claimed in organization.domains.filter(verified=True).values_list("name", flat=True):
        if domain == claimed or (organization.match_subdomains and domain.endswith("." + claimed)):
            return True
    return False


def org_proves_email(identity: AssertedIdentity, organization: Organization) -> bool:
    return (
        bool(identity.email)
        and identity.email_verified
        and org_vouches_for(organization, identity.email)
    )


def accounts_with_email(email: str) -> list[Any]:
    """Accounts whose login email is `email`, or that hold it as a verified address."""
    User = get_user_model()
    holders = {u.pk: u for u in User.objects.filter(email__iexact=email)}
    for address in EmailAddress.objects.filter(email__iexact=email, verified=True).select_related(
        "user"
    ):
        holders.setdefault(address.user_id, address.user)
    return list(holders.values())


def _holds_nothing_else(user, email: str) -> bool:
    from orglogin.programs.models import Certificate, ProgramMembership
    from orglogin.sso.models import OrgIdentity

    return not (
        EmailAddress.objects.filter(user=user, verified=True).exists()
        or OrgIdentity.objects.filter(user=user).exists()
        or SocialAccount.objects.filter(user=user).exists()
        or Certificate.objects.filter(user=user).exists()
        or ProgramMembership.objects.filter(user=user).exists()
        or user.memberships.exists()
        or Authenticator.objects.filter(user=user).exists()
    )


def release_unproven_claims(
    request: HttpRequest | None,
    identity: AssertedIdentity,
    *,
    connection: Any,
    keep_user_id: int | None = None,
) -> list[str]:
    """Drop every unverified claim of another account on the address this SSO login proved.

    Returns what was done, one word per account (for tests and the caller's logs). Does
    nothing unless the organization vouches for the address; never touches `keep_user_id`
    (the account this login is for) nor any verified claim.
    """
    organization = connection.organization
    if not org_proves_email(identity, organization):
        return []
    email = identity.email.strip().lower()
    User = get_user_model()
    # The common case (nobody else claims the address) is a plain read: a write transaction
    # here would take SQLite's write lock on every returning login.
    unproven = EmailAddress.objects.filter(email__iexact=email, verified=False)
    if keep_user_id is not None:
        unproven = unproven.exclude(user_id=keep_user_id)
    if not unproven.exists():
        return []
    done: list[str] = []
    with transaction.atomic():
        rows = list(EmailAddress.objects.filter(email__iexact=email))
        holder_ids = {row.user_id for row in rows} | set(
            User.objects.filter(email__iexact=email).values_list("pk", flat=True)
        )
        holder_ids.discard(keep_user_id)
        for user in User.objects.select_for_update().filter(pk__in=holder_ids).order_by("pk"):
            own = [row for row in rows if row.user_id == user.pk]
            if not own or any(row.verified for row in own):
                continue  # proven, or status unknown (no allauth row): the owner's paths decide
            done.append(_drop(request, user, own, email, identity, connection))
    return done


def _drop(request, user, rows, email: str, identity: AssertedIdentity, connection) -> str:
    audit = {
        "account": user.pk,
        "email": email,
        "connection": str(connection.public_id),
        "subject": identity.subject,
    }
    if _holds_nothing_else(user, email):
        # A pre-account: deleting it ends its sessions too (their user no longer exists).
        user.delete()
        action = "account_deleted"
    elif user.email.lower() == email:
        EmailAddress.objects.filter(pk__in=[row.pk for row in rows]).delete()
        verified = EmailAddress.objects.filter(user=user, verified=True).order_by("pk").first()
        if verified is not None:
            EmailAddress.objects.filter(user=user).update(primary=False)
            EmailAddress.objects.filter(pk=verified.pk).update(primary=True)
            user.email = verified.email
        else:
            user.email = f"unclaimed+{user.pk}@{PLACEHOLDER_DOMAIN}"
        user.save(update_fields=["email"])
        user.end_all_sessions()
        audit["login_email_now"] = user.email
        action = "email_released"
    else:
        EmailAddress.objects.filter(pk__in=[row.pk for row in rows]).delete()
        action = "pending_change_cancelled"
    record(
        CLAIM_DROPPED,
        organization=connection.organization,
        request=request,
        action=action,
        **audit,
    )
    return action
