"""`orglogin sso add-oidc SLUG --issuer URL --client-id ID --client-secret S [--name NAME]`
(spec 4) against a real HTTP provider on loopback (FakeOP): discovery checked before anything
is written, the redirect URI printed, the secret never echoed."""

from __future__ import annotations

import json

import pytest

from orglogin.audit.models import AuditEvent
from orglogin.organizations.models import Domain, Organization
from orglogin.sso.models import Connection
from orglogin.sso.protocols.oidc import OidcConnector, redirect_uri
from tests.support.cli import assert_usage_error, run_cli
from tests.support.fake_op import FakeOP
from tests.support.net import free_port

pytestmark = pytest.mark.django_db
SECRET = "s3cret/with:odd chars"


def state():
    return (Connection.objects.count(), AuditEvent.objects.count())


@pytest.fixture
def op():
    provider = FakeOP(client_secret=SECRET).start()
    yield provider
    provider.stop()


@pytest.fixture
def org():
    org = Organization.objects.create(slug="acme", name="Acme Corp")
    Domain.objects.create(organization=org, name="acme.test", verified=True)
    return org


def add_oidc(capsys, op, *extra):
    return run_cli(
        capsys,
        "sso",
        "add-oidc",
        "acme",
        "--issuer",
        op.issuer,
        "--client-id",
        op.client_id,
        "--client-secret",
        SECRET,
        *extra,
    )


def test_add_oidc_checks_discovery_and_prints_the_redirect_uri(capsys, op, org):
    code, out, err = add_oidc(capsys, op, "--name", "Acme Okta")
    assert (code, err) == (0, ""), err
    connection = Connection.objects.get()
    assert connection.protocol == "oidc" and connection.organization == org
    assert (connection.name, connection.oidc_issuer) == ("Acme Okta", op.issuer)
    assert (connection.oidc_client_id, connection.oidc_client_secret) == (op.client_id, SECRET)
    assert connection.oidc_scopes == "openid email profile" and connection.oidc_preset == ""
    assert op.requests["/.well-known/openid-configuration"] == 1
    uri = redirect_uri(connection)
    assert uri == f"http://testserver/sso/oidc/{connection.public_id}/callback/"
    assert f"Redirect URI (register it at the provider): {uri}" in out
    assert SECRET not in out

    event = AuditEvent.objects.get(event="sso.connection_changed")
    assert event.organization == org
    assert event.detail["action"] == "create_oidc_connection"
    assert event.detail["connection"] == str(connection.public_id)
    assert event.detail["issuer"] == op.issuer and event.detail["discovery_checked"] is True
    assert SECRET not in json.dumps(event.detail)

    code, out, _ = run_cli(capsys, "sso", "show", "acme", "--json")
    (shown,) = json.loads(out)["connections"]
    assert shown["redirect_uri"] == uri and shown["issuer"] == op.issuer
    assert SECRET not in out


def test_the_new_connection_starts_a_login(capsys, op, org):
    add_oidc(capsys, op)
    url, pending = OidcConnector(Connection.objects.get()).authorization_redirect()
    assert url.startswith(op.issuer + "/authorize?")
    assert pending.redirect_uri == redirect_uri(Connection.objects.get())


def test_preset_scopes_and_default_name(capsys, op, org):
    code, out, err = add_oidc(
        capsys, op, "--preset", "okta", "--scopes", "openid  email profile offline_access email"
    )
    assert (code, err) == (0, ""), err
    connection = Connection.objects.get()
    assert (connection.name, connection.oidc_preset) == ("Okta", "okta")
    assert connection.oidc_scopes == "openid email profile offline_access"
    assert "preset okta" in out


def test_google_preset_warns_when_the_org_has_no_verified_domain(capsys, op, org):
    Domain.objects.all().delete()
    code, out, _ = add_oidc(capsys, op, "--preset", "google")
    assert code == 0 and "has none yet" in out


def test_skip_discovery_stores_without_contacting_the_issuer(capsys, org):
    issuer = f"http://127.0.0.1:{free_port()}"
    code, out, err = run_cli(
        capsys,
        "sso",
        "add-oidc",
        "acme",
        "--issuer",
        issuer,
        "--client-id",
        "cid",
        "--client-secret",
        "s",
        "--skip-discovery",
    )
    assert (code, err) == (0, ""), err
    assert Connection.objects.get().oidc_issuer == issuer
    assert "Discovery was skipped" in out
    assert AuditEvent.objects.get().detail["discovery_checked"] is False


@pytest.mark.parametrize(
    "extra, fragment",
    [
        ({"issuer": "http://127.0.0.1:{dead}"}, "OIDC discovery failed for issuer"),
        ({"issuer": "{issuer}/"}, "issuer"),  # trailing slash: not the issuer it names
        ({"issuer": "http://idp.example"}, "must use https"),
        ({"issuer": "ftp://idp.example"}, "not an https URL"),
        ({"issuer": "not a url"}, "not an https URL"),
        ({"issuer": "https://idp.example?x=1"}, "query or fragment"),
        ({"issuer": "https://idp.example:99999"}, "not a URL"),
        ({"client-id": " "}, "client id is empty"),
        ({"client-secret": ""}, "client secret is empty"),
        ({"client-id": "c" * 513}, "client id is longer than 512"),
        ({"scopes": "email profile"}, "must include openid"),
        ({"preset": "azure"}, "invalid choice"),
        ({"name": "Taken"}, "already has a connection named 'Taken'"),
        (
            {"issuer": "https://login.microsoftonline.com/common/v2.0", "preset": "entra"},
            "tenant",
        ),
        ({"slug": "nobody"}, "no organization"),
        ({"client-secret": None}, "--client-secret"),
        ({"issuer": None}, "--issuer"),
    ],
)
def test_add_oidc_bad_input(capsys, op, org, extra, fragment):
    Connection.objects.create(organization=org, protocol="saml", name="Taken")
    values = {
        "issuer": op.issuer,
        "client-id": op.client_id,
        "client-secret": SECRET,
    }
    slug = extra.pop("slug", "acme")
    values.update(extra)
    argv = ["sso", "add-oidc", slug]
    for option, value in values.items():
        if value is not None:
            argv += [f"--{option}", value.format(dead=free_port(), issuer=op.issuer)]
    before = state()
    assert_usage_error(run_cli(capsys, *argv), fragment)
    assert state() == before


def test_issuer_mix_up_is_refused(capsys, op, org):
    op.discovery_override = {"issuer": "https://evil.example"}
    before = state()
    assert_usage_error(add_oidc(capsys, op), "discovery names issuer 'https://evil.example'")
    assert state() == before


def test_a_provider_without_usable_client_auth_is_refused(capsys, op, org):
    op.discovery_override = {"token_endpoint_auth_methods_supported": ["private_key_jwt"]}
    before = state()
    assert_usage_error(add_oidc(capsys, op), "neither client_secret_basic nor _post")
    assert state() == before
