from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from orglogin.core.errors import ErrorCode

# Section of the troubleshooting page that helps with each error (anchors on that page).
HELP_ANCHORS: dict[ErrorCode, str] = {
    ErrorCode.ORG_NOT_FOUND: "unknown-company",
    ErrorCode.SSO_NOT_CONFIGURED: "unknown-company",
    ErrorCode.SSO_RESPONSE_INVALID: "idp-errors",
    ErrorCode.SSO_SIGNATURE: "idp-errors",
    ErrorCode.SSO_IDP_ERROR: "idp-errors",
    ErrorCode.SSO_MISSING_ATTRIBUTES: "idp-errors",
    ErrorCode.SSO_UNSOLICITED: "idp-errors",
    ErrorCode.SSO_CLOCK_SKEW: "clock-skew",
    ErrorCode.SSO_REPLAY: "cookies",
    ErrorCode.SSO_SESSION_MISMATCH: "cookies",
    ErrorCode.SSO_PENDING_EXPIRED: "cookies",
    ErrorCode.SSO_REAUTH_REQUIRED: "idp-errors",
    ErrorCode.SSO_JIT_DISABLED: "invitation",
    ErrorCode.SSO_IDENTITY_TAKEN: "problem-with-account",
    ErrorCode.SSO_ACCOUNT_HAS_LINK: "delink",
    ErrorCode.LINK_PASSWORD_REQUIRED: "delink",
    ErrorCode.ACCOUNT_CONFLICT: "problem-with-account",
    ErrorCode.ACCOUNT_INACTIVE: "account-removed",
    ErrorCode.INVITATION_INVALID: "invitation",
    ErrorCode.INVITATION_EXPIRED: "invitation",
    ErrorCode.INVITATION_USED: "invitation",
    ErrorCode.INVITATION_REVOKED: "invitation",
}


def help_anchor(code: ErrorCode | str) -> str:
    try:
        return HELP_ANCHORS.get(ErrorCode(code), "support")
    except ValueError:
        return "support"


def home(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("dashboard")
    return render(request, "core/home.html")


def troubleshooting(request: HttpRequest) -> HttpResponse:
    """Public help (spec 2.6): no login needed, since its readers are the ones who can't."""
    return render(request, "core/troubleshooting.html")
