"""Confirming an email change (spec 2.5) when another account took the address meanwhile.

The settings form refuses an address some account uses, but between the request and the
click on the link another account can come to hold it (sign-up, SSO, an operator). allauth
only looks for another *verified* EmailAddress with the exact same spelling; the user
table's case-insensitive unique email then raised an IntegrityError (a 500) half-way
through. Here the same question is asked the way the database asks it, before any write.
"""

from __future__ import annotations

from allauth.account.models import EmailAddress
from django.contrib.auth import get_user_model
from django.http import HttpRequest

from orglogin.audit import Event, record
from orglogin.audit.models import AuditEvent


def holders_of(email: str, *, besides: int) -> list[int]:
    """Ids of the other accounts that hold `email`: as their login email (any case, the
    unique constraint's rule) or as a verified address. Another account's unconfirmed
    *pending* change does not hold it: whoever confirms first gets the address."""
    users = get_user_model().objects.filter(email__iexact=email).exclude(pk=besides)
    verified = EmailAddress.objects.filter(email__iexact=email, verified=True).exclude(
        user_id=besides
    )
    ids = set(users.values_list("pk", flat=True))
    ids.update(verified.values_list("user_id", flat=True))
    return sorted(ids)


def refuse_taken(
    request: HttpRequest, address: EmailAddress, holders: list[int], *, race: bool = False
) -> AuditEvent:
    """Audit the refused change; `held_by` is for support only, never shown to the learner."""
    return record(
        Event.EMAIL_CHANGE_CONFLICT,
        actor=address.user,
        request=request,
        outcome="failure",
        reason="email_taken",
        to=address.email,
        held_by=holders,
        race=race or None,
    )
