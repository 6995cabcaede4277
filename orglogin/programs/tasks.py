"""Invitation mail, sent by the task queue (Django's Tasks API, database backend).

Each address is claimed with a conditional UPDATE before it is sent, so several workers (or a
task that runs twice) never mail the same invitation twice. A failed send is retried with
backoff and, after the last attempt, marked FAILED with its error and written to the audit
log — never silently dropped.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.core import mail
from django.db.models import F
from django.utils import timezone
from django_tasks import task

from orglogin.audit import Event, record
from orglogin.programs.mail import invitation_message
from orglogin.programs.models import Invitation

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 5
RETRY_DELAYS = (
    timedelta(seconds=30),
    timedelta(minutes=2),
    timedelta(minutes=10),
    timedelta(minutes=30),
)
CLAIMABLE = (Invitation.Delivery.QUEUED, Invitation.Delivery.RETRY)


def _claim(invitation_ids: list[int]) -> list[Invitation]:
    claimed = []
    for pk in invitation_ids:
        # A link revoked (or replaced by a re-invite) while its mail waited is never sent.
        won = Invitation.objects.filter(
            pk=pk, delivery__in=CLAIMABLE, status=Invitation.Status.PENDING
        ).update(
            delivery=Invitation.Delivery.SENDING, send_attempts=F("send_attempts") + 1
        )
        if won:
            claimed.append(pk)
    return list(Invitation.objects.filter(pk__in=claimed).select_related("program__organization"))


@task()
def send_invitations(invitation_ids: list[int]) -> dict[str, int]:
    invitations = _claim(invitation_ids)
    sent = failed = 0
    retry: list[int] = []
    if not invitations:
        return {"sent": 0, "retry": 0, "failed": 0}
    try:
        connection = mail.get_connection()
        connection.open()
    except Exception as exc:  # noqa: BLE001 - any transport failure means "try again later"
        connection = None
        open_error = f"{type(exc).__name__}: {exc}"
    else:
        open_error = ""
    try:
        for invitation in invitations:
            error = open_error
            if connection is not None:
                try:
                    invitation_message(invitation, connection=connection).send()
                except Exception as exc:  # noqa: BLE001
                    error = f"{type(exc).__name__}: {exc}"
            if not error:
                Invitation.objects.filter(pk=invitation.pk).update(
                    delivery=Invitation.Delivery.SENT, sent_at=timezone.now(), last_error=""
                )
                sent += 1
            elif invitation.send_attempts >= MAX_ATTEMPTS:
                Invitation.objects.filter(pk=invitation.pk).update(
                    delivery=Invitation.Delivery.FAILED, last_error=error[:500]
                )
                record(
                    Event.INVITATION_DELIVERY_FAILED,
                    outcome="failure",
                    organization=invitation.program.organization,
                    invitation=invitation.pk,
                    email=invitation.email,
                    error=error[:500],
                    attempts=invitation.send_attempts,
                )
                log.error(
                    "invitation %s to %s failed for good: %s",
                    invitation.pk,
                    invitation.email,
                    error,
                )
                failed += 1
            else:
                Invitation.objects.filter(pk=invitation.pk).update(
                    delivery=Invitation.Delivery.RETRY, last_error=error[:500]
                )
                retry.append(invitation.pk)
    finally:
        if connection is not None:
            connection.close()
    if retry:
        attempts = max(inv.send_attempts for inv in invitations if inv.pk in retry)
        delay = RETRY_DELAYS[min(attempts, len(RETRY_DELAYS)) - 1]
        send_invitations.using(run_after=timezone.now() + delay).enqueue(retry)
    return {"sent": sent, "retry": len(retry), "failed": failed}
