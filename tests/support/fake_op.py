"""An OpenID Provider the tests control: discovery, JWKS, token and userinfo on 127.0.0.1.

    op = FakeOP().start()
    url, pending = connector.authorization_redirect()
    params = op.authorize(url)                     # what the provider's redirect would carry
    identity = connector.complete(params=params, pending=pending)
    op.stop()

It behaves like a well-behaved provider (checks the client's authentication, the redirect URI
and the PKCE verifier; a code redeems once) until a test shapes an answer:

    op.claims_override = {"aud": "someone-else", "nonce": None}   # None deletes a claim
    op.header_override = {"alg": "none"}
    op.id_token = lambda op, claims: "..."          # build the token yourself
    op.discovery_override = {"issuer": "http://evil.test"}
    op.responses["/token"] = (400, {"error": "invalid_grant"})
    op.rotate_key()                                 # new signing key, old one unpublished

``op.requests`` counts requests per path (e.g. how often the JWKS was fetched).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
import warnings
from collections import Counter
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, parse_qsl, unquote, urlsplit

from joserfc import jws
from joserfc.jwk import ECKey, OKPKey, RSAKey

_RSA_POOL: list[RSAKey] = []  # 2048-bit RSA keys are slow to make: share them between tests


def rsa_key(index: int, kid: str) -> RSAKey:
    while len(_RSA_POOL) <= index:
        _RSA_POOL.append(RSAKey.generate_key(2048, private=True))
    return RSAKey.import_key(_RSA_POOL[index].as_dict(private=True), parameters={"kid": kid})


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def sign_jws(header: dict[str, Any], claims: dict[str, Any], key: Any) -> str:
    """A compact JWS with exactly this header (no defaults added), signed by `key`.

    Signs by hand so tests can build what a library would refuse to (`alg: none`, HS256 with
    an RSA public key as the secret, a `crit` we do not know, an embedded `jwk`).
    """
    signing_input = (
        b64url(json.dumps(header, separators=(",", ":")).encode())
        + "."
        + b64url(json.dumps(claims, separators=(",", ":")).encode())
    )
    alg = header.get("alg")
    if alg == "none":
        return signing_input + "."
    if isinstance(key, bytes):  # an HMAC secret, e.g. hmac_secret_from_public()
        digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
        return signing_input + "." + b64url(hmac.new(key, signing_input.encode(), digest).digest())
    registry = jws.JWSRegistry(algorithms=[alg], strict_check_header=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # EdDSA's deprecation notice
        algorithm = registry.get_alg(alg)
    signature = algorithm.sign(signing_input.encode("ascii"), key)
    return signing_input + "." + b64url(signature)


def hmac_secret_from_public(key: RSAKey) -> bytes:
    """The provider's public key in PEM, used as an HMAC secret (the classic alg confusion)."""
    return key.as_pem(private=False)


class FakeOP:
    def __init__(
        self,
        *,
        client_id: str = "orglogin-client",
        client_secret: str = "s3cret/with:odd chars",
        auth_method: str = "client_secret_basic",
    ) -> None:
        self.client_id = client_id
        self.client_secret = client_secret
        self.auth_method = auth_method
        self.signing_key = rsa_key(0, "key-1")
        self.published_keys: list[Any] = [self.signing_key]
        self.alg = "RS256"
        self.account: dict[str, Any] = {
            "sub": "user-1",
            "email": "jane@acme.test",
            "email_verified": True,
            "given_name": "Jane",
            "family_name": "Doe",
            "name": "Jane Doe",
        }
        # Claims that go to userinfo only (and not into the ID token).
        self.userinfo_only: set[str] = set()
        self.claims_override: dict[str, Any] = {}
        self.header_override: dict[str, Any] = {}
        self.userinfo_override: dict[str, Any] = {}
        self.discovery_override: dict[str, Any] = {}
        self.id_token: Callable[[FakeOP, dict[str, Any]], str] | None = None
        # path -> (status, JSON body) to answer instead of the normal behaviour.
        self.responses: dict[str, tuple[int, Any]] = {}
        self.requests: Counter[str] = Counter()
        self.token_requests: list[dict[str, Any]] = []
        self._codes: dict[str, dict[str, Any]] = {}
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()
        self._rotations = 0

    # --- life ------------------------------------------------------------------------------
    def start(self) -> FakeOP:
        op = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):
                op._handle(self, "GET")

            def do_POST(self):
                op._handle(self, "POST")

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def issuer(self) -> str:
        assert self._server is not None, "start() first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    # --- documents -------------------------------------------------------------------------
    def discovery(self) -> dict[str, Any]:
        doc = {
            "issuer": self.issuer,
            "authorization_endpoint": self.issuer + "/authorize",
            "token_endpoint": self.issuer + "/token",
            "userinfo_endpoint": self.issuer + "/userinfo",
            "jwks_uri": self.issuer + "/jwks",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": [self.auth_method],
            "code_challenge_methods_supported": ["S256"],
        }
        doc.update(self.discovery_override)
        return {k: v for k, v in doc.items() if v is not None}

    def jwks(self) -> dict[str, Any]:
        keys = []
        for key in self.published_keys:
            jwk = key.as_dict(private=False)
            jwk.setdefault("use", "sig")
            keys.append(jwk)
        return {"keys": keys}

    def rotate_key(self, *, publish: bool = True, keep_old: bool = False) -> RSAKey:
        """Sign with a new key (kid key-N); publish it in the JWKS unless told not to."""
        self._rotations += 1
        new = rsa_key(self._rotations, f"key-{self._rotations + 1}")
        self.signing_key = new
        kept = self.published_keys if keep_old else []
        self.published_keys = [*kept, new] if publish else list(kept)
        return new

    def id_token_claims(self, nonce: str | None, now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        claims = {
            "iss": self.issuer,
            "aud": self.client_id,
            "exp": int(now) + 300,
            "iat": int(now),
            "nonce": nonce,
        }
        claims.update({k: v for k, v in self.account.items() if k not in self.userinfo_only})
        claims.update(self.claims_override)
        return {k: v for k, v in claims.items() if v is not None}

    def make_id_token(self, claims: dict[str, Any]) -> str:
        if self.id_token is not None:
            return self.id_token(self, claims)
        header = {"alg": self.alg, "typ": "JWT", "kid": self.signing_key.kid}
        header.update(self.header_override)
        header = {k: v for k, v in header.items() if v is not None}
        return sign_jws(header, claims, self.signing_key)

    # --- the browser's side ----------------------------------------------------------------
    def authorize(self, url: str) -> dict[str, str]:
        """Play the authorization endpoint: check the request, return the callback query."""
        parts = urlsplit(url)
        assert f"{parts.scheme}://{parts.netloc}{parts.path}" == self.issuer + "/authorize", url
        query = dict(parse_qsl(parts.query))
        assert query["response_type"] == "code"
        assert query["client_id"] == self.client_id
        assert query["code_challenge_method"] == "S256"
        assert "openid" in query["scope"].split()
        code = secrets.token_urlsafe(16)
        with self._lock:
            self._codes[code] = {
                "nonce": query.get("nonce"),
                "challenge": query["code_challenge"],
                "redirect_uri": query["redirect_uri"],
                "used": False,
            }
        return {"code": code, "state": query["state"]}

    # --- HTTP --------------------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        path = urlsplit(handler.path).path
        with self._lock:
            self.requests[path] += 1
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length).decode() if length else ""
        if path in self.responses:
            status, payload = self.responses[path]
        elif method == "GET" and path == "/.well-known/openid-configuration":
            status, payload = 200, self.discovery()
        elif method == "GET" and path == "/jwks":
            status, payload = 200, self.jwks()
        elif method == "POST" and path == "/token":
            status, payload = self._token(handler, body)
        elif method == "GET" and path == "/userinfo":
            status, payload = self._userinfo(handler)
        else:
            status, payload = 404, {"error": "not_found"}
        data = payload.encode() if isinstance(payload, str) else json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def _client_ok(self, handler: BaseHTTPRequestHandler, form: dict[str, str]) -> bool:
        if self.auth_method == "client_secret_basic":
            auth = handler.headers.get("Authorization", "")
            if not auth.startswith("Basic ") or "client_secret" in form:
                return False
            user, _, password = base64.b64decode(auth[6:]).decode().partition(":")
            return unquote(user) == self.client_id and unquote(password) == self.client_secret
        return (
            "Authorization" not in handler.headers
            and form.get("client_id") == self.client_id
            and form.get("client_secret") == self.client_secret
        )

    def _token(self, handler: BaseHTTPRequestHandler, body: str) -> tuple[int, Any]:
        form = {k: v[0] for k, v in parse_qs(body).items()}
        self.token_requests.append(
            {"form": form, "authorization": handler.headers.get("Authorization")}
        )
        if not self._client_ok(handler, form):
            return 401, {"error": "invalid_client"}
        with self._lock:
            grant = self._codes.get(form.get("code", ""))
            if grant is None or grant["used"]:
                return 400, {"error": "invalid_grant", "error_description": "code unknown or used"}
            grant["used"] = True
        verifier = form.get("code_verifier", "")
        if b64url(hashlib.sha256(verifier.encode()).digest()) != grant["challenge"]:
            return 400, {"error": "invalid_grant", "error_description": "PKCE verification failed"}
        if form.get("redirect_uri") != grant["redirect_uri"]:
            return 400, {"error": "invalid_grant", "error_description": "redirect_uri mismatch"}
        claims = self.id_token_claims(grant["nonce"])
        return 200, {
            "access_token": "at-" + secrets.token_urlsafe(8),
            "token_type": "Bearer",
            "expires_in": 300,
            "id_token": self.make_id_token(claims),
        }

    def _userinfo(self, handler: BaseHTTPRequestHandler) -> tuple[int, Any]:
        if not handler.headers.get("Authorization", "").startswith("Bearer at-"):
            return 401, {"error": "invalid_token"}
        info = dict(self.account)
        info.update(self.userinfo_override)
        return 200, {k: v for k, v in info.items() if v is not None}


__all__ = [
    "ECKey",
    "FakeOP",
    "OKPKey",
    "hmac_secret_from_public",
    "make_oidc_connection",
    "rsa_key",
    "sign_jws",
]


def make_oidc_connection(issuer: str, client_id: str, client_secret: str, **fields: Any):
    """An org `acme` (verified domain acme.test) with an OIDC connection to `issuer`."""
    from orglogin.organizations.models import Domain, Organization
    from orglogin.sso.models import Connection

    org, _ = Organization.objects.get_or_create(slug="acme", defaults={"name": "Acme Corp"})
    Domain.objects.get_or_create(organization=org, name="acme.test", defaults={"verified": True})
    return Connection.objects.create(
        organization=org,
        protocol="oidc",
        name=fields.pop("name", "Acme OIDC"),
        oidc_issuer=issuer,
        oidc_client_id=client_id,
        oidc_client_secret=client_secret,
        **fields,
    )
