"""Pending SSO state: small, expiring, single use, and opaque on the wire.

Four kinds, each keyed by a fresh random value:

* `PendingLogin` (session): an SP-initiated login on its way to the IdP. Its key is the
  RelayState, so the IdP sees only a random string; the session holds the connection, the
  AuthnRequest ID (for InResponseTo) and where to go afterwards.
* `PendingOidc` (session): an OIDC authorization on its way to the provider, keyed by its
  `state`, holding the nonce and PKCE verifier the callback must match.
* ACS hand-off (cache): the session cookie is SameSite=Lax, so the IdP's cross-site POST to
  the ACS arrives without it. The ACS parks the raw POST under a fresh key for two minutes
  and 303-redirects to a same-site GET that carries only that key; the browser sends the
  cookie there. The parked response is still unverified: only the protocol layer judges it.
* `PendingIdentity` (session): a verified org identity that is not linked yet, waiting for
  the learner's choice (new user / existing user). Expires after ten minutes, counted from
  the SSO login: the later steps (password, second factor) never extend it.

A pending login may carry an `intent`: `{"link_to": <user id>}` when a logged-in learner
asked to link their org account to the account they are logged in with (spec 2.2.1). It
travels with the login, never on the wire, so the IdP's answer can't choose it.

A pending login may be `fresh`: it asked the IdP to authenticate again (ForceAuthn) and the
answer must prove it did (an AuthnInstant no earlier than the pending login's `created_at`).
Entries written before the flag existed read as not fresh; the caller also treats a link
intent as fresh.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from django.core.cache import cache

from orglogin.sso.identity import AssertedIdentity

PENDING_LOGIN_MAX_AGE = 5 * 60
PENDING_IDENTITY_MAX_AGE = 10 * 60
ACS_HANDOFF_TTL = 2 * 60
MAX_PENDING_LOGINS = 5  # several tabs may be on their way to the IdP at once

_LOGINS_KEY = "orglogin.sso.pending_logins"
_OIDC_KEY = "orglogin.sso.pending_oidc"
_IDENTITY_KEY = "orglogin.sso.pending_identity"
LINK_TO = "link_to"  # intent / extra key: the id of the account a link was asked for
_HANDOFF_PREFIX = "orglogin:sso:acs:"


def new_key() -> str:
    return secrets.token_urlsafe(32)


# --- SP-initiated login, keyed by RelayState ------------------------------------------------


@dataclass(frozen=True)
class PendingLogin:
    key: str
    connection_id: int
    request_id: str
    created_at: float
    next_url: str = ""
    intent: dict[str, Any] = field(default_factory=dict)
    fresh: bool = False  # ForceAuthn was asked: the answer must be a login after created_at

    @property
    def expired(self) -> bool:
        return time.time() - self.created_at > PENDING_LOGIN_MAX_AGE


def remember_login(
    session,
    *,
    key: str,
    connection_id: int,
    request_id: str,
    next_url: str = "",
    intent: dict[str, Any] | None = None,
    fresh: bool = False,
) -> PendingLogin:
    """Keep an SP-initiated login under its RelayState `key` (from `new_key()`)."""
    now = time.time()
    logins: dict[str, dict[str, Any]] = {
        k: v
        for k, v in (session.get(_LOGINS_KEY) or {}).items()
        if now - v.get("created_at", 0) <= PENDING_LOGIN_MAX_AGE
    }
    while len(logins) >= MAX_PENDING_LOGINS:
        oldest = min(logins, key=lambda k: logins[k].get("created_at", 0))
        del logins[oldest]
    logins[key] = {
        "connection_id": connection_id,
        "request_id": request_id,
        "created_at": now,
        "next_url": next_url,
        "intent": dict(intent or {}),
        "fresh": bool(fresh),
    }
    session[_LOGINS_KEY] = logins
    return PendingLogin(
        key, connection_id, request_id, now, next_url, dict(intent or {}), bool(fresh)
    )


def pop_login(session, key: str | None) -> PendingLogin | None:
    """The pending login for this RelayState, removed from the session (single use).
    Expired entries are returned too (`.expired`), so the caller can say why it failed."""
    if not key:
        return None
    logins = dict(session.get(_LOGINS_KEY) or {})
    entry = logins.pop(key, None)
    if entry is None:
        return None
    session[_LOGINS_KEY] = logins
    return PendingLogin(
        key=key,
        connection_id=int(entry["connection_id"]),
        request_id=str(entry.get("request_id") or ""),
        created_at=float(entry["created_at"]),
        next_url=str(entry.get("next_url") or ""),
        intent=dict(entry.get("intent") or {}),
        fresh=entry.get("fresh") is True,
    )


# --- OIDC authorization, keyed by `state` -----------------------------------------------------


@dataclass(frozen=True)
class PendingOidc:
    connection_id: int
    authorization: dict[str, Any]  # oidc.PendingAuthorization.to_dict(); it checks its age
    next_url: str = ""
    intent: dict[str, Any] = field(default_factory=dict)


def remember_oidc(
    session,
    *,
    state: str,
    connection_id: int,
    authorization: dict[str, Any],
    next_url: str = "",
    intent: dict[str, Any] | None = None,
) -> None:
    entries: dict[str, dict[str, Any]] = dict(session.get(_OIDC_KEY) or {})
    while len(entries) >= MAX_PENDING_LOGINS:
        del entries[next(iter(entries))]  # oldest first (dicts keep insertion order)
    entries[state] = {
        "connection_id": connection_id,
        "authorization": authorization,
        "next_url": next_url,
        "intent": dict(intent or {}),
    }
    session[_OIDC_KEY] = entries


def pop_oidc(session, state: str | None) -> PendingOidc | None:
    """Single use: removed on first lookup, so a replayed callback finds nothing."""
    if not state:
        return None
    entries = dict(session.get(_OIDC_KEY) or {})
    entry = entries.pop(state, None)
    if entry is None:
        return None
    session[_OIDC_KEY] = entries
    return PendingOidc(
        connection_id=int(entry["connection_id"]),
        authorization=dict(entry["authorization"]),
        next_url=str(entry.get("next_url") or ""),
        intent=dict(entry.get("intent") or {}),
    )


# --- ACS hand-off across the SameSite=Lax boundary -----------------------------------------


@dataclass(frozen=True)
class ParkedResponse:
    """A raw, *unverified* SAML POST, parked between the ACS POST and its GET continuation."""

    connection_id: int
    unverified_saml_response: str
    relay_state: str


def park_acs_post(*, connection_id: int, saml_response: str, relay_state: str) -> str:
    key = new_key()
    cache.set(
        _HANDOFF_PREFIX + key,
        {
            "connection_id": connection_id,
            "saml_response": saml_response,
            "relay_state": relay_state,
        },
        ACS_HANDOFF_TTL,
    )
    return key


def take_acs_post(key: str | None) -> ParkedResponse | None:
    """Single use: of two concurrent takers only the one whose delete succeeds gets it."""
    if not key or len(key) > 100:
        return None
    data = cache.get(_HANDOFF_PREFIX + key)
    if data is None or not cache.delete(_HANDOFF_PREFIX + key):
        return None
    return ParkedResponse(
        connection_id=int(data["connection_id"]),
        unverified_saml_response=str(data["saml_response"]),
        relay_state=str(data["relay_state"]),
    )


# --- A verified identity waiting for the learner's choice -----------------------------------


@dataclass(frozen=True)
class PendingIdentity:
    identity: AssertedIdentity
    created_at: float
    next_url: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def expired(self) -> bool:
        return time.time() - self.created_at > PENDING_IDENTITY_MAX_AGE


def _identity_to_dict(identity: AssertedIdentity) -> dict[str, Any]:
    data = asdict(identity)
    data["attributes"] = {k: list(v) for k, v in dict(identity.attributes).items()}
    return data


def _identity_from_dict(data: dict[str, Any]) -> AssertedIdentity:
    return AssertedIdentity(
        connection_id=int(data["connection_id"]),
        subject=str(data["subject"]),
        email=str(data.get("email") or ""),
        email_verified=bool(data.get("email_verified")),
        given_name=str(data.get("given_name") or ""),
        family_name=str(data.get("family_name") or ""),
        display_name=str(data.get("display_name") or ""),
        attributes={k: tuple(v) for k, v in (data.get("attributes") or {}).items()},
    )


def stash_identity(
    session, identity: AssertedIdentity, *, next_url: str = "", extra: dict | None = None
) -> PendingIdentity:
    """Keep a verified identity for the next step. Replaces any earlier one: one at a time."""
    pending = PendingIdentity(
        identity=identity, created_at=time.time(), next_url=next_url, extra=dict(extra or {})
    )
    session[_IDENTITY_KEY] = {
        "identity": _identity_to_dict(identity),
        "created_at": pending.created_at,
        "next_url": next_url,
        "extra": pending.extra,
    }
    return pending


def peek_identity(session) -> PendingIdentity | None:
    """The stashed identity if it is still fresh; an expired one is dropped."""
    data = session.get(_IDENTITY_KEY)
    if not data:
        return None
    try:
        pending = PendingIdentity(
            identity=_identity_from_dict(data["identity"]),
            created_at=float(data["created_at"]),
            next_url=str(data.get("next_url") or ""),
            extra=dict(data.get("extra") or {}),
        )
    except (KeyError, TypeError, ValueError):
        clear_identity(session)
        return None
    if pending.expired:
        clear_identity(session)
        return None
    return pending


def update_identity_extra(session, pending: PendingIdentity, **values: Any) -> PendingIdentity:
    """Record a step's progress on the stashed identity (e.g. "password proven for account
    7"). Keeps its `created_at`: later steps never extend the time limit. Refuses to write
    over a different identity stashed meanwhile (another tab's SSO login)."""
    data = session.get(_IDENTITY_KEY) or {}
    if data.get("created_at") != pending.created_at:
        raise ValueError("the pending identity was replaced")
    extra = {**pending.extra, **values}
    session[_IDENTITY_KEY] = {**data, "extra": extra}
    return PendingIdentity(pending.identity, pending.created_at, pending.next_url, extra)


def clear_identity(session) -> None:
    session.pop(_IDENTITY_KEY, None)
