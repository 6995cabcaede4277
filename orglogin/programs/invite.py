"""Invitations: issue, send in the background, look up, accept, revoke.

Rules, enforced here:
- A link is single-use, expires (14 days by default) and can be revoked; re-inviting the same
  address to the same program revokes its earlier pending invitation, so one link is live.
- An invitation is a capability for *its* program within *its* org: it is accepted only by an
  account that has just proven an org identity of that org (SSO). The address it was sent to
  may differ from the one the IdP asserts (people have aliases, see the help text on using the
  same alias): that is allowed and recorded in the audit log with both addresses.
- Accepting never links accounts by itself; linking is the SSO flows' business (spec 6).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import transaction
from django.db.models import Case, F, Value, When
from django.db.models.functions import Lower
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from orglogin.audit import Event, record
from orglogin.core.errors import ErrorCode
from orglogin.organizations.models import Membership
from orglogin.programs import tokens
from orglogin.programs.models import Invitation, Program, ProgramMembership

DEFAULT_LIFETIME = timedelta(days=14)
INSERT_CHUNK = 1000
# One task sends this many invitations over one SMTP connection.
SEND_BATCH = 100
PENDING_SESSION_KEY = "programs.pending_invitation"


class InvitationInputError(ValueError):
    """Bad operator input (an address that isn't one): nothing was written."""


class InvitationProblem(Exception):
    """The link can't be used; `code` picks the learner's page."""

    def __init__(self, code: ErrorCode, invitation: Invitation | None = None) -> None:
        super().__init__(code)
        self.code = code
        self.invitation = invitation


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    link: str


def normalize_emails(lines: Iterable[str]) -> list[str]:
    """Validated, de-duplicated (case-insensitively) addresses, in input order.

    Raises InvitationInputError naming the first bad entry (1-based position).
    """
    seen: set[str] = set()
    emails: list[str] = []
    for position, raw in enumerate(lines, start=1):
        email = raw.strip()
        try:
            validate_email(email)
        except ValidationError:
            raise InvitationInputError(
                f"entry {position}: {email!r} is not a valid email address"
            ) from None
        local, _, domain = email.rpartition("@")
        email = f"{local}@{domain.lower()}"
        if email.lower() not in seen:
            seen.add(email.lower())
            emails.append(email)
    return emails


def invitation_link(token: str) -> str:
    return settings.BASE_URL + reverse("programs:invitation", kwargs={"token": token})


def link_for(invitation: Invitation) -> str:
    return invitation_link(tokens.token_for(invitation.token_salt))


def _chunks(items: list, size: int) -> Iterator[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def create_invitations(
    program: Program,
    emails: Iterable[str],
    *,
    actor=None,
    send: bool = True,
    lifetime: timedelta = DEFAULT_LIFETIME,
    request: HttpRequest | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[IssuedInvitation]:
    """Issue one invitation per address in one transaction; mail goes out in the background.

    `send=False` issues links without mail (for pasting into an LMS). The mail tasks are
    enqueued in the same transaction, so either everything is issued and queued or nothing.
    """
    from orglogin.programs.tasks import send_invitations

    addresses = normalize_emails(emails)
    expires_at = timezone.now() + lifetime
    issued: list[IssuedInvitation] = []
    delivery = Invitation.Delivery.QUEUED if send else Invitation.Delivery.NOT_SENT
    with transaction.atomic():
        for chunk in _chunks(addresses, INSERT_CHUNK):
            Invitation.objects.annotate(email_lower=Lower("email")).filter(
                program=program,
                email_lower__in=[email.lower() for email in chunk],
                status=Invitation.Status.PENDING,
            ).update(
                status=Invitation.Status.REVOKED,
                revoked_at=timezone.now(),
                delivery=Case(
                    When(
                        delivery__in=[Invitation.Delivery.QUEUED, Invitation.Delivery.RETRY],
                        then=Value(Invitation.Delivery.NOT_SENT),
                    ),
                    default=F("delivery"),
                ),
            )
            rows = []
            links = []
            for email in chunk:
                salt = tokens.new_salt()
                token = tokens.token_for(salt)
                rows.append(
                    Invitation(
                        program=program,
                        email=email,
                        token_salt=salt,
                        token_hash=tokens.token_hash(token),
                        expires_at=expires_at,
                        created_by=actor if getattr(actor, "is_authenticated", False) else None,
                        delivery=delivery,
                    )
                )
                links.append(invitation_link(token))
            created = Invitation.objects.bulk_create(rows)
            issued.extend(
                IssuedInvitation(inv, link) for inv, link in zip(created, links, strict=True)
            )
            if progress:
                progress(len(issued), len(addresses))
        if send:
            ids = [item.invitation.pk for item in issued]
            for batch in _chunks(ids, SEND_BATCH):
                send_invitations.enqueue(batch)
        record(
            Event.INVITATION_SENT,
            actor=actor,
            organization=program.organization,
            request=request,
            program=program.slug,
            count=len(issued),
            mailed=send,
        )
    return issued


def find_invitation(token: str) -> Invitation:
    """The usable invitation behind a link, or InvitationProblem saying why not."""
    invitation = (
        Invitation.objects.select_related("program__organization")
        .filter(token_hash=tokens.token_hash(token))
        .first()
    )
    if invitation is None:
        raise InvitationProblem(ErrorCode.INVITATION_INVALID)
    check_usable(invitation)
    return invitation


def check_usable(invitation: Invitation) -> None:
    if invitation.status == Invitation.Status.USED:
        raise InvitationProblem(ErrorCode.INVITATION_USED, invitation)
    if invitation.status == Invitation.Status.REVOKED:
        raise InvitationProblem(ErrorCode.INVITATION_REVOKED, invitation)
    if invitation.expires_at <= timezone.now():
        raise InvitationProblem(ErrorCode.INVITATION_EXPIRED, invitation)


def revoke_invitation(invitation: Invitation, *, actor=None, request=None) -> None:
    with transaction.atomic():
        updated = Invitation.objects.filter(
            pk=invitation.pk, status=Invitation.Status.PENDING
        ).update(status=Invitation.Status.REVOKED, revoked_at=timezone.now())
        if updated:
            # Its mail, if still waiting, will not be sent (the worker skips revoked links).
            Invitation.objects.filter(
                pk=invitation.pk,
                delivery__in=[Invitation.Delivery.QUEUED, Invitation.Delivery.RETRY],
            ).update(delivery=Invitation.Delivery.NOT_SENT)
            record(
                Event.INVITATION_REVOKED,
                actor=actor,
                organization=invitation.program.organization,
                request=request,
                invitation=invitation.pk,
            )


def accept_invitation(
    invitation_id: int, user, *, organization_id: int, asserted_email: str, request=None
) -> Program:
    """Use up the invitation for `user`, who has just proven an identity of `organization_id`.

    Single use under concurrency: the row is locked and re-checked inside the transaction.
    """
    with transaction.atomic():
        invitation = (
            Invitation.objects.select_for_update()
            .select_related("program__organization")
            .get(pk=invitation_id)
        )
        check_usable(invitation)
        program = invitation.program
        if program.organization_id != organization_id:
            # A link of org A can't be redeemed with an identity of org B.
            raise InvitationProblem(ErrorCode.INVITATION_INVALID, invitation)
        invitation.status = Invitation.Status.USED
        invitation.used_at = timezone.now()
        invitation.used_by = user
        invitation.save(update_fields=["status", "used_at", "used_by"])
        ProgramMembership.objects.get_or_create(program=program, user=user)
        Membership.objects.get_or_create(organization=program.organization, user=user)
        record(
            Event.INVITATION_USED,
            actor=user,
            organization=program.organization,
            request=request,
            invitation=invitation.pk,
            program=program.slug,
            invited_email=invitation.email,
            asserted_email=asserted_email,
            email_mismatch=invitation.email.lower() != asserted_email.lower(),
        )
    return program


def remember_pending(request: HttpRequest, invitation: Invitation) -> None:
    """Carry the invitation through the SSO round trip (session only: the id, no token)."""
    request.session[PENDING_SESSION_KEY] = invitation.pk


def pending_invitation_id(request: HttpRequest) -> int | None:
    value = request.session.get(PENDING_SESSION_KEY)
    return value if isinstance(value, int) else None


def forget_pending(request: HttpRequest) -> None:
    request.session.pop(PENDING_SESSION_KEY, None)
