from urllib.parse import urlencode

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse

from orglogin.core.errors import error_text
from orglogin.programs.invite import InvitationProblem, find_invitation, remember_pending


def invitation_landing(request: HttpRequest, token: str) -> HttpResponse:
    """The invitation link's page (spec 2.2.1–2.2.2), the same from a mail or an LMS."""
    try:
        invitation = find_invitation(token)
    except InvitationProblem as problem:
        text = error_text(problem.code, settings.PLATFORM_NAME)
        return render(
            request, "programs/invitation_problem.html", {"error": text}, status=text.status
        )
    remember_pending(request, invitation)
    organization = invitation.program.organization
    sso_url = reverse("sso:discover") + "?" + urlencode({"org": organization.slug})
    # A logged-in visitor may link the org account to this account instead of logging out
    # (spec 2.2.1): a fresh SSO login, then this account's password again.
    link_connections = (
        list(organization.connections.filter(enabled=True).order_by("name"))
        if request.user.is_authenticated
        else []
    )
    return render(
        request,
        "programs/invitation.html",
        {
            "invitation": invitation,
            "program": invitation.program,
            "organization": organization,
            "sso_url": sso_url,
            "here": request.path,
            "link_connections": link_connections,
            "has_password": request.user.is_authenticated and request.user.has_usable_password(),
        },
    )
