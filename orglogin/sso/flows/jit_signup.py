"""Just-in-time sign-up (spec 2.1.6): a new account for a verified, unlinked org identity.

Guards, in order, each written where it is enforced:
* the identity must come from the session stash (a verified assertion), never from the form;
* the org email is the asserted one: the form shows it, the POST cannot change it; the IdP
  must vouch for it (email_verified), and it counts as verified only in the org's domains;
* an identity linked meanwhile logs its owner in (it is theirs) instead of a second account;
* unproven (unverified) claims of other accounts on the org email are dropped first
  (`claims.py`: pre-account hijacking), so a squatter can't block the learner;
* an org email that still belongs to an account creates and links nothing: the link is
  made only after proof of owning that account (spec 6), which is the existing-user path;
  an owner without a password meets the conflict screen instead (`conflict.py`).
"""

from __future__ import annotations

from dataclasses import dataclass

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.db import IntegrityError, transaction
from django.http import HttpRequest

from orglogin.audit import Event, record
from orglogin.core.errors import ErrorCode
from orglogin.sso import pending
from orglogin.sso.flows.claims import org_vouches_for, release_unproven_claims
from orglogin.sso.flows.common import create_link, fail, finish_login
from orglogin.sso.flows.conflict import account_conflict
from orglogin.sso.flows.outcomes import Failure, LoggedIn, NeedsChoice, Screen
from orglogin.sso.flows.returning import log_in_linked
from orglogin.sso.models import Connection, OrgIdentity


@dataclass(frozen=True)
class SignupDetails:
    """What the learner typed on the sign-up form. The org email is deliberately absent."""

    first_name: str
    last_name: str
    password: str
    alternative_email: str = ""


def email_in_use(email: str) -> bool:
    User = get_user_model()
    return (
        User.objects.filter(email__iexact=email).exists()
        or EmailAddress.objects.filter(email__iexact=email).exists()
    )


def check_signup_allowed(
    request: HttpRequest, pending_identity: pending.PendingIdentity
) -> Connection | Failure:
    """Whether the stashed identity may sign up at all (before showing the form)."""
    identity = pending_identity.identity
    connection = (
        Connection.objects.select_related("organization").filter(pk=identity.connection_id).first()
    )
    if connection is None or not connection.enabled:
        return fail(
            request,
            ErrorCode.SSO_NOT_CONFIGURED,
            check="connection_disabled",
            connection=connection,
        )
    if not connection.organization.jit_signup_enabled:
        return fail(
            request, ErrorCode.SSO_JIT_DISABLED, check="jit_disabled", connection=connection
        )
    if not identity.email:
        return fail(
            request, ErrorCode.SSO_MISSING_ATTRIBUTES, check="email_missing", connection=connection
        )
    if not identity.email_verified:
        # An unverified email claim could name anyone: an account created under it would
        # block its real owner, who could later reset the password into an account the IdP
        # user can enter. The IdP must vouch for the address before we make it a login.
        return fail(
            request,
            ErrorCode.SSO_RESPONSE_INVALID,
            check="email_unverified",
            connection=connection,
        )
    return connection


def jit_signup(
    request: HttpRequest, pending_identity: pending.PendingIdentity, details: SignupDetails
) -> LoggedIn | NeedsChoice | Failure:
    identity = pending_identity.identity
    allowed = check_signup_allowed(request, pending_identity)
    if isinstance(allowed, Failure):
        return allowed
    connection = allowed
    org = connection.organization
    next_url = pending_identity.next_url

    link = (
        OrgIdentity.objects.select_related("user")
        .filter(connection=connection, subject=identity.subject)
        .first()
    )
    if link is not None:
        return log_in_linked(request, link, identity, connection=connection, next_url=next_url)

    email = identity.email.strip().lower()
    # A squatter may have registered the address since the SSO login: drop it again.
    release_unproven_claims(request, identity, connection=connection)
    if email_in_use(email):
        return _email_in_use(request, connection, identity)

    User = get_user_model()
    try:
        with transaction.atomic():
            user = User.objects.create_user(
                email=email,
                password=details.password,
                first_name=details.first_name.strip()[:150],
                last_name=details.last_name.strip()[:150],
                alternative_email=details.alternative_email.strip().lower(),
            )
            EmailAddress.objects.create(
                user=user,
                email=email,
                primary=True,
                # The IdP vouched for it (checked above), but only within its org's domains.
                verified=org_vouches_for(org, email),
            )
            create_link(connection, identity, user)
            record(
                Event.SSO_JIT_SIGNUP,
                actor=user,
                organization=org,
                request=request,
                connection=str(connection.public_id),
                subject=identity.subject,
            )
    except IntegrityError:
        # Lost a race: the identity was linked or the email taken in the meantime.
        link = (
            OrgIdentity.objects.select_related("user")
            .filter(connection=connection, subject=identity.subject)
            .first()
        )
        if link is not None:
            return log_in_linked(request, link, identity, connection=connection, next_url=next_url)
        return _email_in_use(request, connection, identity)

    return finish_login(
        request,
        user,
        connection=connection,
        asserted_email=identity.email,
        next_url=next_url,
        created=True,
    )


def _email_in_use(request: HttpRequest, connection: Connection, identity) -> NeedsChoice | Failure:
    """Never link on a matching email (spec 6). An owner who can prove the account by password
    gets the existing-user way; one who can't gets the conflict screen (spec 2.4.2)."""
    conflict = account_conflict(request, identity, connection=connection)
    if conflict is not None:
        return conflict
    subject = identity.subject
    event = record(
        Event.SSO_CONFLICT,
        outcome="failure",
        organization=connection.organization,
        request=request,
        check="email_in_use",
        connection=str(connection.public_id),
        subject=subject,
    )
    return NeedsChoice(
        screen=Screen.EMAIL_IN_USE,
        organization=connection.organization,
        reference=event.reference,
    )
