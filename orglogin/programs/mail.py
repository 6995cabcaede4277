from __future__ import annotations

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.template.loader import render_to_string

from orglogin.programs.models import Invitation


def invitation_message(invitation: Invitation, *, connection=None) -> EmailMultiAlternatives:
    """The invitation mail: plain text and HTML, naming the org and the program."""
    from orglogin.programs.invite import link_for

    program = invitation.program
    context = {
        "invitation": invitation,
        "program": program,
        "organization": program.organization,
        "link": link_for(invitation),
        "PLATFORM_NAME": settings.PLATFORM_NAME,
    }
    organization = program.organization
    subject = f"{organization.name} invites you to {program.name} on {settings.PLATFORM_NAME}"
    message = EmailMultiAlternatives(
        subject=subject,
        body=render_to_string("programs/email/invitation.txt", context),
        to=[invitation.email],
        connection=connection,
    )
    html = render_to_string("programs/email/invitation.html", context)
    message.attach_alternative(html, "text/html")
    return message
