"""Names of audit events: one place, so the admin filter and the tests agree."""

from enum import StrEnum


class Event(StrEnum):
    SIGNUP = "account.signup"
    LOGIN = "account.login"
    LOGIN_FAILED = "account.login_failed"
    LOGOUT = "account.logout"
    EMAIL_CHANGE_REQUESTED = "account.email_change_requested"
    EMAIL_CHANGED = "account.email_changed"
    EMAIL_CONFIRMED = "account.email_confirmed"
    # A confirmation link for an address another account came to hold meanwhile: refused.
    EMAIL_CHANGE_CONFLICT = "account.email_change_conflict"
    PASSWORD_CHANGED = "account.password_changed"
    PASSWORD_SET = "account.password_set"
    PASSWORD_RESET = "account.password_reset"
    MFA_ENABLED = "account.mfa_enabled"
    MFA_DISABLED = "account.mfa_disabled"
    SOCIAL_LINKED = "account.social_linked"
    SOCIAL_DELINKED = "account.social_delinked"
    DELINK_REFUSED = "account.delink_refused"
    SSO_LOGIN = "sso.login"
    SSO_FAILED = "sso.failed"
    SSO_JIT_SIGNUP = "sso.jit_signup"
    SSO_LINKED = "sso.linked"
    SSO_DELINKED = "sso.delinked"
    SSO_CONFLICT = "sso.conflict"
    SSO_CLAIM_DROPPED = "sso.claim_dropped"
    ORG_CHANGED = "org.changed"
    CONNECTION_CHANGED = "sso.connection_changed"
    # A write through the Django admin to something that is neither an org's setup nor a
    # connection (accounts and their flags, certificates); those use ORG_CHANGED and
    # CONNECTION_CHANGED with `via: admin`, an operator's delink SSO_DELINKED.
    ADMIN_CHANGED = "admin.changed"
    INVITATION_SENT = "program.invitation_sent"
    INVITATION_USED = "program.invitation_used"
    INVITATION_REVOKED = "program.invitation_revoked"
    INVITATION_DELIVERY_FAILED = "program.invitation_delivery_failed"
