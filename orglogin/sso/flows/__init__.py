"""SSO flows: plain functions that views, the CLI and tests call alike.

Each takes the request (for its session and the audit log's IP) and ends in one outcome of
`orglogin.sso.flows.outcomes`. Protocols hand in an `AssertedIdentity`; flows never see XML
or tokens.
"""

from orglogin.sso.flows.jit_signup import SignupDetails, check_signup_allowed, jit_signup
from orglogin.sso.flows.link_existing import (
    awaiting_second_factor,
    confirm_current_account,
    verify_existing_account,
    verify_second_factor,
)
from orglogin.sso.flows.outcomes import (
    Challenge,
    Failure,
    LoggedIn,
    NeedsChoice,
    Outcome,
    Screen,
)
from orglogin.sso.flows.returning import handle_asserted_identity

__all__ = [
    "Challenge",
    "Failure",
    "LoggedIn",
    "NeedsChoice",
    "Outcome",
    "Screen",
    "SignupDetails",
    "awaiting_second_factor",
    "check_signup_allowed",
    "confirm_current_account",
    "handle_asserted_identity",
    "jit_signup",
    "verify_existing_account",
    "verify_second_factor",
]
