"""The OIDC relying party against a provider the tests control (tests/support/fake_op.py).

Each refusal names the `check` that must fire; the positive tests show what passes.
"""

from __future__ import annotations

import hashlib
import json
import time
from urllib.parse import parse_qsl, urlsplit

import pytest
from django.core.cache import cache

from orglogin.core.errors import ErrorCode
from orglogin.sso.errors import SsoError
from orglogin.sso.protocols import oidc
from orglogin.sso.protocols.oidc import OidcConnector, PendingAuthorization
from tests.support.fake_op import (
    ECKey,
    FakeOP,
    OKPKey,
    hmac_secret_from_public,
    make_oidc_connection,
    rsa_key,
    sign_jws,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def op():
    provider = FakeOP().start()
    yield provider
    provider.stop()


@pytest.fixture
def connection(op):
    return make_oidc_connection(op.issuer, op.client_id, op.client_secret)


def start(op, connection):
    connector = OidcConnector(connection)
    url, pending = connector.authorization_redirect()
    return connector, op.authorize(url), pending


def login(op, connection, **kwargs):
    connector, params, pending = start(op, connection)
    return connector.complete(params=params, pending=pending, **kwargs)


def refused(op, connection, check: str, code: ErrorCode | None = None) -> SsoError:
    with pytest.raises(SsoError) as info:
        login(op, connection)
    assert info.value.check == check, info.value
    if code is not None:
        assert info.value.code == code
    return info.value


# --- good flows ------------------------------------------------------------------------------


def test_good_flow_client_secret_basic(op, connection):
    identity = login(op, connection)
    assert identity.connection_id == connection.pk
    assert identity.subject == "user-1"
    assert identity.email == "jane@acme.test"
    assert identity.email_verified is True
    assert (identity.given_name, identity.family_name, identity.display_name) == (
        "Jane",
        "Doe",
        "Jane Doe",
    )
    assert identity.attributes["email"] == ("jane@acme.test",)
    assert "nonce" not in identity.attributes
    (request,) = op.token_requests
    assert request["authorization"].startswith("Basic ")
    assert "client_secret" not in request["form"]
    assert request["form"]["grant_type"] == "authorization_code"
    assert len(request["form"]["code_verifier"]) >= 43
    assert request["form"]["redirect_uri"] == oidc.redirect_uri(connection)
    # Everything the identity needs is in the ID token: no userinfo call.
    assert op.requests["/userinfo"] == 0


def test_good_flow_client_secret_post():
    provider = FakeOP(auth_method="client_secret_post").start()
    try:
        connection = make_oidc_connection(
            provider.issuer, provider.client_id, provider.client_secret
        )
        identity = login(provider, connection)
        assert identity.subject == "user-1"
        (request,) = provider.token_requests
        assert request["authorization"] is None
        assert request["form"]["client_id"] == provider.client_id
        assert request["form"]["client_secret"] == provider.client_secret
    finally:
        provider.stop()


def test_discovery_and_jwks_are_cached(op, connection):
    login(op, connection)
    login(op, connection)
    assert op.requests["/.well-known/openid-configuration"] == 1
    assert op.requests["/jwks"] == 1
    assert op.requests["/token"] == 2


def test_authorization_request_uses_pkce_s256_state_and_nonce(op, connection):
    connector = OidcConnector(connection)
    url, pending = connector.authorization_redirect()
    url2, pending2 = connector.authorization_redirect()
    query = dict(parse_qsl(urlsplit(url).query))
    assert query["response_type"] == "code"
    assert query["client_id"] == op.client_id
    assert query["redirect_uri"] == oidc.redirect_uri(connection) == pending.redirect_uri
    assert query["scope"] == "openid email profile"
    assert query["state"] == pending.state
    assert query["nonce"] == pending.nonce
    assert query["code_challenge_method"] == "S256"
    assert query["code_challenge"] == oidc._b64url(
        hashlib.sha256(pending.code_verifier.encode()).digest()
    )
    assert "code_verifier" not in query
    assert {pending.state, pending.nonce, pending.code_verifier}.isdisjoint(
        {pending2.state, pending2.nonce, pending2.code_verifier}
    )
    assert len(pending.state) >= 43 and len(pending.nonce) >= 43


def test_scopes_always_include_openid(op, connection):
    connection.oidc_scopes = "email profile groups"
    url, _ = OidcConnector(connection).authorization_redirect()
    assert dict(parse_qsl(urlsplit(url).query))["scope"] == "openid email profile groups"


# --- state, pending, replay ------------------------------------------------------------------


def test_wrong_state_is_refused(op, connection):
    connector, params, pending = start(op, connection)
    with pytest.raises(SsoError) as info:
        connector.complete(params={**params, "state": pending.state[:-1] + "x"}, pending=pending)
    assert (info.value.code, info.value.check) == (ErrorCode.SSO_SESSION_MISMATCH, "state")
    assert op.requests["/token"] == 0


def test_missing_state_is_refused(op, connection):
    connector, params, pending = start(op, connection)
    with pytest.raises(SsoError) as info:
        connector.complete(params={"code": params["code"]}, pending=pending)
    assert info.value.check == "state"


def test_missing_pending_is_a_session_mismatch(op, connection):
    connector, params, _ = start(op, connection)
    with pytest.raises(SsoError) as info:
        connector.complete(params=params, pending=None)
    assert (info.value.code, info.value.check) == (ErrorCode.SSO_SESSION_MISMATCH, "state")
    assert op.requests["/token"] == 0


def test_replayed_callback(op, connection):
    """The caller deletes pending on first use: a replay arrives with pending=None. Even a
    caller that kept it gets nothing: the provider redeems a code once."""
    connector, params, pending = start(op, connection)
    connector.complete(params=params, pending=pending)
    with pytest.raises(SsoError) as info:
        connector.complete(params=params, pending=None)
    assert info.value.check == "state"
    with pytest.raises(SsoError) as info:
        connector.complete(params=params, pending=pending)
    assert info.value.check == "token_request"


def test_pending_round_trips_through_json():
    pending = PendingAuthorization("s", "n", "v", "http://testserver/cb/", 12.5)
    data = json.loads(json.dumps(pending.to_dict()))
    assert PendingAuthorization.from_dict(data) == pending
    with pytest.raises(ValueError):
        PendingAuthorization.from_dict({"state": "s"})


def test_pending_too_old_is_refused(op, connection):
    connector, params, pending = start(op, connection)
    with pytest.raises(SsoError) as info:
        connector.complete(
            params=params, pending=pending, now=pending.created_at + oidc.PENDING_MAX_AGE + 1
        )
    assert (info.value.code, info.value.check) == (ErrorCode.SSO_PENDING_EXPIRED, "state")


def test_pending_of_another_connection_is_refused(op, connection):
    other = make_oidc_connection(op.issuer, op.client_id, op.client_secret, name="Other")
    _, params, pending = start(op, other)
    with pytest.raises(SsoError) as info:
        OidcConnector(connection).complete(params=params, pending=pending)
    assert (info.value.code, info.value.check) == (ErrorCode.SSO_SESSION_MISMATCH, "state")


def test_redirect_uri_reads_base_url_at_call_time(connection, settings):
    settings.BASE_URL = "https://learn.example.com/"
    assert oidc.redirect_uri(connection) == (
        f"https://learn.example.com/sso/oidc/{connection.public_id}/callback/"
    )


# --- the provider's answers ------------------------------------------------------------------


def test_error_response_from_provider(op, connection):
    connector, params, pending = start(op, connection)
    with pytest.raises(SsoError) as info:
        connector.complete(
            params={
                "state": params["state"],
                "error": "access_denied",
                "error_description": "User is not assigned to the app",
            },
            pending=pending,
        )
    assert (info.value.code, info.value.check) == (ErrorCode.SSO_IDP_ERROR, "error_response")
    assert "access_denied" in info.value.detail
    assert op.requests["/token"] == 0


def test_callback_without_code(op, connection):
    connector, params, pending = start(op, connection)
    with pytest.raises(SsoError) as info:
        connector.complete(params={"state": params["state"]}, pending=pending)
    assert info.value.check == "token_request"


def test_token_endpoint_error(op, connection):
    op.responses["/token"] = (400, {"error": "invalid_grant"})
    error = refused(op, connection, "token_request", ErrorCode.SSO_RESPONSE_INVALID)
    assert "invalid_grant" in error.detail


def test_wrong_client_secret_is_a_token_request_failure(op):
    connection = make_oidc_connection(op.issuer, op.client_id, "not-the-secret")
    refused(op, connection, "token_request")


def test_token_response_without_id_token(op, connection):
    op.responses["/token"] = (200, {"access_token": "at-x", "token_type": "Bearer"})
    refused(op, connection, "id_token")


def test_token_endpoint_not_json(op, connection):
    op.responses["/token"] = (200, "<html>oops</html>")
    refused(op, connection, "token_request")


# --- issuer (mix-up) -------------------------------------------------------------------------


def test_discovery_naming_another_issuer_is_refused(op, connection):
    op.discovery_override = {"issuer": "http://127.0.0.1:1"}
    with pytest.raises(SsoError) as info:
        oidc.discover(op.issuer)
    assert info.value.check == "issuer"
    with pytest.raises(SsoError) as info:
        OidcConnector(connection).authorization_redirect()
    assert info.value.check == "issuer"
    # A refused document is not cached.
    op.discovery_override = {}
    assert oidc.discover(op.issuer).issuer == op.issuer


def test_discovery_issuer_compared_exactly(op):
    with pytest.raises(SsoError) as info:
        oidc.discover(op.issuer + "/")
    assert info.value.check == "issuer"


def test_id_token_from_another_issuer_is_refused(op, connection):
    op.claims_override = {"iss": "http://127.0.0.1:1"}
    refused(op, connection, "issuer", ErrorCode.SSO_RESPONSE_INVALID)


def test_callback_iss_parameter_rfc9207(op, connection):
    connector, params, pending = start(op, connection)
    with pytest.raises(SsoError) as info:
        connector.complete(params={**params, "iss": "http://127.0.0.1:1"}, pending=pending)
    assert info.value.check == "issuer"
    # A provider that announces `iss` must send it.
    cache.clear()
    op.discovery_override = {"authorization_response_iss_parameter_supported": True}
    connector, params, pending = start(op, connection)
    with pytest.raises(SsoError) as info:
        connector.complete(params=params, pending=pending)
    assert info.value.check == "issuer"
    connector, params, pending = start(op, connection)
    identity = connector.complete(params={**params, "iss": op.issuer}, pending=pending)
    assert identity.subject == "user-1"


def test_plain_http_endpoints_refused_off_loopback(settings):
    settings.DEBUG = False
    doc = {
        "issuer": "https://idp.example.com",
        "authorization_endpoint": "https://idp.example.com/auth",
        "token_endpoint": "http://idp.example.com/token",
        "jwks_uri": "https://idp.example.com/jwks",
    }
    with pytest.raises(SsoError) as info:
        oidc.ProviderMetadata.from_document("https://idp.example.com", doc)
    assert info.value.check == "discovery"


def test_unreachable_provider_is_a_discovery_failure(op):
    op.responses["/.well-known/openid-configuration"] = (503, {"error": "down"})
    with pytest.raises(SsoError) as info:
        oidc.discover(op.issuer)
    assert info.value.check == "discovery"


def test_jwks_failure(op, connection):
    op.responses["/jwks"] = (500, "oops")
    refused(op, connection, "jwks")


def test_token_endpoint_without_secret_methods_is_refused(op, connection):
    op.discovery_override = {"token_endpoint_auth_methods_supported": ["private_key_jwt"]}
    connector, params, pending = start(op, connection)
    with pytest.raises(SsoError) as info:
        connector.complete(params=params, pending=pending)
    assert info.value.check == "discovery"
    assert op.requests["/token"] == 0


def test_private_members_of_a_published_jwk_are_dropped(op, connection):
    op.jwks = lambda: {"keys": [op.signing_key.as_dict(private=True)]}
    assert login(op, connection).subject == "user-1"
    cached = cache.get(oidc._cache_key("jwks", op.issuer + "/jwks"))
    assert cached and "d" not in cached[0] and "p" not in cached[0]


# --- audience --------------------------------------------------------------------------------


def test_wrong_audience_is_refused(op, connection):
    op.claims_override = {"aud": "another-client"}
    refused(op, connection, "audience")


def test_audience_list_containing_us_needs_azp(op, connection):
    op.claims_override = {"aud": [op.client_id, "another-client"]}
    refused(op, connection, "azp")


def test_audience_list_with_wrong_azp(op, connection):
    op.claims_override = {"aud": [op.client_id, "another-client"], "azp": "another-client"}
    refused(op, connection, "azp")


def test_audience_list_with_our_azp_passes(op, connection):
    op.claims_override = {"aud": [op.client_id, "another-client"], "azp": op.client_id}
    assert login(op, connection).subject == "user-1"


def test_single_audience_with_foreign_azp_is_refused(op, connection):
    op.claims_override = {"azp": "another-client"}
    refused(op, connection, "azp")


# --- time ------------------------------------------------------------------------------------


def test_expired_id_token_is_refused(op, connection):
    op.claims_override = {"exp": int(time.time()) - oidc.CLOCK_SKEW - 5}
    refused(op, connection, "expired", ErrorCode.SSO_CLOCK_SKEW)


def test_expired_within_skew_is_accepted(op, connection):
    op.claims_override = {"exp": int(time.time()) - oidc.CLOCK_SKEW + 30}
    assert login(op, connection).subject == "user-1"


def test_missing_exp_is_refused(op, connection):
    op.claims_override = {"exp": None}
    refused(op, connection, "expired")


def test_iat_in_the_future_is_refused(op, connection):
    op.claims_override = {"iat": int(time.time()) + oidc.CLOCK_SKEW + 30}
    refused(op, connection, "iat", ErrorCode.SSO_CLOCK_SKEW)


def test_iat_slightly_ahead_within_skew_is_accepted(op, connection):
    op.claims_override = {"iat": int(time.time()) + 60}
    assert login(op, connection).subject == "user-1"


def test_nbf_in_the_future_is_refused(op, connection):
    op.claims_override = {"nbf": int(time.time()) + oidc.CLOCK_SKEW + 30}
    refused(op, connection, "iat")


# --- nonce -----------------------------------------------------------------------------------


def test_missing_nonce_is_refused(op, connection):
    op.claims_override = {"nonce": None}
    refused(op, connection, "nonce")


def test_wrong_nonce_is_refused(op, connection):
    op.claims_override = {"nonce": "a-nonce-from-another-login"}
    refused(op, connection, "nonce")


# --- header, algorithm, keys -----------------------------------------------------------------


def test_alg_none_is_refused(op, connection):
    op.header_override = {"alg": "none"}
    refused(op, connection, "alg", ErrorCode.SSO_SIGNATURE)


def test_hs256_signed_with_the_providers_public_key_is_refused(op, connection):
    secret = hmac_secret_from_public(op.signing_key)
    op.id_token = lambda op, claims: sign_jws(
        {"alg": "HS256", "typ": "JWT", "kid": op.signing_key.kid}, claims, secret
    )
    refused(op, connection, "alg", ErrorCode.SSO_SIGNATURE)


@pytest.mark.parametrize("member", ["jwk", "jku", "x5u", "x5c"])
def test_key_carried_in_the_header_is_refused(op, connection, member):
    attacker = rsa_key(5, "attacker")
    value = {
        "jwk": attacker.as_dict(private=False),
        "jku": "http://127.0.0.1:1/jwks",
        "x5u": "http://127.0.0.1:1/cert.pem",
        "x5c": ["MIIBfake"],
    }[member]
    op.id_token = lambda op, claims: sign_jws(
        {"alg": "RS256", "kid": "attacker", member: value}, claims, attacker
    )
    refused(op, connection, "header_key", ErrorCode.SSO_SIGNATURE)


def test_unknown_crit_is_refused(op, connection):
    op.header_override = {"crit": ["urn:example:unknown"], "urn:example:unknown": True}
    refused(op, connection, "crit")


def test_b64_false_is_refused(op, connection):
    op.header_override = {"crit": ["b64"], "b64": False}
    refused(op, connection, "crit")


def test_access_token_typ_is_refused(op, connection):
    op.header_override = {"typ": "at+jwt"}
    refused(op, connection, "id_token")


def test_tampered_payload_is_refused(op, connection):
    def tampered(op, claims):
        header, _, signature = sign_jws(
            {"alg": "RS256", "kid": op.signing_key.kid}, claims, op.signing_key
        ).split(".")
        forged = sign_jws({"alg": "none"}, {**claims, "sub": "admin"}, None).split(".")[1]
        return f"{header}.{forged}.{signature}"

    op.id_token = tampered
    refused(op, connection, "signature", ErrorCode.SSO_SIGNATURE)


def test_attackers_key_under_the_providers_kid_is_refused(op, connection):
    attacker = rsa_key(5, op.signing_key.kid)
    op.id_token = lambda op, claims: sign_jws(
        {"alg": "RS256", "kid": op.signing_key.kid}, claims, attacker
    )
    refused(op, connection, "signature")
    assert op.requests["/jwks"] == 1  # a known kid with a bad signature is no reason to refetch


def test_key_rotation_accepted_after_one_refetch(op, connection):
    login(op, connection)
    assert op.requests["/jwks"] == 1
    op.rotate_key()
    assert login(op, connection).subject == "user-1"
    assert op.requests["/jwks"] == 2
    login(op, connection)
    assert op.requests["/jwks"] == 2  # the refreshed JWKS is cached


def test_unknown_kid_not_in_the_providers_jwks_is_refused(op, connection):
    login(op, connection)
    op.rotate_key(publish=False, keep_old=True)  # signs with a key the JWKS does not have
    refused(op, connection, "kid", ErrorCode.SSO_SIGNATURE)
    assert op.requests["/jwks"] == 2


def test_jwks_refetch_is_rate_limited(op, connection):
    login(op, connection)
    op.rotate_key(publish=False, keep_old=True)
    refused(op, connection, "kid")
    refused(op, connection, "kid")
    refused(op, connection, "kid")
    assert op.requests["/jwks"] == 2  # one refetch per provider per JWKS_REFETCH_INTERVAL
    # Even the provider's real new key waits for the interval to pass...
    op.published_keys.append(op.signing_key)
    refused(op, connection, "kid")
    assert op.requests["/jwks"] == 2
    # ...and is accepted once it has.
    cache.delete(oidc._cache_key("jwks-refetch", op.issuer + "/jwks"))
    assert login(op, connection).subject == "user-1"
    assert op.requests["/jwks"] == 3


def test_no_kid_uses_the_fitting_key(op, connection):
    op.header_override = {"kid": None}
    assert login(op, connection).subject == "user-1"


def test_key_published_for_another_alg_is_not_used(op, connection):
    # The JWK says alg RS256; a token claiming RS384 under its kid finds no fitting key.
    op.published_keys = [
        type(op.signing_key).import_key(
            op.signing_key.as_dict(private=False), parameters={"alg": "RS256"}
        )
    ]
    op.alg = "RS384"
    refused(op, connection, "kid")


@pytest.mark.parametrize(
    ("alg", "make_key"),
    [
        ("ES256", lambda: ECKey.generate_key("P-256", parameters={"kid": "ec-1"})),
        ("ES384", lambda: ECKey.generate_key("P-384", parameters={"kid": "ec-2"})),
        ("EdDSA", lambda: OKPKey.generate_key("Ed25519", parameters={"kid": "ed-1"})),
        ("PS256", lambda: rsa_key(1, "ps-1")),
        ("RS512", lambda: rsa_key(1, "rs-1")),
    ],
)
def test_other_allowed_algorithms(op, connection, alg, make_key):
    key = make_key()
    op.signing_key = key
    op.published_keys = [key]
    op.alg = alg
    assert login(op, connection).subject == "user-1"


def test_es256_token_under_an_rsa_kid_is_refused(op, connection):
    ec = ECKey.generate_key("P-256", parameters={"kid": op.signing_key.kid})
    op.id_token = lambda op, claims: sign_jws(
        {"alg": "ES256", "kid": op.signing_key.kid}, claims, ec
    )
    refused(op, connection, "kid")


# --- userinfo --------------------------------------------------------------------------------


def test_userinfo_fills_claims_missing_from_the_id_token(op, connection):
    op.userinfo_only = {"email", "email_verified"}
    identity = login(op, connection)
    assert op.requests["/userinfo"] == 1
    assert identity.email == "jane@acme.test"
    assert identity.email_verified is True


def test_userinfo_for_another_subject_is_refused(op, connection):
    op.userinfo_only = {"email", "email_verified"}
    op.userinfo_override = {"sub": "someone-else"}
    refused(op, connection, "userinfo_sub")


def test_userinfo_never_overrides_the_id_token(op, connection):
    op.userinfo_only = {"given_name", "family_name", "name"}
    op.userinfo_override = {"email": "boss@acme.test", "given_name": "Janet"}
    identity = login(op, connection)
    assert identity.email == "jane@acme.test"
    assert identity.given_name == "Janet"


def test_userinfo_failure_is_refused(op, connection):
    op.userinfo_only = {"email"}
    op.responses["/userinfo"] = (500, {"error": "server_error"})
    refused(op, connection, "userinfo")


# --- email -----------------------------------------------------------------------------------


def test_email_verified_false(op, connection):
    op.account["email_verified"] = False
    identity = login(op, connection)
    assert identity.email == "jane@acme.test"
    assert identity.email_verified is False


@pytest.mark.parametrize("value", ["true", 1, "True", None])
def test_email_verified_counts_only_as_json_true(op, connection, value):
    op.account["email_verified"] = value
    op.responses["/userinfo"] = (200, {"sub": "user-1"})  # no help from userinfo either
    assert login(op, connection).email_verified is False


def test_missing_email_is_refused(op, connection):
    op.account["email"] = None
    refused(op, connection, "email", ErrorCode.SSO_MISSING_ATTRIBUTES)


def test_malformed_email_is_refused(op, connection):
    op.account["email"] = "not an email"
    refused(op, connection, "email", ErrorCode.SSO_MISSING_ATTRIBUTES)


def test_email_mapped_to_another_claim_is_never_verified(op, connection):
    connection.attribute_mapping = {"email": "work_mail"}
    op.account["work_mail"] = "jane.doe@acme.test"
    identity = login(op, connection)
    assert identity.email == "jane.doe@acme.test"
    assert identity.email_verified is False


# --- mapping and presets ---------------------------------------------------------------------


def test_attribute_mapping(op, connection):
    connection.attribute_mapping = {
        "given_name": "first",
        "family_name": "last",
        "display_name": "cn",
        "subject": "employee_id",
    }
    op.account.update(first="J.", last="D.", cn="J. D.", employee_id="E-42")
    identity = login(op, connection)
    assert (identity.subject, identity.given_name, identity.family_name) == ("E-42", "J.", "D.")
    assert identity.display_name == "J. D."


@pytest.mark.parametrize("claim", ["email", "preferred_username", "upn"])
def test_subject_never_mapped_to_an_email(op, connection, claim):
    connection.attribute_mapping = {"subject": claim}
    op.account.setdefault(claim, "jane@acme.test")
    refused(op, connection, "subject")


def test_missing_sub_is_refused(op, connection):
    op.claims_override = {"sub": None}
    refused(op, connection, "subject")


def test_entra_uses_oid_as_subject(op, connection):
    connection.oidc_preset = "entra"
    op.account.update(sub="pairwise-sub-for-this-app", oid="00000000-0000-0000-0000-0000000000aa")
    assert login(op, connection).subject == "00000000-0000-0000-0000-0000000000aa"


def test_entra_without_oid_falls_back_to_sub(op, connection):
    connection.oidc_preset = "entra"
    assert login(op, connection).subject == "user-1"


def test_entra_xms_edov_counts_as_verified(op, connection):
    connection.oidc_preset = "entra"
    op.account.update(email_verified=None, xms_edov=True)
    op.responses["/userinfo"] = (200, {"sub": "user-1"})
    assert login(op, connection).email_verified is True


def test_google_hd_in_the_orgs_verified_domains(op, connection):
    connection.oidc_preset = "google"
    op.account["hd"] = "acme.test"
    assert login(op, connection).subject == "user-1"


def test_google_hd_of_another_domain_is_refused(op, connection):
    connection.oidc_preset = "google"
    op.account["hd"] = "evil.test"
    refused(op, connection, "hd")


def test_google_hd_of_an_unverified_domain_is_refused(op, connection):
    from orglogin.organizations.models import Domain

    Domain.objects.create(organization=connection.organization, name="pending.test")
    connection.oidc_preset = "google"
    op.account["hd"] = "pending.test"
    refused(op, connection, "hd")


def test_google_consumer_account_without_hd_is_refused(op, connection):
    connection.oidc_preset = "google"
    op.userinfo_override = {"hd": "acme.test"}  # hd only counts from the ID token
    op.userinfo_only = {"email_verified"}
    refused(op, connection, "hd")
    assert op.requests["/userinfo"] == 1


def test_unknown_preset_is_a_configuration_error(op, connection):
    connection.oidc_preset = "keycloak"
    with pytest.raises(SsoError) as info:
        OidcConnector(connection)
    assert (info.value.code, info.value.check) == (ErrorCode.SSO_NOT_CONFIGURED, "configuration")


def test_fresh_login_adds_prompt_login_only_when_asked(connection):
    connector = OidcConnector(connection)
    plain, _ = connector.authorization_redirect()
    forced, _ = connector.authorization_redirect(force_login=True)
    assert "prompt" not in dict(parse_qsl(urlsplit(plain).query))
    assert dict(parse_qsl(urlsplit(forced).query))["prompt"] == "login"


# --- fresh login (spec 2.2.1): prompt=login + max_age=0, and auth_time proves it ---------------


def test_fresh_login_sends_max_age_zero_and_records_the_requirement(connection):
    connector = OidcConnector(connection)
    plain, plain_pending = connector.authorization_redirect(now=1_000.0)
    forced, forced_pending = connector.authorization_redirect(force_login=True, now=2_000.0)
    query = dict(parse_qsl(urlsplit(forced).query))
    assert (query["prompt"], query["max_age"]) == ("login", "0")
    assert "max_age" not in dict(parse_qsl(urlsplit(plain).query))
    assert forced_pending.require_auth_after == forced_pending.created_at == 2_000.0
    assert plain_pending.require_auth_after is None


def fresh_login(op, connection, **claims):
    """A force_login round trip; `claims` go into the ID token (None drops one)."""
    connector = OidcConnector(connection)
    url, pending = connector.authorization_redirect(force_login=True)
    op.claims_override = claims
    return connector.complete(params=op.authorize(url), pending=pending), pending


def refused_fresh(op, connection, code: ErrorCode, **claims) -> SsoError:
    with pytest.raises(SsoError) as info:
        fresh_login(op, connection, **claims)
    assert (info.value.code, info.value.check) == (code, "auth_time"), info.value
    return info.value


def test_fresh_login_without_auth_time_is_refused(op, connection):
    refused_fresh(op, connection, ErrorCode.SSO_REAUTH_REQUIRED, auth_time=None)


def test_fresh_login_with_an_old_auth_time_is_refused(op, connection):
    error = refused_fresh(
        op, connection, ErrorCode.SSO_REAUTH_REQUIRED, auth_time=int(time.time()) - 3600
    )
    assert "earlier session" in error.detail


def test_fresh_login_with_auth_time_just_beyond_the_skew_is_refused(op, connection):
    refused_fresh(
        op,
        connection,
        ErrorCode.SSO_REAUTH_REQUIRED,
        auth_time=int(time.time()) - oidc.CLOCK_SKEW - 2,
    )


@pytest.mark.parametrize("bad", ["1700000000", True, [1], {"t": 1}])
def test_fresh_login_with_a_non_numeric_auth_time_is_refused(op, connection, bad):
    refused_fresh(op, connection, ErrorCode.SSO_REAUTH_REQUIRED, auth_time=bad)


def test_fresh_login_with_auth_time_in_the_future_is_refused(op, connection):
    refused_fresh(op, connection, ErrorCode.SSO_CLOCK_SKEW, auth_time=int(time.time()) + 600)


def test_fresh_login_with_a_fresh_auth_time_is_accepted(op, connection):
    identity, pending = fresh_login(op, connection, auth_time=int(time.time()))
    assert identity.subject == "user-1"
    # Within the skew before the request (the provider's clock a little behind ours).
    identity, pending = fresh_login(op, connection, auth_time=int(time.time()) - 100)
    assert identity.subject == "user-1"


def test_auth_time_is_not_required_without_force_login(op, connection):
    op.claims_override = {"auth_time": int(time.time()) - 86_400}
    assert login(op, connection).subject == "user-1"
    op.claims_override = {}
    assert login(op, connection).subject == "user-1"  # no auth_time at all


def test_pending_authorization_round_trips_and_reads_older_session_dicts(connection):
    _, pending = OidcConnector(connection).authorization_redirect(force_login=True)
    assert PendingAuthorization.from_dict(pending.to_dict()) == pending
    older = pending.to_dict()
    del older["require_auth_after"]  # written before the field existed
    assert PendingAuthorization.from_dict(older).require_auth_after is None
    with pytest.raises(ValueError):
        PendingAuthorization.from_dict({**pending.to_dict(), "require_auth_after": "soon"})
