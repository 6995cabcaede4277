"""Every learner-facing error: a stable code, one human text, an HTTP status.

The learner sees the text and a reference code; the technical cause goes to the audit log
(and to the org admin's connection diagnostics), never to the learner (spec 2.6).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class ErrorCode(StrEnum):
    ORG_NOT_FOUND = "org_not_found"
    SSO_NOT_CONFIGURED = "sso_not_configured"
    SSO_RESPONSE_INVALID = "sso_response_invalid"
    SSO_SIGNATURE = "sso_signature"
    SSO_CLOCK_SKEW = "sso_clock_skew"
    SSO_REPLAY = "sso_replay"
    SSO_SESSION_MISMATCH = "sso_session_mismatch"
    SSO_UNSOLICITED = "sso_unsolicited"
    SSO_IDP_ERROR = "sso_idp_error"
    SSO_MISSING_ATTRIBUTES = "sso_missing_attributes"
    SSO_PENDING_EXPIRED = "sso_pending_expired"
    SSO_REAUTH_REQUIRED = "sso_reauth_required"
    SSO_JIT_DISABLED = "sso_jit_disabled"
    SSO_IDENTITY_TAKEN = "sso_identity_taken"
    SSO_ACCOUNT_HAS_LINK = "sso_account_has_link"
    LINK_PASSWORD_REQUIRED = "link_password_required"
    ACCOUNT_CONFLICT = "account_conflict"
    ACCOUNT_INACTIVE = "account_inactive"
    INVITATION_INVALID = "invitation_invalid"
    INVITATION_EXPIRED = "invitation_expired"
    INVITATION_USED = "invitation_used"
    INVITATION_REVOKED = "invitation_revoked"


@dataclass(frozen=True)
class ErrorText:
    title: str
    text: str
    status: int = 400


# {platform} is replaced by PLATFORM_NAME. ACCOUNT_CONFLICT's text is quoted by spec 2.4.2.
ERRORS: dict[ErrorCode, ErrorText] = {
    ErrorCode.ORG_NOT_FOUND: ErrorText(
        "We couldn't find your organization",
        "Check the company URL or email you typed. It is usually what comes after the @ in "
        "your work email address.",
        404,
    ),
    ErrorCode.SSO_NOT_CONFIGURED: ErrorText(
        "Single sign-on is not set up",
        "Your organization has not set up single sign-on yet. Log in with your email and "
        "password, or ask your organization's administrator.",
        404,
    ),
    ErrorCode.SSO_RESPONSE_INVALID: ErrorText(
        "We couldn't log you in with your organization",
        "Your organization's sign-in service sent an answer we could not accept. Try again; "
        "if it keeps happening, give the reference code below to your IT help desk.",
    ),
    ErrorCode.SSO_SIGNATURE: ErrorText(
        "We couldn't verify your organization's sign-in",
        "The answer from your organization's sign-in service was not signed the way your "
        "organization set up. Give the reference code below to your IT help desk.",
    ),
    ErrorCode.SSO_CLOCK_SKEW: ErrorText(
        "Your sign-in has expired",
        "The answer from your organization's sign-in service was too old or came too early. "
        "Start again; if it keeps happening, the clocks of your organization's sign-in "
        "service may be wrong.",
    ),
    ErrorCode.SSO_REPLAY: ErrorText(
        "This sign-in was already used",
        "Each sign-in can be used only once. Start again from Log in with your organization.",
    ),
    ErrorCode.SSO_SESSION_MISMATCH: ErrorText(
        "Your sign-in didn't match this browser",
        "Start again from Log in with your organization in this browser. If you use several "
        "tabs, finish one sign-in at a time. Clearing cookies can help.",
    ),
    ErrorCode.SSO_UNSOLICITED: ErrorText(
        "Start your sign-in here",
        "Your organization only allows signing in that starts on this site. Use Log in with "
        "your organization.",
    ),
    ErrorCode.SSO_IDP_ERROR: ErrorText(
        "Your organization's sign-in service reported a problem",
        "Your organization's sign-in service could not sign you in. Check your company email "
        "and password, or ask your IT help desk.",
    ),
    ErrorCode.SSO_MISSING_ATTRIBUTES: ErrorText(
        "Your organization didn't send your details",
        "Your organization's sign-in service did not send your email address. Ask your IT "
        "help desk to release it to {platform}.",
    ),
    ErrorCode.SSO_PENDING_EXPIRED: ErrorText(
        "Your sign-in took too long",
        "For your security, a sign-in must be finished within a few minutes. Start again "
        "from Log in with your organization.",
    ),
    ErrorCode.SSO_REAUTH_REQUIRED: ErrorText(
        "Your organization didn't ask for your password again",
        "To connect your organization account, your organization's sign-in service must ask "
        "you to sign in again, and it used an earlier sign-in instead. Start again and sign in "
        "at your organization when asked; if it keeps happening, give the reference code below "
        "to your IT help desk.",
    ),
    ErrorCode.SSO_JIT_DISABLED: ErrorText(
        "Your organization creates accounts for you",
        "Your organization does not allow creating an account while logging in. Ask your "
        "organization's administrator to invite you.",
        403,
    ),
    ErrorCode.SSO_IDENTITY_TAKEN: ErrorText(
        "Your organization account is already connected",
        "This organization account is already connected to another {platform} account. Log "
        "in with that account, or contact {platform} Support.",
        409,
    ),
    ErrorCode.SSO_ACCOUNT_HAS_LINK: ErrorText(
        "This account is already connected to your organization",
        "This {platform} account is already connected to another account of your "
        "organization. Log in with that one, or delink it in Account Settings first.",
        409,
    ),
    ErrorCode.LINK_PASSWORD_REQUIRED: ErrorText(
        "Set a password first",
        "Linking your organization account asks for this {platform} account's password, and "
        "it has none yet. Set a password in Account Settings, then open the invitation again.",
        409,
    ),
    ErrorCode.ACCOUNT_CONFLICT: ErrorText(
        "There's a problem with your account",
        "Sorry there's a problem with your account. Please contact {platform} Support to "
        "resolve this issue.",
        409,
    ),
    ErrorCode.ACCOUNT_INACTIVE: ErrorText(
        "This account is not active",
        "This account was removed or deactivated. Contact {platform} Support.",
        403,
    ),
    ErrorCode.INVITATION_INVALID: ErrorText(
        "This invitation link doesn't work",
        "Check that you copied the whole link, or ask your organization for a new invitation.",
        404,
    ),
    ErrorCode.INVITATION_EXPIRED: ErrorText(
        "This invitation has expired",
        "Ask your organization's administrator to send you a new invitation.",
        410,
    ),
    ErrorCode.INVITATION_USED: ErrorText(
        "This invitation was already used",
        "Log in with your organization to reach your program.",
        410,
    ),
    ErrorCode.INVITATION_REVOKED: ErrorText(
        "This invitation was withdrawn",
        "Ask your organization's administrator if you should have received a new one.",
        410,
    ),
}


def error_text(code: ErrorCode, platform_name: str) -> ErrorText:
    entry = ERRORS[code]
    return ErrorText(
        entry.title.replace("{platform}", platform_name),
        entry.text.replace("{platform}", platform_name),
        entry.status,
    )
