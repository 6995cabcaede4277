"""OpenID Connect 1.0 relying party for org connections (spec 3, 6): the authorization code
flow with PKCE (RFC 7636), `state`, `nonce`, and a strictly verified ID token.

The only module that imports JOSE code (joserfc). Flows see `PendingAuthorization` (kept by
the caller in the session) and an `AssertedIdentity`; every failure is an `SsoError` whose
`check` is a stable machine name for the audit log and the admin's diagnostics:

    state           the callback's `state` does not match this browser's pending request
                    (no pending request → SSO_SESSION_MISMATCH; too old → SSO_PENDING_EXPIRED)
    error_response  the provider answered the authorization request with `error=...`
    discovery       the discovery document could not be fetched or is not usable
    issuer          mix-up: discovery `issuer`, ID token `iss`, or RFC 9207 callback `iss`
                    differs from the configured issuer
    token_request   the code exchange failed (network, non-200, not JSON, invalid_grant:
                    e.g. a replayed authorization code), or the callback had no code
    id_token        no ID token, or one that is malformed / has an unexpected `typ`
    alg             `alg` outside ALLOWED_ALGORITHMS (never `none`, never HMAC)
    header_key      the header carries its own key or key URL (`jwk`, `jku`, `x5u`, `x5c`)
    crit            the header has `crit` (we understand no JWS extension) or `b64`
    kid             no key of the provider's JWKS fits, even after the one allowed refetch
    jwks            the JWKS could not be fetched or parsed
    signature       the signature does not verify with the provider's key
    audience        `aud` does not contain our client id
    azp             several audiences and no `azp`, or an `azp` other than our client id
    expired         `exp` missing or passed (CLOCK_SKEW allowed)
    iat             `iat` missing or in the future, or `nbf` in the future (CLOCK_SKEW)
    nonce           `nonce` missing or not the one of this browser's pending request
    auth_time       a fresh login was required (`force_login`) and `auth_time` is missing, not
                    a number, earlier than the request (less CLOCK_SKEW: the provider answered
                    from its session → SSO_REAUTH_REQUIRED) or in the future (SSO_CLOCK_SKEW)
    userinfo        the userinfo request failed or its answer is not a JSON object
    userinfo_sub    userinfo answered for another `sub` than the ID token's
    hd              Google Workspace: `hd` missing or not a verified domain of the org
    subject         no usable subject, or a subject mapped to an email-like claim
    email           no usable email address in the claims
    configuration   the connection lacks issuer / client id / secret, or is not OIDC

What this module does NOT do (the caller's part):
- Keep `PendingAuthorization` server-side (session) and DELETE it on first use, before or
  right after calling `complete`: that makes a replayed callback (same `state`) fail with
  SSO_SESSION_MISMATCH, because `complete` is then given `pending=None`. The provider
  refuses a second redemption of the same code on its own (→ check "token_request").
- Decide anything about accounts: `email_verified` is reported, not enforced. An identity
  with an unverified email still comes back (a returning learner is found by subject); the
  flows must refuse JIT sign-up and any email-based step on `email_verified=False`.
- Check `connection.enabled` (flows do), or `at_hash` (the access token comes straight from
  the token endpoint over TLS and is used only for userinfo at that provider).

Userinfo policy: called only when the provider has a userinfo endpoint and the ID token lacks
the email (or `email_verified`) or every name claim. Its `sub` must equal the ID token's; its
claims only fill gaps: the subject, `hd` and anything the ID token has come from the ID token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import time
import warnings
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

import requests
from django.conf import settings
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, OKPKey, RSAKey

from orglogin.core.errors import ErrorCode
from orglogin.sso.errors import SsoError
from orglogin.sso.identity import AssertedIdentity

logger = logging.getLogger(__name__)

# Asymmetric only: `none` and HMAC (HS*) would let anyone holding the public key, or nobody
# at all, mint tokens.
ALLOWED_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"})
# alg -> (kty, crv or None) of a key that may verify it.
_ALG_KEY_TYPES: dict[str, tuple[str, str | None]] = {
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "ES256": ("EC", "P-256"),
    "ES384": ("EC", "P-384"),
    "EdDSA": ("OKP", "Ed25519"),
}
_KEY_CLASSES = {"RSA": RSAKey, "EC": ECKey, "OKP": OKPKey}
_PRIVATE_JWK_MEMBERS = frozenset({"d", "p", "q", "dp", "dq", "qi", "oth", "k"})
# Header members that carry a key or point at one: an attacker's key is not the provider's.
_FORBIDDEN_HEADER_KEYS = ("jwk", "jku", "x5u", "x5c")

CLOCK_SKEW = 120  # seconds, for exp / iat / nbf
PENDING_MAX_AGE = 15 * 60  # seconds between the redirect and the callback
HTTP_TIMEOUT = (3.05, 10)  # connect, read
MAX_RESPONSE_BYTES = 512 * 1024
MAX_ID_TOKEN_BYTES = 16 * 1024
DISCOVERY_CACHE_SECONDS = 60 * 60
JWKS_CACHE_SECONDS = 60 * 60
JWKS_REFETCH_INTERVAL = 60  # at most one unknown-`kid` refetch per provider per interval
DEFAULT_SCOPES = "openid email profile"

DEFAULT_MAPPING = {
    "email": "email",
    "given_name": "given_name",
    "family_name": "family_name",
    "name": "name",
    "subject": "sub",
}
# An email (or a login name) can be reassigned to another person: never a subject (spec 1).
_EMAIL_LIKE_CLAIMS = frozenset({"email", "upn", "preferred_username", "unique_name", "mail"})


# --- presets ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Preset:
    """Provider-specific rules on top of plain OIDC, chosen by `Connection.oidc_preset`."""

    name: str
    issuer_template: str
    # Claims tried in order for the subject when the admin has not mapped one.
    subject_claims: tuple[str, ...] = ("sub",)
    # Google Workspace: `hd` must be one of the org's verified domains.
    require_hosted_domain: bool = False
    # Entra: the optional `xms_edov` claim (email domain owner verified) counts as verified.
    email_verified_claims: tuple[str, ...] = ("email_verified",)


PRESETS: dict[str, Preset] = {
    "okta": Preset("okta", "https://{your-org}.okta.com  (or .../oauth2/{authorization-server})"),
    # Tenant issuer only (not /common or /organizations): `oid` is the user's immutable id in
    # the tenant; Entra's `sub` is pairwise per application, also stable, used if no `oid`.
    "entra": Preset(
        "entra",
        "https://login.microsoftonline.com/{tenant-id}/v2.0",
        subject_claims=("oid", "sub"),
        email_verified_claims=("email_verified", "xms_edov"),
    ),
    # Google's issuer serves every Google account; `hd` is what ties one to the org.
    "google": Preset("google", "https://accounts.google.com", require_hosted_domain=True),
}
_PLAIN = Preset("", "")


# --- values ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PendingAuthorization:
    """What the callback must match; kept by the caller in the session, used once."""

    state: str
    nonce: str
    code_verifier: str
    redirect_uri: str
    created_at: float
    # A fresh login was asked for (prompt=login, max_age=0): the ID token's `auth_time` must
    # be at or after this time (epoch seconds, less CLOCK_SKEW). None: not checked.
    require_auth_after: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PendingAuthorization:
        try:
            return cls(
                state=str(data["state"]),
                nonce=str(data["nonce"]),
                code_verifier=str(data["code_verifier"]),
                redirect_uri=str(data["redirect_uri"]),
                created_at=float(data["created_at"]),
                # Absent from dicts written before this field existed: not required.
                require_auth_after=(
                    None
                    if data.get("require_auth_after") is None
                    else float(data["require_auth_after"])
                ),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"not a pending OIDC authorization: {exc}") from exc


@dataclass(frozen=True)
class ProviderMetadata:
    """The parts of a discovery document we use; `issuer` equals the configured issuer."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str = ""
    token_endpoint_auth_methods_supported: tuple[str, ...] = ("client_secret_basic",)
    authorization_response_iss_parameter_supported: bool = False

    @classmethod
    def from_document(cls, configured_issuer: str, doc: Any) -> ProviderMetadata:
        if not isinstance(doc, dict):
            raise _invalid("discovery", "the discovery document is not a JSON object")
        unverified_issuer = doc.get("issuer")
        if unverified_issuer != configured_issuer:
            # OpenID Connect Discovery 4.3: the document must name the issuer it was fetched
            # for; anything else is a mix-up (another provider's endpoints and keys).
            raise _invalid(
                "issuer",
                f"discovery names issuer {unverified_issuer!r}, configured {configured_issuer!r}",
            )
        endpoints = {}
        for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
            endpoints[name] = _endpoint(doc.get(name), name)
        userinfo = doc.get("userinfo_endpoint")
        methods = doc.get("token_endpoint_auth_methods_supported")
        if not isinstance(methods, list) or not methods:
            methods = ["client_secret_basic"]  # the default of Discovery 3
        return cls(
            issuer=configured_issuer,
            userinfo_endpoint=_endpoint(userinfo, "userinfo_endpoint") if userinfo else "",
            token_endpoint_auth_methods_supported=tuple(str(m) for m in methods),
            authorization_response_iss_parameter_supported=(
                doc.get("authorization_response_iss_parameter_supported") is True
            ),
            **endpoints,
        )

    @property
    def token_auth_method(self) -> str:
        methods = self.token_endpoint_auth_methods_supported
        if "client_secret_basic" in methods:
            return "client_secret_basic"
        if "client_secret_post" in methods:
            return "client_secret_post"
        raise _invalid(
            "discovery",
            f"the token endpoint offers neither client_secret_basic nor _post: {methods}",
        )


# --- helpers -----------------------------------------------------------------------------------


def _invalid(check: str, detail: str) -> SsoError:
    return SsoError(ErrorCode.SSO_RESPONSE_INVALID, check, detail)


def _signature(check: str, detail: str) -> SsoError:
    return SsoError(ErrorCode.SSO_SIGNATURE, check, detail)


def _is_loopback(host: str | None) -> bool:
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _endpoint(value: Any, name: str) -> str:
    """An endpoint URL: https, or http only on loopback (development and tests)."""
    if not isinstance(value, str) or not value:
        raise _invalid("discovery", f"discovery has no {name}")
    parts = urlsplit(value)
    if parts.scheme == "https" and parts.hostname:
        return value
    if parts.scheme == "http" and (_is_loopback(parts.hostname) or settings.DEBUG):
        return value
    raise _invalid("discovery", f"{name} must be an https URL: {value!r}")


def _cache_key(kind: str, value: str) -> str:
    return f"oidc:{kind}:" + hashlib.sha256(value.encode()).hexdigest()


def _read_json(response: requests.Response, what: str, check: str) -> Any:
    body = b""
    for chunk in response.iter_content(16 * 1024):
        body += chunk
        if len(body) > MAX_RESPONSE_BYTES:
            raise _invalid(check, f"{what}: answer larger than {MAX_RESPONSE_BYTES} bytes")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise _invalid(check, f"{what}: answer is not JSON (HTTP {response.status_code})") from exc


def _http_get_json(url: str, what: str, check: str, headers: Mapping[str, str] | None = None):
    try:
        with requests.get(
            url,
            headers={"Accept": "application/json", **(headers or {})},
            timeout=HTTP_TIMEOUT,
            allow_redirects=False,
            stream=True,
        ) as response:
            if response.status_code != 200:
                raise _invalid(check, f"{what}: HTTP {response.status_code} from {url}")
            return _read_json(response, what, check)
    except requests.RequestException as exc:
        raise _invalid(check, f"{what}: {type(exc).__name__} for {url}") from exc


def _b64url_decode(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _same(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode("utf-8"), b.encode("utf-8"))


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _clean_text(value: Any, limit: int = 200) -> str:
    text = str(value)[:limit]
    return "".join(ch if ch.isprintable() else "?" for ch in text)


# --- discovery and keys ------------------------------------------------------------------------


def redirect_uri(connection) -> str:
    """Where the provider sends the browser back; register exactly this at the provider."""
    return f"{settings.BASE_URL.rstrip('/')}/sso/oidc/{connection.public_id}/callback/"


def discover(issuer: str) -> ProviderMetadata:
    """The provider's metadata from `issuer`/.well-known/openid-configuration, cached.

    Refuses a document whose `issuer` differs from `issuer` (check "issuer"). Only a
    document that passed that check is cached.
    """
    if not issuer:
        raise SsoError(ErrorCode.SSO_NOT_CONFIGURED, "configuration", "no issuer configured")
    key = _cache_key("discovery", issuer)
    doc = cache.get(key)
    if doc is None:
        url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        doc = _http_get_json(url, "discovery", "discovery")
        metadata = ProviderMetadata.from_document(issuer, doc)
        cache.set(key, doc, DISCOVERY_CACHE_SECONDS)
        return metadata
    return ProviderMetadata.from_document(issuer, doc)


def _fetch_jwks(jwks_uri: str) -> list[dict[str, Any]]:
    doc = _http_get_json(jwks_uri, "JWKS", "jwks")
    keys = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(keys, list):
        raise _invalid("jwks", "the JWKS has no `keys` list")
    public = []
    for jwk in keys:
        if isinstance(jwk, dict):
            # Keep public members only: a provider that publishes private material by mistake
            # must not make us hold (or use) it.
            public.append({k: v for k, v in jwk.items() if k not in _PRIVATE_JWK_MEMBERS})
    cache.set(_cache_key("jwks", jwks_uri), public, JWKS_CACHE_SECONDS)
    return public


def _jwks(jwks_uri: str) -> list[dict[str, Any]]:
    keys = cache.get(_cache_key("jwks", jwks_uri))
    return keys if keys is not None else _fetch_jwks(jwks_uri)


def _refetch_jwks(jwks_uri: str) -> list[dict[str, Any]] | None:
    """Refetch after an unknown `kid` (key rotation), at most once per provider per
    JWKS_REFETCH_INTERVAL across all processes; None when rate-limited."""
    if not cache.add(_cache_key("jwks-refetch", jwks_uri), 1, JWKS_REFETCH_INTERVAL):
        return None
    logger.info("OIDC: unknown kid, refetching JWKS %s", jwks_uri)
    return _fetch_jwks(jwks_uri)


def _fitting_keys(jwks: list[dict[str, Any]], alg: str, kid: str | None) -> list[dict[str, Any]]:
    kty, crv = _ALG_KEY_TYPES[alg]
    fitting = []
    for jwk in jwks:
        if kid is not None and jwk.get("kid") != kid:
            continue
        if jwk.get("kty") != kty or (crv is not None and jwk.get("crv") != crv):
            continue
        if jwk.get("use", "sig") != "sig" or jwk.get("alg", alg) != alg:
            continue
        ops = jwk.get("key_ops")
        if isinstance(ops, list) and "verify" not in ops:
            continue
        fitting.append(jwk)
    return fitting


# Parsed public keys, by their JWK text: parsing costs more than verifying (perf notes).
# Content-addressed, so a rotated or changed key is simply another entry.
_KEY_MEMO: dict[str, Any] = {}
_KEY_MEMO_MAX = 256


def _import_key(jwk: dict[str, Any]):
    memo_key = json.dumps(jwk, sort_keys=True)
    key = _KEY_MEMO.get(memo_key)
    if key is not None:
        return key
    try:
        key = _KEY_CLASSES[jwk["kty"]].import_key(jwk)
    except (JoseError, KeyError, ValueError, TypeError) as exc:
        logger.warning("OIDC: unusable JWK kid=%r: %s", jwk.get("kid"), exc)
        return None
    if len(_KEY_MEMO) >= _KEY_MEMO_MAX:
        _KEY_MEMO.clear()
    _KEY_MEMO[memo_key] = key
    return key


# --- ID token ------------------------------------------------------------------------------------


def verify_id_token(
    raw: Any,
    *,
    metadata: ProviderMetadata,
    client_id: str,
    nonce: str,
    now: float,
    auth_after: float | None = None,
) -> dict[str, Any]:
    """The verified claims of an ID token (OIDC Core 3.1.3.7), or SsoError.

    Checks the header (alg allow-list, no embedded keys, no `crit`), the signature with a key
    of the provider's JWKS (one rate-limited refetch on an unknown `kid`), then `iss`, `aud`,
    `azp`, `exp`, `iat`, `nbf`, `nonce` and `sub`; with `auth_after` (a fresh login was asked
    for with max_age=0) also `auth_time`. Does not check `at_hash` or `acr` (we send no
    acr_values).
    """
    if not isinstance(raw, str) or not raw or len(raw) > MAX_ID_TOKEN_BYTES:
        raise _invalid("id_token", "no ID token, or one of an unreasonable size")
    parts = raw.split(".")
    if len(parts) != 3:
        raise _invalid("id_token", "the ID token is not a JWS compact serialization")
    try:
        unverified_header = json.loads(_b64url_decode(parts[0]))
    except (ValueError, UnicodeDecodeError) as exc:
        raise _invalid("id_token", "the ID token header is not JSON") from exc
    if not isinstance(unverified_header, dict):
        raise _invalid("id_token", "the ID token header is not a JSON object")

    alg = unverified_header.get("alg")
    if not isinstance(alg, str) or alg not in ALLOWED_ALGORITHMS:
        raise _signature("alg", f"alg {_clean_text(alg, 20)!r} is not allowed")
    for name in _FORBIDDEN_HEADER_KEYS:
        if name in unverified_header:
            raise _signature("header_key", f"the header carries `{name}`; keys come from JWKS")
    if "crit" in unverified_header or "b64" in unverified_header:
        raise _signature("crit", "the header asks for JWS extensions (`crit`/`b64`)")
    typ = unverified_header.get("typ")
    if typ is not None and (not isinstance(typ, str) or typ.lower().endswith("+jwt")):
        # at+jwt, logout+jwt, ...: another kind of token signed by the same keys.
        raise _invalid("id_token", f"typ {_clean_text(typ, 40)!r} is not an ID token")
    kid = unverified_header.get("kid")
    if kid is not None and not isinstance(kid, str):
        raise _signature("kid", "kid is not a string")

    candidates = _fitting_keys(_jwks(metadata.jwks_uri), alg, kid)
    if not candidates and kid is not None:
        refreshed = _refetch_jwks(metadata.jwks_uri)
        if refreshed is not None:
            candidates = _fitting_keys(refreshed, alg, kid)
    if not candidates:
        raise _signature(
            "kid", f"no {alg} key with kid {_clean_text(kid, 80)!r} in the provider's JWKS"
        )

    registry = jws.JWSRegistry(algorithms=[alg], strict_check_header=False)
    verified = None
    for jwk in candidates:
        key = _import_key(jwk)
        if key is None:
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # joserfc warns that EdDSA is deprecated
                verified = jws.deserialize_compact(raw, key, registry=registry)
            break
        except (JoseError, ValueError, TypeError):
            continue
    if verified is None:
        raise _signature("signature", "the ID token signature does not verify")

    try:
        claims = json.loads(verified.payload)
    except ValueError as exc:
        raise _invalid("id_token", "the ID token payload is not JSON") from exc
    if not isinstance(claims, dict):
        raise _invalid("id_token", "the ID token payload is not a JSON object")
    _check_claims(claims, metadata=metadata, client_id=client_id, nonce=nonce, now=now)
    if auth_after is not None:
        _check_auth_time(claims, auth_after=auth_after, now=now)
    return claims


def _check_claims(
    claims: dict[str, Any], *, metadata: ProviderMetadata, client_id: str, nonce: str, now: float
) -> None:
    if claims.get("iss") != metadata.issuer:
        raise _invalid(
            "issuer", f"iss {_clean_text(claims.get('iss'))!r}, expected {metadata.issuer!r}"
        )

    aud = claims.get("aud")
    audiences = [aud] if isinstance(aud, str) else aud
    if not isinstance(audiences, list) or not all(isinstance(a, str) for a in audiences):
        raise _invalid("audience", "aud is missing or not a string / list of strings")
    if client_id not in audiences:
        raise _invalid("audience", f"aud {_clean_text(audiences)} does not contain our client id")
    azp = claims.get("azp")
    if len(audiences) > 1 and azp is None:
        raise _invalid("azp", "several audiences and no azp")
    if azp is not None and azp != client_id:
        raise _invalid("azp", f"azp {_clean_text(azp)!r} is not our client id")

    exp = _number(claims.get("exp"))
    if exp is None:
        raise SsoError(ErrorCode.SSO_CLOCK_SKEW, "expired", "exp is missing or not a number")
    if now > exp + CLOCK_SKEW:
        raise SsoError(ErrorCode.SSO_CLOCK_SKEW, "expired", f"expired {int(now - exp)} s ago")
    iat = _number(claims.get("iat"))
    if iat is None:
        raise SsoError(ErrorCode.SSO_CLOCK_SKEW, "iat", "iat is missing or not a number")
    if iat > now + CLOCK_SKEW:
        raise SsoError(ErrorCode.SSO_CLOCK_SKEW, "iat", f"issued {int(iat - now)} s in the future")
    if "nbf" in claims:
        nbf = _number(claims["nbf"])
        if nbf is None or nbf > now + CLOCK_SKEW:
            raise SsoError(ErrorCode.SSO_CLOCK_SKEW, "iat", "nbf is in the future or not a number")

    token_nonce = claims.get("nonce")
    if not isinstance(token_nonce, str) or not _same(token_nonce, nonce):
        raise _invalid("nonce", "nonce missing or not the one of this login")

    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub or len(sub) > 255:
        raise _invalid("subject", "sub is missing or not a string of 1-255 characters")


def _check_auth_time(claims: Mapping[str, Any], *, auth_after: float, now: float) -> None:
    """The provider authenticated the user at or after `auth_after` (less CLOCK_SKEW): it did
    not answer our prompt=login / max_age=0 from an earlier session. OIDC Core 3.1.2.1: with
    max_age the ID token MUST carry `auth_time`; missing is refused."""
    auth_time = _number(claims.get("auth_time"))
    if auth_time is None:
        raise SsoError(
            ErrorCode.SSO_REAUTH_REQUIRED,
            "auth_time",
            "a fresh login was required and auth_time is missing or not a number",
        )
    if auth_time > now + CLOCK_SKEW:
        raise SsoError(
            ErrorCode.SSO_CLOCK_SKEW, "auth_time", f"auth_time {int(auth_time - now)} s ahead"
        )
    if auth_time < auth_after - CLOCK_SKEW:
        raise SsoError(
            ErrorCode.SSO_REAUTH_REQUIRED,
            "auth_time",
            f"auth_time is {int(auth_after - auth_time)} s before the fresh login was asked "
            "for: the provider answered from an earlier session",
        )


# --- the connector ------------------------------------------------------------------------------


class OidcConnector:
    """One OIDC connection: builds the authorization redirect and completes the callback."""

    def __init__(self, connection) -> None:
        if connection.protocol != "oidc":
            raise SsoError(ErrorCode.SSO_NOT_CONFIGURED, "configuration", "not an OIDC connection")
        if not (connection.oidc_issuer and connection.oidc_client_id):
            raise SsoError(
                ErrorCode.SSO_NOT_CONFIGURED, "configuration", "issuer or client id missing"
            )
        self.connection = connection
        self.preset = PRESETS.get(connection.oidc_preset or "", _PLAIN)
        if connection.oidc_preset and connection.oidc_preset not in PRESETS:
            raise SsoError(
                ErrorCode.SSO_NOT_CONFIGURED,
                "configuration",
                f"unknown preset {connection.oidc_preset!r}",
            )

    @property
    def metadata(self) -> ProviderMetadata:
        return discover(self.connection.oidc_issuer)

    def scopes(self) -> str:
        scopes = (self.connection.oidc_scopes or DEFAULT_SCOPES).split()
        if "openid" not in scopes:
            scopes.insert(0, "openid")
        return " ".join(dict.fromkeys(scopes))

    def authorization_redirect(
        self, *, force_login: bool = False, now: float | None = None
    ) -> tuple[str, PendingAuthorization]:
        """The provider URL to send the browser to, and what the callback must match.

        `force_login` asks the provider to authenticate the user again (`prompt=login` and
        `max_age=0`) even if it has a session, and records in the pending authorization that
        `complete` must find an `auth_time` no earlier than now (less CLOCK_SKEW)."""
        metadata = self.metadata
        created_at = time.time() if now is None else now
        pending = PendingAuthorization(
            state=secrets.token_urlsafe(32),
            nonce=secrets.token_urlsafe(32),
            code_verifier=secrets.token_urlsafe(64),  # 86 characters: RFC 7636 allows 43-128
            redirect_uri=redirect_uri(self.connection),
            created_at=created_at,
            require_auth_after=created_at if force_login else None,
        )
        challenge = _b64url(hashlib.sha256(pending.code_verifier.encode("ascii")).digest())
        params = {
            "response_type": "code",
            "client_id": self.connection.oidc_client_id,
            "redirect_uri": pending.redirect_uri,
            "scope": self.scopes(),
            "state": pending.state,
            "nonce": pending.nonce,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        if force_login:
            params["prompt"] = "login"
            # OIDC Core 3.1.2.1: with max_age the ID token MUST carry auth_time.
            params["max_age"] = "0"
        parts = urlsplit(metadata.authorization_endpoint)
        query = [(k, v) for k, v in parse_qsl(parts.query) if k not in params]
        url = urlunsplit(parts._replace(query=urlencode(query + list(params.items()))))
        return url, pending

    def complete(
        self,
        *,
        params: Mapping[str, str],
        pending: PendingAuthorization | None,
        now: float | None = None,
    ) -> AssertedIdentity:
        """Verify the callback (`params` = its query) and return the asserted identity.

        `pending` is what `authorization_redirect` returned for this browser; the caller
        deletes it on first use so a replayed callback arrives here with `pending=None`.
        When `pending.require_auth_after` is set the ID token's `auth_time` must be at or after
        it, less CLOCK_SKEW (check "auth_time").
        """
        now = time.time() if now is None else now
        if pending is None:
            raise SsoError(
                ErrorCode.SSO_SESSION_MISMATCH, "state", "no pending authorization in this session"
            )
        state = params.get("state")
        if not isinstance(state, str) or not _same(state, pending.state):
            raise SsoError(ErrorCode.SSO_SESSION_MISMATCH, "state", "state does not match")
        if pending.redirect_uri != redirect_uri(self.connection):
            raise SsoError(
                ErrorCode.SSO_SESSION_MISMATCH,
                "state",
                "the pending request is for another connection",
            )
        if now - pending.created_at > PENDING_MAX_AGE:
            raise SsoError(
                ErrorCode.SSO_PENDING_EXPIRED,
                "state",
                f"started {int(now - pending.created_at)} s ago",
            )

        metadata = self.metadata
        # RFC 9207: a provider that announces `iss` in authorization responses lets us refuse
        # a response that a mixed-up provider produced.
        callback_iss = params.get("iss")
        if callback_iss is not None and callback_iss != metadata.issuer:
            raise _invalid("issuer", f"callback iss {_clean_text(callback_iss)!r}")
        if callback_iss is None and metadata.authorization_response_iss_parameter_supported:
            raise _invalid("issuer", "the provider announces `iss` in responses but sent none")

        if "error" in params:
            description = params.get("error_description", "")
            raise SsoError(
                ErrorCode.SSO_IDP_ERROR,
                "error_response",
                f"{_clean_text(params['error'], 60)}: {_clean_text(description)}".rstrip(": "),
            )
        code = params.get("code")
        if not isinstance(code, str) or not code:
            raise _invalid("token_request", "the callback carries no authorization code")

        tokens = self._redeem(metadata, code, pending)
        claims = verify_id_token(
            tokens.get("id_token"),
            metadata=metadata,
            client_id=self.connection.oidc_client_id,
            nonce=pending.nonce,
            now=now,
            auth_after=pending.require_auth_after,
        )
        claims = self._with_userinfo(metadata, claims, tokens.get("access_token"))
        return self._identity(claims)

    # -- steps ---------------------------------------------------------------------------------

    def _redeem(
        self, metadata: ProviderMetadata, code: str, pending: PendingAuthorization
    ) -> dict[str, Any]:
        """Exchange the code at the token endpoint (RFC 6749 4.1.3 + RFC 7636 4.5)."""
        client_id = self.connection.oidc_client_id
        secret = self.connection.oidc_client_secret
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": pending.redirect_uri,
            "code_verifier": pending.code_verifier,
        }
        headers = {"Accept": "application/json"}
        if metadata.token_auth_method == "client_secret_basic":
            # RFC 6749 2.3.1: both parts are form-urlencoded before base64.
            userpass = f"{quote(client_id, safe='')}:{quote(secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(userpass.encode()).decode()
        else:
            form["client_id"] = client_id
            form["client_secret"] = secret
        try:
            with requests.post(
                metadata.token_endpoint,
                data=form,
                headers=headers,
                timeout=HTTP_TIMEOUT,
                allow_redirects=False,
                stream=True,
            ) as response:
                body = _read_json(response, "token endpoint", "token_request")
                status = response.status_code
        except requests.RequestException as exc:
            raise _invalid("token_request", f"token endpoint: {type(exc).__name__}") from exc
        if status != 200 or not isinstance(body, dict) or "error" in body:
            error = body.get("error", "") if isinstance(body, dict) else ""
            description = body.get("error_description", "") if isinstance(body, dict) else ""
            raise _invalid(
                "token_request",
                f"HTTP {status} {_clean_text(error, 60)} {_clean_text(description)}".strip(),
            )
        if "id_token" not in body:
            raise _invalid("id_token", "the token response has no id_token")
        return body

    def _needs_userinfo(self, claims: Mapping[str, Any]) -> bool:
        mapping = self._mapping()
        if mapping["email"] not in claims:
            return True
        if mapping["email"] == "email" and "email_verified" not in claims:
            return True
        names = (mapping["given_name"], mapping["family_name"], mapping["name"])
        return not any(name in claims for name in names)

    def _with_userinfo(
        self, metadata: ProviderMetadata, claims: dict[str, Any], access_token: Any
    ) -> dict[str, Any]:
        if not metadata.userinfo_endpoint or not self._needs_userinfo(claims):
            return claims
        if not isinstance(access_token, str) or not access_token:
            raise _invalid("userinfo", "claims are missing and there is no access token")
        info = _http_get_json(
            metadata.userinfo_endpoint,
            "userinfo",
            "userinfo",
            headers={"Authorization": f"Bearer {access_token}"},
        )
        if not isinstance(info, dict):
            raise _invalid("userinfo", "userinfo is not a JSON object")
        # OIDC Core 5.3.2: userinfo about another subject must not be used (token
        # substitution at the userinfo endpoint).
        if info.get("sub") != claims["sub"]:
            raise _invalid("userinfo_sub", "userinfo sub differs from the ID token's")
        merged = {k: v for k, v in info.items() if k not in ("hd", "oid")}
        merged.update(claims)  # the signed ID token wins
        return merged

    def _mapping(self) -> dict[str, str]:
        configured = self.connection.attribute_mapping or {}
        mapping = dict(DEFAULT_MAPPING)
        for ours in DEFAULT_MAPPING:
            value = configured.get(ours) or (
                configured.get("display_name") if ours == "name" else ""
            )
            if isinstance(value, str) and value.strip():
                mapping[ours] = value.strip()
        return mapping

    def _subject(self, claims: Mapping[str, Any]) -> str:
        configured = (self.connection.attribute_mapping or {}).get("subject")
        names = (
            (configured.strip(),)
            if isinstance(configured, str) and configured.strip()
            else (self.preset.subject_claims)
        )
        for name in names:
            if name.lower() in _EMAIL_LIKE_CLAIMS:
                raise _invalid("subject", f"subject mapped to {name!r}, which can be reassigned")
            value = claims.get(name)
            if isinstance(value, str) and value and len(value) <= 255:
                return value
        raise _invalid("subject", f"no usable subject claim among {list(names)}")

    def _check_hosted_domain(self, claims: Mapping[str, Any]) -> None:
        hd = claims.get("hd")
        if not isinstance(hd, str) or not hd:
            raise _invalid("hd", "no hd claim: not a Google Workspace account")
        verified = {
            name.lower()
            for name in self.connection.organization.domains.filter(verified=True).values_list(
                "name", flat=True
            )
        }
        if hd.lower() not in verified:
            raise _invalid("hd", f"hd {_clean_text(hd)!r} is not a verified domain of the org")

    def _identity(self, claims: dict[str, Any]) -> AssertedIdentity:
        if self.preset.require_hosted_domain:
            self._check_hosted_domain(claims)
        mapping = self._mapping()
        subject = self._subject(claims)

        email = claims.get(mapping["email"])
        if isinstance(email, str):
            email = email.strip()
        try:
            validate_email(email)
        except (ValidationError, TypeError) as exc:
            raise SsoError(
                ErrorCode.SSO_MISSING_ATTRIBUTES,
                "email",
                f"claim {mapping['email']!r} holds no usable email address",
            ) from exc
        # Verified only when the provider says so with the JSON boolean true ("true", 1 do not
        # count), and only about the `email` claim itself: a verification flag says nothing
        # about another claim an admin mapped as the email.
        email_verified = mapping["email"] == "email" and any(
            claims.get(name) is True for name in self.preset.email_verified_claims
        )

        def text(ours: str) -> str:
            value = claims.get(mapping[ours])
            return value.strip()[:200] if isinstance(value, str) else ""

        return AssertedIdentity(
            connection_id=self.connection.pk,
            subject=subject,
            email=email,
            email_verified=email_verified,
            given_name=text("given_name"),
            family_name=text("family_name"),
            display_name=text("name"),
            attributes=_attributes(claims),
        )


_PROTOCOL_CLAIMS = frozenset({"nonce", "at_hash", "c_hash", "s_hash", "sid"})


def _attributes(claims: Mapping[str, Any]) -> dict[str, tuple[str, ...]]:
    """Every verified claim as strings, for diagnostics and later mapping."""

    def scalar(value: Any) -> str | None:
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str | int | float):
            return str(value)
        return None

    out: dict[str, tuple[str, ...]] = {}
    for name, value in claims.items():
        if name in _PROTOCOL_CLAIMS:
            continue
        values = value if isinstance(value, list) else [value]
        strings = tuple(s for s in map(scalar, values) if s is not None)
        if strings:
            out[name] = strings
    return out
