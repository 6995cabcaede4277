"""OIDC end to end against a real OpenID Provider (node oidc-provider 9), without a browser.

The provider's development log-in and consent pages are driven with plain HTTP; the final
redirect to our callback is captured (not followed) and its query handed to the connector.
"""

from __future__ import annotations

import uuid
from urllib.parse import parse_qsl, urlsplit

import pytest

from orglogin.core.errors import ErrorCode
from orglogin.sso.errors import SsoError
from orglogin.sso.protocols.oidc import OidcConnector, redirect_uri
from tests.support.fake_op import make_oidc_connection
from tests.support.oidc_provider import OidcProviderPeer, PeerUnavailable, node_missing_reason
from tests.support.peers import require_peer

pytestmark = [pytest.mark.peer_oidc, pytest.mark.django_db]

PUBLIC_ID = uuid.uuid4()
# What redirect_uri(connection) gives with the tests' BASE_URL (tests/envsetup.py).
REDIRECT_URI = f"http://testserver/sso/oidc/{PUBLIC_ID}/callback/"


@pytest.fixture(scope="module")
def oidc_peer(tmp_path_factory):
    reason = node_missing_reason()
    if reason:
        require_peer(reason)
    try:
        peer = OidcProviderPeer(
            tmp_path_factory.mktemp("oidc-provider"), redirect_uris=[REDIRECT_URI]
        ).start()
    except PeerUnavailable as exc:
        require_peer(str(exc))
    yield peer
    peer.stop()


@pytest.fixture
def connection(oidc_peer, settings):
    settings.BASE_URL = "http://testserver"
    connection = make_oidc_connection(
        oidc_peer.issuer, oidc_peer.client_id, oidc_peer.client_secret, public_id=PUBLIC_ID
    )
    assert redirect_uri(connection) == REDIRECT_URI
    return connection


def sign_in(peer, connection, account):
    connector = OidcConnector(connection)
    url, pending = connector.authorization_redirect()
    assert url.startswith(peer.issuer + "/auth?")
    callback = peer.log_in(url, account, redirect_uri=pending.redirect_uri)
    assert callback.startswith(REDIRECT_URI + "?")
    params = dict(parse_qsl(urlsplit(callback).query))
    return connector, params, pending


@pytest.mark.parametrize(
    ("account", "email", "names"),
    [
        ("jane", "jane@acme.test", ("Jane", "Doe", "Jane Doe")),
        ("sam", "sam@acme.test", ("Sam", "Lee", "Sam Lee")),
    ],
)
def test_login_end_to_end(oidc_peer, connection, account, email, names):
    connector, params, pending = sign_in(oidc_peer, connection, account)
    # oidc-provider sends RFC 9207 `iss` with the code: the connector checks it.
    assert params["iss"] == oidc_peer.issuer
    identity = connector.complete(params=params, pending=pending)
    assert identity.connection_id == connection.pk
    assert identity.subject == account
    assert identity.email == email
    assert identity.email_verified is True
    assert (identity.given_name, identity.family_name, identity.display_name) == names


def test_replayed_authorization_code_is_refused(oidc_peer, connection):
    connector, params, pending = sign_in(oidc_peer, connection, "jane")
    connector.complete(params=params, pending=pending)
    # The caller deleted pending after the first use: the replay is a session mismatch...
    with pytest.raises(SsoError) as info:
        connector.complete(params=params, pending=None)
    assert (info.value.code, info.value.check) == (ErrorCode.SSO_SESSION_MISMATCH, "state")
    # ...and even with pending kept, the provider refuses to redeem the code twice.
    with pytest.raises(SsoError) as info:
        connector.complete(params=params, pending=pending)
    assert info.value.check == "token_request"
    assert "invalid_grant" in info.value.detail


def test_callback_from_another_login_is_refused(oidc_peer, connection):
    connector, params, _ = sign_in(oidc_peer, connection, "jane")
    _, _, other_pending = sign_in(oidc_peer, connection, "sam")
    with pytest.raises(SsoError) as info:
        connector.complete(params=params, pending=other_pending)
    assert info.value.check == "state"


def test_wrong_code_verifier_is_refused_by_the_provider(oidc_peer, connection):
    from dataclasses import replace

    connector, params, pending = sign_in(oidc_peer, connection, "jane")
    with pytest.raises(SsoError) as info:
        connector.complete(params=params, pending=replace(pending, code_verifier="x" * 64))
    assert info.value.check == "token_request"
