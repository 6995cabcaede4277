"""The social-login conflict (spec 2.4.2): an org identity arrives whose email belongs to an
account that nobody can prove to own on the SSO screens.

Which screen the learner meets when the org email is already an account's email:
* the account has a usable password -> the choice screen; "I'm an existing user" links it after
  the password (+ second factor) is given (spec 2.2.3). The email match itself proves nothing
  and links nothing (spec 6).
* the account has no usable password (it logs in with Google / Facebook / Apple, or only
  through another org link) -> the conflict text with a reference; nothing is created or
  linked. The help text explains the way out (spec 2.4.4): log in, set a password, delink the
  social account; then the invitation + SSO reach the first case.
"""

from __future__ import annotations

from typing import Any

from allauth.socialaccount.models import SocialAccount
from django.http import HttpRequest

from orglogin.audit import Event, record
from orglogin.core.errors import ErrorCode
from orglogin.sso.flows.claims import accounts_with_email
from orglogin.sso.flows.outcomes import Failure
from orglogin.sso.identity import AssertedIdentity


def unprovable_holder(email: str) -> Any | None:
    """An account using `email` whose owner can't prove it with a password, if any."""
    for user in accounts_with_email(email.strip().lower()):
        if not user.has_usable_password():
            return user
    return None


def account_conflict(
    request: HttpRequest, identity: AssertedIdentity, *, connection: Any
) -> Failure | None:
    """The conflict failure (audited as `sso.conflict`), or None when there is none."""
    if not identity.email:
        return None
    holder = unprovable_holder(identity.email)
    if holder is None:
        return None
    from orglogin.sso.models import OrgIdentity

    providers = sorted(
        set(SocialAccount.objects.filter(user=holder).values_list("provider", flat=True))
    )
    event = record(
        Event.SSO_CONFLICT,
        outcome="failure",
        organization=connection.organization,
        request=request,
        check="email_of_account_without_password",
        existing_account=holder.pk,
        providers=providers,
        org_links=OrgIdentity.objects.filter(user=holder).count(),
        connection=str(connection.public_id),
        subject=identity.subject,
    )
    return Failure(
        code=ErrorCode.ACCOUNT_CONFLICT,
        reference=event.reference,
        organization=connection.organization,
    )
