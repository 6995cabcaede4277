"""The closed set of outcomes an SSO flow step can end in. Views map each to one response."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from orglogin.core.errors import ErrorCode


class Screen(StrEnum):
    """The screens a pending SSO login can stop at (spec 2.1.5, 2.1.6, 2.2)."""

    CHOOSE = "choose"  # I'm a new user / I'm an existing user
    EMAIL_IN_USE = "email_in_use"
    EXISTING_LOGIN = "existing_login"  # the existing account's email + password (2.2.3)
    LINK_MFA = "link_mfa"  # that account's second factor (2.2.3)
    LINK_CONFIRM = "link_confirm"  # a logged-in owner re-enters their password (2.2.1)


@dataclass(frozen=True)
class LoggedIn:
    """The learner is logged in (session rotated); go to `redirect_to` (same-site only)."""

    user: Any
    redirect_to: str
    created: bool = False
    program: Any = None  # joined through the invitation that started this login


@dataclass(frozen=True)
class NeedsChoice:
    """A verified but unlinked org identity waits in the session for the learner's choice."""

    screen: Screen
    organization: Any
    reference: str = ""


@dataclass(frozen=True)
class Challenge:
    """Ask the learner for (more) proof on `screen`; `message` says why the last answer was
    refused (the same generic text whatever was wrong). The pending identity stays."""

    screen: Screen
    organization: Any = None
    message: str = ""


@dataclass(frozen=True)
class Failure:
    """Stop here and show `code`'s text with `reference` (the audit event holds the cause)."""

    code: ErrorCode
    reference: str
    organization: Any = None


Outcome = LoggedIn | NeedsChoice | Challenge | Failure
