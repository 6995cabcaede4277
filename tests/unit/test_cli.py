"""The operator's commands (spec 4): exact names, one-line errors with exit status 2, and
nothing written on bad input."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from orglogin.audit.models import AuditEvent
from orglogin.organizations.models import Domain, Organization
from orglogin.sso.models import Connection, IdpCertificate
from tests.flows.sso_support import IDP_ENTITY_ID, IDP_SSO_URL, idp_metadata_xml, make_org
from tests.support.cli import assert_usage_error, run_cli

pytestmark = pytest.mark.django_db
REPO = Path(__file__).resolve().parents[2]


def state():
    return (
        Organization.objects.count(),
        Domain.objects.count(),
        Connection.objects.count(),
        IdpCertificate.objects.count(),
        AuditEvent.objects.count(),
    )


@pytest.fixture
def metadata_file(tmp_path):
    path = tmp_path / "idp-metadata.xml"
    path.write_text(idp_metadata_xml())
    return path


# --- org ------------------------------------------------------------------------------------


def test_org_add(capsys):
    code, out, err = run_cli(
        capsys,
        "org",
        "add",
        "acme",
        "--name",
        "Acme Corp",
        "--domain",
        "ACME.com",
        "--domain",
        "acme.org.",
    )
    assert (code, err) == (0, "")
    assert "acme" in out
    org = Organization.objects.get()
    assert (org.slug, org.name) == ("acme", "Acme Corp")
    assert sorted(org.domains.values_list("name", "verified")) == [
        ("acme.com", True),
        ("acme.org", True),
    ]


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["org", "add", "Bad_Slug", "--name", "X"], "invalid slug"),
        (["org", "add", "acme", "--name", "Again"], "already exists"),
        (["org", "add", "new", "--name", "X", "--domain", "not a domain"], "not a domain"),
        (
            ["org", "add", "new", "--name", "X", "--domain", "ok.test", "--domain", "acme.com"],
            "another organization",
        ),
        (["org", "add", "new"], "--name"),
        (["org", "add"], ""),
        (["org", "frobnicate", "x"], "frobnicate"),
        (["org"], ""),
        (["org", "add", "new", "--name", "X", "--bogus"], "--bogus"),
    ],
)
def test_org_bad_input(capsys, argv, fragment):
    make_org("acme", domains=["acme.com"])
    before = state()
    assert_usage_error(run_cli(capsys, *argv), fragment)
    assert state() == before


# --- sso add-saml / show -------------------------------------------------------------------


def test_sso_add_saml_from_file_and_show(capsys, metadata_file):
    make_org("acme", domains=["acme.test"])
    code, out, err = run_cli(
        capsys,
        "sso",
        "add-saml",
        "acme",
        "--metadata-file",
        str(metadata_file),
        "--allow-idp-initiated",
        "--name",
        "Okta",
    )
    assert (code, err) == (0, "")
    connection = Connection.objects.get()
    assert connection.name == "Okta" and connection.allow_idp_initiated
    assert (connection.idp_entity_id, connection.idp_sso_url) == (IDP_ENTITY_ID, IDP_SSO_URL)
    assert connection.sp_private_key.startswith("-----BEGIN PRIVATE KEY-----")
    assert connection.sp_certificate.startswith("-----BEGIN CERTIFICATE-----")
    assert connection.certificates.count() == 1
    base = f"http://testserver/sso/saml/{connection.public_id}"
    assert f"ACS URL: {base}/acs/" in out
    assert f"Metadata URL: {base}/metadata/" in out
    assert "SP entity ID: http" in out

    code, out, err = run_cli(capsys, "sso", "show", "acme", "--json")
    assert (code, err) == (0, "")
    data = json.loads(out)
    (shown,) = data["connections"]
    assert shown["protocol"] == "saml" and shown["name"] == "Okta"
    assert shown["acs_url"] == f"{base}/acs/"
    assert shown["metadata_url"] == f"{base}/metadata/"
    assert shown["sp_entity_id"]
    assert "sp_private_key" not in out and "PRIVATE KEY" not in out


def test_sso_show_includes_oidc_redirect_uri(capsys):
    org = make_org("acme")
    oidc = Connection.objects.create(
        organization=org,
        protocol="oidc",
        name="Entra",
        oidc_issuer="https://login.example/",
        oidc_client_id="cid",
        oidc_client_secret="s3cret",
    )
    code, out, err = run_cli(capsys, "sso", "show", "acme", "--json")
    assert code == 0
    (shown,) = json.loads(out)["connections"]
    assert shown["protocol"] == "oidc"
    assert shown["redirect_uri"] == f"http://testserver/sso/oidc/{oidc.public_id}/callback/"
    assert "s3cret" not in out


def test_sso_show_without_json_is_readable(capsys, metadata_file):
    make_org("acme")
    run_cli(capsys, "sso", "add-saml", "acme", "--metadata-file", str(metadata_file))
    code, out, _ = run_cli(capsys, "sso", "show", "acme")
    assert code == 0 and "acs_url: http://testserver/sso/saml/" in out


@pytest.mark.parametrize(
    "argv, fragment",
    [
        (["sso", "add-saml", "nobody", "--metadata-file", "{file}"], "no organization"),
        (["sso", "add-saml", "acme", "--metadata-file", "/nonexistent/meta.xml"], "does not exist"),
        (["sso", "add-saml", "acme", "--metadata-file", "{garbage}"], "metadata"),
        (["sso", "add-saml", "acme", "--metadata-file", "{nocert}"], "certificate"),
        (
            [
                "sso",
                "add-saml",
                "acme",
                "--metadata-file",
                "{file}",
                "--metadata-url",
                "https://idp.example/metadata",
            ],
            "not allowed with",
        ),
        (["sso", "add-saml", "acme"], "required"),
        (
            ["sso", "add-saml", "acme", "--metadata-file", "{file}", "--name", "Taken"],
            "already has a connection",
        ),
        (["sso", "add-saml", "acme", "--metadata-url", "http://127.0.0.1:9/md"], "metadata"),
        (["sso", "add-saml", "acme", "--metadata-url", "not a url"], "metadata"),
        (["sso", "show", "nobody", "--json"], "no organization"),
        (["sso", "frobnicate"], "frobnicate"),
        (["sso"], ""),
    ],
)
def test_sso_bad_input(capsys, tmp_path, metadata_file, argv, fragment):
    org = make_org("acme")
    Connection.objects.create(organization=org, protocol="saml", name="Taken")
    garbage = tmp_path / "garbage.xml"
    garbage.write_text("<not-metadata><!ENTITY x 'y'>")
    nocert = tmp_path / "nocert.xml"
    nocert.write_text(idp_metadata_xml(certificates=[]))
    argv = [a.format(file=metadata_file, garbage=garbage, nocert=nocert) for a in argv]
    before = state()
    assert_usage_error(run_cli(capsys, *argv), fragment)
    assert state() == before


# --- demo -----------------------------------------------------------------------------------


@pytest.fixture
def dev_settings(settings, tmp_path):
    settings.DEBUG = True
    settings.DEV_IDP_ENABLED = True
    settings.DEV_IDP_DIR = str(tmp_path / "dev-idp")
    return settings


def test_demo_seeds_once_and_is_idempotent(capsys, dev_settings):
    pytest.importorskip("orglogin.sso.protocols.devidp")
    from orglogin.programs.models import Invitation, Program

    code, out, err = run_cli(capsys, "demo")
    assert (code, err) == (0, ""), err
    assert "http://testserver/accounts/login/" in out and "acme.test" in out
    org = Organization.objects.get(slug="acme")
    assert org.name == "Acme Corp"
    assert org.domains.get().name == "acme.test" and org.domains.get().verified
    connection = org.connections.get()
    assert connection.idp_sso_url.startswith("http://testserver/dev-idp/")
    assert connection.certificates.count() == 1
    assert Program.objects.filter(organization=org).count() == 1
    first_link = [line for line in out.splitlines() if "/programs/invitation/" in line]

    code, out, err = run_cli(capsys, "demo")
    assert (code, err) == (0, "")
    assert Organization.objects.count() == 1 and Connection.objects.count() == 1
    assert Program.objects.count() == 1
    assert Invitation.objects.filter(status="pending").count() <= 1
    if first_link:
        assert first_link == [line for line in out.splitlines() if "/programs/invitation/" in line]


def test_demo_follows_a_new_base_url(capsys, dev_settings):
    pytest.importorskip("orglogin.sso.protocols.devidp")
    run_cli(capsys, "demo")
    dev_settings.BASE_URL = "http://127.0.0.1:9999"
    code, _, err = run_cli(capsys, "demo")
    assert code == 0, err
    assert Connection.objects.get().idp_sso_url.startswith("http://127.0.0.1:9999/dev-idp/")


def test_demo_refuses_without_debug(capsys, settings):
    settings.DEBUG = False
    before = state()
    assert_usage_error(run_cli(capsys, "demo"), "DEBUG")
    assert state() == before


def test_demo_refuses_without_the_dev_idp(capsys, dev_settings):
    dev_settings.DEV_IDP_ENABLED = False
    assert_usage_error(run_cli(capsys, "demo"), "DEV_IDP")


# --- the real entry point -----------------------------------------------------------------


def test_console_script_contract(tmp_path):
    """`.venv/bin/orglogin` in its own process: exit status 2 and one stderr line."""
    script = Path(sys.executable).with_name("orglogin")
    if not script.exists():
        pytest.skip("the orglogin console script is not installed")
    env = {
        **os.environ,
        "DEBUG": "1",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'cli.sqlite3'}",
        "BASE_URL": "http://127.0.0.1:8000",
    }
    env.pop("DJANGO_SETTINGS_MODULE", None)

    def orglogin(*argv):
        return subprocess.run(
            [str(script), *argv], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120
        )

    assert orglogin("migrate", "--noinput").returncode == 0
    ok = orglogin("org", "add", "acme", "--name", "Acme Corp", "--domain", "acme.com")
    assert ok.returncode == 0, ok.stderr
    again = orglogin("org", "add", "acme", "--name", "Acme Corp")
    assert again.returncode == 2
    assert again.stderr.strip().count("\n") == 0
    assert again.stderr.startswith("orglogin: error: ")
    wrong = orglogin("sso", "nonsense")
    assert wrong.returncode == 2 and wrong.stderr.count("\n") == 1
