"""One way for a test to say "I need a peer that is not here".

Outside CI a missing peer (browser, IdP, database) is a visible SKIP whose reason says what
to install. With ``ORGLOGIN_REQUIRE_PEERS=1`` (set by ``.ci/run``) it is a failure, so CI
can never go green by skipping the tests that matter.
"""

from __future__ import annotations

import os
from typing import NoReturn

import pytest

REQUIRE_PEERS_ENV = "ORGLOGIN_REQUIRE_PEERS"
# Every skip that means "a peer is missing" carries this prefix; tests/conftest.py turns any
# such skip into a failure when peers are required, even one not raised through require_peer.
PEER_MISSING_PREFIX = "peer missing: "


def peers_required() -> bool:
    return os.environ.get(REQUIRE_PEERS_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def require_peer(reason: str) -> NoReturn:
    """Skip the current test because a peer is missing (fail instead when peers are required)."""
    message = PEER_MISSING_PREFIX + reason
    if peers_required():
        pytest.fail(f"{message} ({REQUIRE_PEERS_ENV} is set)", pytrace=False)
    pytest.skip(message)
