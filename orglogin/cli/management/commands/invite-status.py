"""`orglogin invite-status SLUG PROGRAM_SLUG`: where the program's invitation mail stands.

(The module name has a dash so that the command reads like the CLI's other multi-word
names; Django finds commands by file name, and nothing imports this module by name.)
"""

from __future__ import annotations

import json

from django.db.models import Count
from django.utils import timezone

from orglogin.cli.base import OrgloginCommand
from orglogin.cli.management.commands.invite import get_program, plural
from orglogin.programs.models import Invitation, Program

Delivery = Invitation.Delivery
# The order a mail goes through; NOT_SENT: issued with --no-mail (the link was printed).
DELIVERY_ORDER = ("queued", "sending", "retry", "sent", "failed", "not_sent")


def delivery_report(program: Program) -> dict:
    """Counts of the program's live (not revoked) invitations by delivery state, and the
    addresses whose mail failed for good or waits for a retry, with their last error."""
    live = Invitation.objects.filter(program=program).exclude(status=Invitation.Status.REVOKED)
    by_delivery = dict(live.values_list("delivery").annotate(n=Count("pk")).order_by())
    by_status = dict(live.values_list("status").annotate(n=Count("pk")).order_by())
    expired = live.filter(status=Invitation.Status.PENDING, expires_at__lte=timezone.now()).count()

    def problems(state: str) -> list[dict]:
        rows = live.filter(delivery=state).order_by("email", "pk")
        return [
            {"email": email, "attempts": attempts, "error": error}
            for email, attempts, error in rows.values_list("email", "send_attempts", "last_error")
        ]

    return {
        "organization": program.organization.slug,
        "program": program.slug,
        "invitations": sum(by_delivery.values()),
        "delivery": {state: by_delivery.get(state, 0) for state in DELIVERY_ORDER},
        "status": {
            "pending": by_status.get(Invitation.Status.PENDING, 0) - expired,
            "expired": expired,
            "used": by_status.get(Invitation.Status.USED, 0),
        },
        "revoked": Invitation.objects.filter(
            program=program, status=Invitation.Status.REVOKED
        ).count(),
        "failed": problems(Delivery.FAILED),
        "retry": problems(Delivery.RETRY),
    }


class Command(OrgloginCommand):
    help = (
        "Report a program's invitation mail: counts by delivery state (queued, sending, "
        "retry, sent, failed, not sent) and each address whose mail failed for good or waits "
        "for a retry, with its last error. Revoked (replaced) invitations are not counted."
    )
    atomic = False

    def add_arguments(self, parser) -> None:
        parser.add_argument("slug", metavar="SLUG", help="The organization.")
        parser.add_argument("program_slug", metavar="PROGRAM_SLUG", help="Its program.")
        parser.add_argument(
            "--json", action="store_true", dest="as_json", help="Machine-readable output."
        )

    def run(self, *, slug: str, program_slug: str, as_json: bool = False, **_) -> None:
        program = get_program(slug, program_slug)
        report = delivery_report(program)
        if as_json:
            self.stdout.write(json.dumps(report, indent=2))
            return
        out = self.stdout.write
        org = program.organization
        delivery = report["delivery"]
        out(
            f"{program.name} ({program.slug}) of {org.name} ({org.slug}): "
            f"{report['invitations']} invitation(s)"
        )
        out(
            "  mail: "
            + ", ".join(f"{state.replace('_', ' ')} {n}" for state, n in delivery.items())
        )
        status = report["status"]
        out(
            f"  links: pending {status['pending']}, used {status['used']}, "
            f"expired {status['expired']}; revoked (not counted) {report['revoked']}"
        )
        if report["failed"]:
            out("Failed for good (not retried any more; re-invite to try again):")
            for row in report["failed"]:
                tries = plural(row["attempts"], "attempt")
                out(f"  {row['email']}: {row['error']} ({tries})")
        if report["retry"]:
            out("Waiting to retry:")
            for row in report["retry"]:
                tries = plural(row["attempts"], "attempt")
                out(f"  {row['email']}: {row['error']} ({tries} so far)")
        waiting = delivery["queued"] + delivery["retry"] + delivery["sending"]
        if waiting:
            out(
                f"{waiting} still to deliver: a worker must be running (`orglogin db_worker`; "
                "make run starts one)"
            )
