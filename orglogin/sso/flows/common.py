"""Small pieces every SSO flow shares: failing with a reference code, logging in."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login as auth_login
from django.http import HttpRequest
from django.urls import reverse

from orglogin.audit import Event, record
from orglogin.core.errors import ErrorCode, error_text
from orglogin.core.redirects import safe_next_url
from orglogin.sso import pending
from orglogin.sso.errors import SsoError
from orglogin.sso.flows.outcomes import Failure, LoggedIn

MODEL_BACKEND = "django.contrib.auth.backends.ModelBackend"


def fail(
    request: HttpRequest | None,
    code: ErrorCode,
    *,
    check: str,
    detail: str = "",
    organization: Any = None,
    connection: Any = None,
    **extra: Any,
) -> Failure:
    """Record the technical cause in the audit log; the learner gets only code + reference."""
    if organization is None and connection is not None:
        organization = connection.organization
    actor = getattr(request, "user", None) if request is not None else None
    event = record(
        Event.SSO_FAILED,
        outcome="failure",
        actor=actor,
        organization=organization,
        request=request,
        code=str(code),
        check=check,
        detail=detail or None,
        connection=str(connection.public_id) if connection is not None else None,
        **extra,
    )
    return Failure(code=code, reference=event.reference, organization=organization)


def fail_from_error(request: HttpRequest | None, error: SsoError, *, connection: Any) -> Failure:
    return fail(request, error.code, check=error.check, detail=error.detail, connection=connection)


def create_link(connection: Any, identity: Any, user: Any) -> Any:
    """The link itself (spec 1): the org identity belongs to `user`, who joins the org.
    Callers decide *whether* to link (after proof, spec 6) and run this in their transaction."""
    from django.utils import timezone

    from orglogin.organizations.actions import ensure_membership
    from orglogin.sso.models import OrgIdentity

    link = OrgIdentity.objects.create(
        connection=connection,
        subject=identity.subject,
        user=user,
        email=identity.email,
        last_login_at=timezone.now(),
    )
    ensure_membership(connection.organization, user)
    return link


def redirect_target(request: HttpRequest, next_url: str | None) -> str:
    """Where to go after login: `next` only if it stays on this site (spec 6)."""
    return safe_next_url(request, next_url, reverse("dashboard"))


def log_in(request: HttpRequest, user: Any) -> None:
    """Django's login(): rotates the session key (cycle_key) and flushes another user's
    session, so a fixated or shared session never carries over (spec 6). It keeps the key of
    a session already logged in as the same account, so rotate that one explicitly."""
    request.session.cycle_key()
    auth_login(request, user, backend=MODEL_BACKEND)


def finish_login(
    request: HttpRequest,
    user: Any,
    *,
    connection: Any,
    asserted_email: str,
    next_url: str = "",
    created: bool = False,
) -> LoggedIn:
    """Log in, drop the pending identity, and use up the invitation that started this SSO
    login, if any (spec 2.1.6: "and of the program if an invitation started this")."""
    from orglogin.programs.invite import pending_invitation_id

    invitation_id = pending_invitation_id(request)  # read first: login() may flush
    pending.clear_identity(request.session)
    log_in(request, user)
    program = None
    if invitation_id is not None:
        program = redeem_invitation(
            request, invitation_id, user, connection=connection, asserted_email=asserted_email
        )
    return LoggedIn(
        user=user,
        redirect_to=redirect_target(request, next_url),
        created=created,
        program=program,
    )


def redeem_invitation(
    request: HttpRequest, invitation_id: int, user: Any, *, connection: Any, asserted_email: str
) -> Any:
    """The invitation's program, or None with a message saying why it couldn't be used.
    The login itself stands either way: the invitation only adds the program."""
    from orglogin.programs.invite import InvitationProblem, accept_invitation, forget_pending
    from orglogin.programs.models import Invitation

    forget_pending(request)
    try:
        return accept_invitation(
            invitation_id,
            user,
            organization_id=connection.organization_id,
            asserted_email=asserted_email,
            request=request,
        )
    except InvitationProblem as problem:
        text = error_text(problem.code, settings.PLATFORM_NAME)
        messages.warning(request, f"{text.title}. {text.text}", fail_silently=True)
    except Invitation.DoesNotExist:
        pass
    return None
