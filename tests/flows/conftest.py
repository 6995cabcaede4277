"""Fixtures shared by the flow tests: the Acme org and its SAML connections."""

import pytest

from tests.flows.sso_support import make_org, make_saml_connection


@pytest.fixture
def org():
    return make_org("acme", domains=["acme.test"])


@pytest.fixture
def connection(org):
    """A SAML connection to a (not running) IdP: enough for flows fed an AssertedIdentity."""
    return make_saml_connection(org)


@pytest.fixture
def dev_connection(org, settings, tmp_path):
    """A SAML connection to the development IdP, which signs real responses in-process."""
    devidp = pytest.importorskip("orglogin.sso.protocols.devidp")
    settings.DEV_IDP_DIR = str(tmp_path / "dev-idp")
    return make_saml_connection(org, metadata_xml=devidp.dev_idp_metadata_xml(), name="Dev IdP")
