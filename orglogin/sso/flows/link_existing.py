"""Link a verified org identity to an existing personal account (spec 2.2).

Two ways in, one way to finish:
* "I'm an existing {PLATFORM_NAME} user" (2.2.3): the learner, back from the IdP, gives the
  account's email + password (`verify_existing_account`), then its second factor if it has one
  (`verify_second_factor`).
* A logged-in owner (2.2.1) asks to link; a fresh SSO round trip carries that intent
  (`intent_arrived`); they re-enter their password (`confirm_current_account`) and second
  factor.
Both end in `link_and_log_in`: one transaction for the link, the membership, the invitation
and the `sso.linked` event; then the session rotates.

Guards, each enforced here:
* PROOF, NEVER EMAIL (spec 6): the account to link is the one whose password (and second
  factor) was just given; the asserted email is never used to find it, and an email match
  proves nothing. The password check is allauth's own (`adapter.authenticate`), so the
  `login_failed` rate limit (per account and per IP) is the one the log-in screen counts on:
  failures on either screen add up, and the lockout holds on both. Unknown email and wrong
  password give the same text and both run the password hasher (allauth's and Django's
  backends hash a dummy for an unknown address).
* The identity comes from the session stash (a verified assertion, expiring ten minutes after
  the SSO login; later steps don't extend it) and is removed once linked: single use.
* The second factor step only follows a proven password for the same account, bound to that
  account's session hash (a password change or "log out everywhere" in between voids it).
* An org identity belongs to at most one account: one linked meanwhile to another account is
  refused (SSO_IDENTITY_TAKEN); the unique constraint backs the explicit check under races.
  An account already linked to a *different* identity of the same connection is refused too:
  one person, one org account per connection.
* Inactive accounts and accounts whose login email was never confirmed are refused (the
  log-in screen refuses both); an unconfirmed account can't be made reachable through SSO.
"""

from __future__ import annotations

from typing import Any

from allauth.account.adapter import get_adapter as get_account_adapter
from allauth.account.internal.flows.email_verification import send_verification_email_for_user
from allauth.account.utils import has_verified_email
from allauth.core import context
from allauth.mfa.base.forms import AuthenticateForm
from allauth.mfa.utils import is_mfa_enabled
from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.http import HttpRequest

from orglogin.audit import Event, record
from orglogin.core.errors import ErrorCode
from orglogin.organizations.actions import ensure_membership
from orglogin.sso import pending
from orglogin.sso.flows.common import (
    create_link,
    fail,
    log_in,
    redeem_invitation,
    redirect_target,
)
from orglogin.sso.flows.outcomes import Challenge, Failure, LoggedIn, Screen
from orglogin.sso.identity import AssertedIdentity
from orglogin.sso.models import Connection, OrgIdentity

LINK_USER = "link_user"  # extra: the account whose password was proven, awaiting its 2nd factor
LINK_HASH = "link_hash"  # extra: that account's session hash when the password was proven
CONFIRM_EMAIL_FIRST = (
    "Confirm this account's email address first: we sent a link to it. Then log in with your "
    "organization again."
)


class _Taken(Exception):
    def __init__(self, owner_id: int) -> None:
        self.owner_id = owner_id


def _connection(request: HttpRequest, waiting: pending.PendingIdentity) -> Connection | Failure:
    connection = (
        Connection.objects.select_related("organization")
        .filter(pk=waiting.identity.connection_id)
        .first()
    )
    if connection is None or not connection.enabled:
        return fail(
            request,
            ErrorCode.SSO_NOT_CONFIGURED,
            check="connection_disabled",
            connection=connection,
        )
    return connection


def _authenticate(
    request: HttpRequest, email: str, password: str, *, mismatch: str = "email_password_mismatch"
) -> tuple[Any, str]:
    """(account, "") or (None, the learner's message). allauth's authenticate: consumes and
    checks the shared `login_failed` limit, audits failures through Django's signal."""
    adapter = get_account_adapter(request)
    try:
        user = adapter.authenticate(request, email=email.strip(), password=password)
    except ValidationError as locked_out:
        return None, locked_out.messages[0]
    if user is None:
        return None, str(adapter.error_messages[mismatch])
    return user, ""


def _refuse_link(
    request: HttpRequest, identity: AssertedIdentity, user, connection: Connection
) -> Failure | None:
    # Explicit check; the (connection, subject) unique constraint backs it under races.
    owner_id = (
        OrgIdentity.objects.filter(connection=connection, subject=identity.subject)
        .values_list("user_id", flat=True)
        .first()
    )
    if owner_id is not None and owner_id != user.pk:
        return fail(
            request,
            ErrorCode.SSO_IDENTITY_TAKEN,
            check="identity_linked_to_another_account",
            connection=connection,
            linked_account=owner_id,
            attempted_account=user.pk,
        )
    if (
        OrgIdentity.objects.filter(connection=connection, user=user)
        .exclude(subject=identity.subject)
        .exists()
    ):
        return fail(
            request,
            ErrorCode.SSO_ACCOUNT_HAS_LINK,
            check="account_has_another_identity_of_connection",
            connection=connection,
            attempted_account=user.pk,
        )
    return None


def _after_password(
    request: HttpRequest,
    waiting: pending.PendingIdentity,
    user,
    connection: Connection,
    *,
    screen: Screen,
    method: str,
) -> LoggedIn | Challenge | Failure:
    org = connection.organization
    if not user.is_active:
        return fail(
            request,
            ErrorCode.ACCOUNT_INACTIVE,
            check="link_account_inactive",
            connection=connection,
            attempted_account=user.pk,
        )
    if not has_verified_email(user, user.email):
        # The log-in screen would refuse it too; linking must not open a way around that.
        send_verification_email_for_user(request, user)
        return Challenge(screen=screen, organization=org, message=CONFIRM_EMAIL_FIRST)
    refused = _refuse_link(request, waiting.identity, user, connection)
    if refused is not None:
        return refused
    if is_mfa_enabled(user):
        try:
            pending.update_identity_extra(
                request.session,
                waiting,
                **{LINK_USER: user.pk, LINK_HASH: user.get_session_auth_hash()},
            )
        except ValueError:
            return fail(request, ErrorCode.SSO_SESSION_MISMATCH, check="pending_identity_replaced")
        return Challenge(screen=Screen.LINK_MFA, organization=org)
    return link_and_log_in(request, waiting, user, connection, method=method)


# --- I'm an existing user (2.2.3) -------------------------------------------------------------


def verify_existing_account(
    request: HttpRequest, waiting: pending.PendingIdentity, *, email: str, password: str
) -> LoggedIn | Challenge | Failure:
    """Step 1: the existing account's email + password."""
    connection = _connection(request, waiting)
    if isinstance(connection, Failure):
        return connection
    user, problem = _authenticate(request, email, password)
    if user is None:
        return Challenge(
            screen=Screen.EXISTING_LOGIN, organization=connection.organization, message=problem
        )
    return _after_password(
        request, waiting, user, connection, screen=Screen.EXISTING_LOGIN, method="password"
    )


def awaiting_second_factor(request: HttpRequest, waiting: pending.PendingIdentity) -> Any | Failure:
    """The account whose password was proven for this pending identity, still unchanged."""
    user_id = waiting.extra.get(LINK_USER)
    user = get_user_model().objects.filter(pk=user_id).first() if user_id else None
    if user is None or waiting.extra.get(LINK_HASH) != user.get_session_auth_hash():
        return fail(request, ErrorCode.SSO_PENDING_EXPIRED, check="second_factor_without_password")
    return user


def verify_second_factor(
    request: HttpRequest, waiting: pending.PendingIdentity, *, code: str
) -> LoggedIn | Challenge | Failure:
    """Step 2 when the account has MFA: allauth's own code check (TOTP or a recovery code),
    with its rate limit; a used TOTP code can't be replayed."""
    connection = _connection(request, waiting)
    if isinstance(connection, Failure):
        return connection
    user = awaiting_second_factor(request, waiting)
    if isinstance(user, Failure):
        return user
    with context.request_context(request):
        form = AuthenticateForm(user=user, data={"code": code})
        if not form.is_valid():
            message = " ".join(form.errors.get("code") or ["Incorrect code."])
            return Challenge(
                screen=Screen.LINK_MFA, organization=connection.organization, message=message
            )
        form.save()  # allauth's post-authentication: records the factor's use
    refused = _refuse_link(request, waiting.identity, user, connection)
    if refused is not None:
        return refused
    method = "current_password+mfa" if waiting.extra.get(pending.LINK_TO) else "password+mfa"
    return link_and_log_in(request, waiting, user, connection, method=method)


# --- A logged-in owner links (2.2.1) ---------------------------------------------------------


def intent_arrived(
    request: HttpRequest,
    identity: AssertedIdentity,
    link: OrgIdentity | None,
    *,
    connection: Connection,
    user_id: int,
    next_url: str = "",
) -> LoggedIn | Challenge | Failure:
    """Back from the fresh SSO login a logged-in learner asked for to link their account."""
    user = request.user
    if not user.is_authenticated or user.pk != user_id:
        # Logged out, or someone else logged in, between the request and the IdP's answer.
        return fail(
            request,
            ErrorCode.SSO_SESSION_MISMATCH,
            check="link_intent_account_changed",
            connection=connection,
        )
    if link is not None:
        if link.user_id != user.pk:
            return fail(
                request,
                ErrorCode.SSO_IDENTITY_TAKEN,
                check="identity_linked_to_another_account",
                connection=connection,
                linked_account=link.user_id,
                attempted_account=user.pk,
            )
        from orglogin.sso.flows.returning import log_in_linked

        return log_in_linked(request, link, identity, connection=connection, next_url=next_url)
    if not user.has_usable_password():
        return fail(
            request,
            ErrorCode.LINK_PASSWORD_REQUIRED,
            check="link_account_without_password",
            connection=connection,
        )
    refused = _refuse_link(request, identity, user, connection)
    if refused is not None:
        return refused
    pending.stash_identity(
        request.session, identity, next_url=next_url, extra={pending.LINK_TO: user.pk}
    )
    return Challenge(screen=Screen.LINK_CONFIRM, organization=connection.organization)


def confirm_current_account(
    request: HttpRequest, waiting: pending.PendingIdentity, *, password: str
) -> LoggedIn | Challenge | Failure:
    """The logged-in owner re-enters their password (then their second factor, if any)."""
    connection = _connection(request, waiting)
    if isinstance(connection, Failure):
        return connection
    user = request.user
    if not user.is_authenticated or user.pk != waiting.extra.get(pending.LINK_TO):
        return fail(
            request,
            ErrorCode.SSO_SESSION_MISMATCH,
            check="link_intent_account_changed",
            connection=connection,
        )
    if not user.has_usable_password():
        return fail(
            request,
            ErrorCode.LINK_PASSWORD_REQUIRED,
            check="link_account_without_password",
            connection=connection,
        )
    proven, problem = _authenticate(request, user.email, password, mismatch="incorrect_password")
    if proven is None or proven.pk != user.pk:
        wrong = str(get_account_adapter(request).error_messages["incorrect_password"])
        return Challenge(
            screen=Screen.LINK_CONFIRM,
            organization=connection.organization,
            message=problem or wrong,
        )
    return _after_password(
        request, waiting, proven, connection, screen=Screen.LINK_CONFIRM, method="current_password"
    )


# --- the one way to finish ---------------------------------------------------------------------


def link_and_log_in(
    request: HttpRequest,
    waiting: pending.PendingIdentity,
    user,
    connection: Connection,
    *,
    method: str,
) -> LoggedIn | Failure:
    """Link, join the org (and the invited program), audit; all or nothing. Then log in."""
    from orglogin.programs.invite import pending_invitation_id

    identity = waiting.identity
    org = connection.organization
    invitation_id = pending_invitation_id(request)
    program = None
    try:
        with transaction.atomic():
            existing = (
                OrgIdentity.objects.select_for_update()
                .filter(connection=connection, subject=identity.subject)
                .first()
            )
            if existing is not None and existing.user_id != user.pk:
                raise _Taken(existing.user_id)
            if existing is None:
                create_link(connection, identity, user)
            else:
                ensure_membership(org, user)
            if invitation_id is not None:
                # Inside the transaction, so the link event names the program; a bad
                # invitation leaves the link standing and the learner is told.
                program = redeem_invitation(
                    request,
                    invitation_id,
                    user,
                    connection=connection,
                    asserted_email=identity.email,
                )
            record(
                Event.SSO_LINKED,
                actor=user,
                organization=org,
                request=request,
                connection=str(connection.public_id),
                subject=identity.subject,
                method=method,
                invitation=invitation_id,
                program=program.slug if program is not None else None,
            )
    except (_Taken, IntegrityError) as lost:
        owner_id = lost.owner_id if isinstance(lost, _Taken) else None
        return fail(
            request,
            ErrorCode.SSO_IDENTITY_TAKEN,
            check="identity_linked_to_another_account",
            connection=connection,
            linked_account=owner_id,
            attempted_account=user.pk,
        )
    pending.clear_identity(request.session)  # single use
    log_in(request, user)  # rotates the session key, also for the logged-in owner
    return LoggedIn(
        user=user, redirect_to=redirect_target(request, waiting.next_url), program=program
    )
