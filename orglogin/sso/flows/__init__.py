"""SSO flows: plain functions that views, the CLI and tests call alike.

Each takes the request (for its session and the audit log's IP) and ends in one outcome of
`orglogin.sso.flows.outcomes`. Protocols hand in an `AssertedIdentity`; flows never see XML
or tokens.
"""

from orglogin.sso.flows.jit_signup import SignupDetails, check_signup_allowed, jit_signup
from orglogin.sso.flows.outcomes import Failure, LoggedIn, NeedsChoice, Outcome, Screen
from orglogin.sso.flows.returning import handle_asserted_identity

__all__ = [
    "Failure",
    "LoggedIn",
    "NeedsChoice",
    "Outcome",
    "Screen",
    "SignupDetails",
    "check_signup_allowed",
    "handle_asserted_identity",
    "jit_signup",
]
