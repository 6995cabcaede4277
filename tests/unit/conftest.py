"""Fixtures of the SAML protocol tests: a test IdP, a connection that trusts it, and a
response factory with a knob for every field (tests/support/saml_idp.py)."""

import pytest

from tests.support.saml_idp import ResponseFactory, TestIdp, make_connection


@pytest.fixture
def idp() -> TestIdp:
    return TestIdp.default()


@pytest.fixture
def connection(idp):
    """A SAML connection trusting `idp` (modules testing other protocols define their own)."""
    return make_connection(idp)


@pytest.fixture
def factory(connection, idp) -> ResponseFactory:
    return ResponseFactory(connection, idp)
