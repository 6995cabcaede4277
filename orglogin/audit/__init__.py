"""The audit log: `record(...)` writes one event and returns its reference code."""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

from orglogin.audit.events import Event

if TYPE_CHECKING:
    from django.http import HttpRequest

    from orglogin.audit.models import AuditEvent

__all__ = ["Event", "new_reference", "record"]

# Crockford-style alphabet: no 0/O or 1/I/L confusion when read out over the phone to support.
REFERENCE_ALPHABET = "23456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_reference() -> str:
    return "".join(secrets.choice(REFERENCE_ALPHABET) for _ in range(10))


def client_ip(request: HttpRequest | None) -> str | None:
    """The client address as the rate limits see it (ALLAUTH_TRUSTED_PROXY_COUNT decides how
    much of X-Forwarded-For to believe), so the audit log and the limits agree."""
    if request is None:
        return None
    from allauth.account.adapter import get_adapter

    try:
        return get_adapter(request).get_client_ip(request) or None
    except Exception:  # noqa: BLE001 - a malformed header must not lose the audit event
        return request.META.get("REMOTE_ADDR") or None


def record(
    event: Event | str,
    *,
    actor: Any = None,
    organization: Any = None,
    request: HttpRequest | None = None,
    outcome: str = "success",
    reference: str | None = None,
    **detail: Any,
) -> AuditEvent:
    """Write one audit event; `.reference` is the code to show the learner or support."""
    from orglogin.audit.models import AuditEvent

    if actor is not None and not getattr(actor, "is_authenticated", False):
        actor = None
    user_agent = request.META.get("HTTP_USER_AGENT", "")[:512] if request is not None else ""
    return AuditEvent.objects.create(
        reference=reference or new_reference(),
        event=str(event),
        outcome=outcome,
        actor=actor,
        actor_label=(getattr(actor, "email", "") or "") if actor is not None else "",
        organization=organization,
        ip_address=client_ip(request),
        user_agent=user_agent,
        detail={k: v for k, v in detail.items() if v is not None},
    )
