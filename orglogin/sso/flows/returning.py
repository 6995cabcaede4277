"""An org identity arrived from a protocol: log its owner in, or ask the learner what to do.

The only key is (connection, subject). The asserted email is never used to find an account
to log into or link (spec 6): two people can share an address over time, and an IdP's admin
can assert any email. It is looked at for two things only, neither of which links anything:
unproven claims of other accounts on an address the org vouches for are dropped
(`claims.py`, pre-account hijacking), and an address owned by an account without a password
stops at the conflict screen (`conflict.py`, spec 2.4.2).
"""

from __future__ import annotations

from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from orglogin.audit import Event, record
from orglogin.core.errors import ErrorCode
from orglogin.sso import pending
from orglogin.sso.flows.claims import release_unproven_claims
from orglogin.sso.flows.common import fail, finish_login
from orglogin.sso.flows.conflict import account_conflict
from orglogin.sso.flows.outcomes import Challenge, Failure, LoggedIn, NeedsChoice, Screen
from orglogin.sso.identity import AssertedIdentity
from orglogin.sso.models import Connection, OrgIdentity


def handle_asserted_identity(
    request: HttpRequest,
    identity: AssertedIdentity,
    *,
    next_url: str = "",
    intent: dict | None = None,
) -> LoggedIn | NeedsChoice | Challenge | Failure:
    """`intent` comes from this browser's pending login (never from the IdP's answer)."""
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
    link = (
        OrgIdentity.objects.select_related("user")
        .filter(connection=connection, subject=identity.subject)
        .first()
    )
    link_to = (intent or {}).get(pending.LINK_TO)
    keep = link.user_id if link is not None else link_to
    release_unproven_claims(request, identity, connection=connection, keep_user_id=keep)
    if link_to is not None:
        from orglogin.sso.flows.link_existing import intent_arrived

        return intent_arrived(
            request, identity, link, connection=connection, user_id=link_to, next_url=next_url
        )
    if link is not None:
        return log_in_linked(request, link, identity, connection=connection, next_url=next_url)

    # An unverified email claim is not looked up: an IdP could probe addresses with it.
    if identity.email_verified:
        conflict = account_conflict(request, identity, connection=connection)
        if conflict is not None:
            return conflict
    # Unknown identity: keep it (verified, expiring) for the learner's choice. Nothing is
    # created or linked until they choose.
    pending.stash_identity(request.session, identity, next_url=next_url)
    return NeedsChoice(screen=Screen.CHOOSE, organization=connection.organization)


def log_in_linked(
    request: HttpRequest,
    link: OrgIdentity,
    identity: AssertedIdentity,
    *,
    connection: Connection,
    next_url: str = "",
) -> LoggedIn | Failure:
    """The identity is linked: its owner logs in, whoever is logged in in this browser now."""
    user = link.user
    if not user.is_active:
        return fail(
            request,
            ErrorCode.ACCOUNT_INACTIVE,
            check="account_inactive",
            connection=connection,
            user_id=user.pk,
        )
    with transaction.atomic():
        link.last_login_at = timezone.now()
        fields = ["last_login_at"]
        if identity.email and identity.email != link.email:
            link.email = identity.email
            fields.append("email")
        link.save(update_fields=fields)
        record(
            Event.SSO_LOGIN,
            actor=user,
            organization=connection.organization,
            request=request,
            connection=str(connection.public_id),
            subject=identity.subject,
        )
    return finish_login(
        request, user, connection=connection, asserted_email=identity.email, next_url=next_url
    )
