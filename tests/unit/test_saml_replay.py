"""The replay cache: an assertion is accepted once, in this process and across processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from datetime import timedelta

import pytest
from django.utils import timezone

from orglogin.core.errors import ErrorCode
from orglogin.sso import replay
from orglogin.sso.errors import SsoError
from orglogin.sso.protocols.saml import SamlConnector
from orglogin.sso.protocols.saml_verify import REPLAY_NAMESPACE, replay_key
from tests.support.peers import require_peer
from tests.support.saml_idp import ResponseFactory, TestIdp, assertion_of, encode, make_connection
from tests.support.system import REPO

REQUEST_ID = "_request-0003"
REDIS_URL = "redis://127.0.0.1:6379/14"


def test_remember_once():
    until = timezone.now() + timedelta(minutes=5)
    assert replay.remember_once("t", "a", until) is True
    assert replay.remember_once("t", "a", until) is False
    assert replay.remember_once("t", "b", until) is True
    assert replay.remember_once("other", "a", until) is True
    assert replay.seen("t", "a") and not replay.seen("t", "zzz")


@pytest.mark.django_db
def test_second_use_of_a_response_is_refused():
    idp = TestIdp.default()
    connection = make_connection(idp)
    value = ResponseFactory(connection, idp).post_value(in_response_to=REQUEST_ID)
    connector = SamlConnector(connection)
    assert connector.parse_response(value, expected_request_id=REQUEST_ID)
    with pytest.raises(SsoError) as info:
        connector.parse_response(value, expected_request_id=REQUEST_ID)
    assert (info.value.code, info.value.check) == (ErrorCode.SSO_REPLAY, "replay")


@pytest.mark.django_db
def test_same_assertion_in_a_freshly_signed_response_is_refused():
    # Re-wrapping the signed assertion into a new (e.g. re-signed) Response keeps its ID.
    idp = TestIdp.default()
    connection = make_connection(idp)
    factory = ResponseFactory(connection, idp)
    root = factory.signed_tree(in_response_to=REQUEST_ID)
    assert SamlConnector(connection).parse_response(encode(root), expected_request_id=REQUEST_ID)
    other = factory.tree(in_response_to=REQUEST_ID)
    other.replace(assertion_of(other), assertion_of(root))
    with pytest.raises(SsoError) as info:
        SamlConnector(connection).parse_response(encode(other), expected_request_id=REQUEST_ID)
    assert info.value.check == "replay"


def _redis_reachable() -> bool:
    try:
        socket.create_connection(("127.0.0.1", 6379), timeout=0.5).close()
    except OSError:
        return False
    return True


OTHER_PROCESS = textwrap.dedent(
    """
    import sys
    from datetime import timedelta
    import django
    django.setup()
    from django.utils import timezone
    from orglogin.sso import replay
    from orglogin.sso.protocols.saml_verify import REPLAY_NAMESPACE, replay_key
    key = replay_key(int(sys.argv[1]), sys.argv[2])
    until = timezone.now() + timedelta(minutes=10)
    print("accepted" if replay.remember_once(REPLAY_NAMESPACE, key, until) else "replay")
    """
)


def _other_process(connection_id: int, assertion_id: str) -> str:
    """Another app process, with its own Django and its own Redis connection."""
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "orglogin.settings",
        "REDIS_URL": REDIS_URL,
        "DEBUG": "1",
        "BASE_URL": "http://testserver",
    }
    env.pop("DATABASE_URL", None)
    result = subprocess.run(
        [sys.executable, "-c", OTHER_PROCESS, str(connection_id), assertion_id],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.django_db
def test_replay_cache_holds_across_processes_on_redis(settings):
    if not _redis_reachable():
        require_peer("Redis on 127.0.0.1:6379 (apt-get install redis-server)")
    settings.CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "orglogin",  # as orglogin.settings configures it
        }
    }
    idp = TestIdp.default()
    connection = make_connection(idp)
    factory = ResponseFactory(connection, idp)
    connector = SamlConnector(connection)

    # 1. This process accepts a response; another process then sees its assertion as used.
    first = factory.signed_tree(in_response_to=REQUEST_ID)
    assert connector.parse_response(encode(first), expected_request_id=REQUEST_ID)
    assert _other_process(connection.pk, assertion_of(first).get("ID")) == "replay"

    # 2. Another process accepts an assertion first; this process then refuses it.
    second = factory.signed_tree(in_response_to=REQUEST_ID)
    assert _other_process(connection.pk, assertion_of(second).get("ID")) == "accepted"
    with pytest.raises(SsoError) as info:
        connector.parse_response(encode(second), expected_request_id=REQUEST_ID)
    assert (info.value.code, info.value.check) == (ErrorCode.SSO_REPLAY, "replay")
    assert replay.seen(REPLAY_NAMESPACE, replay_key(connection.pk, assertion_of(second).get("ID")))
