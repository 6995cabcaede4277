"""The test infrastructure itself: real SMTP, the peer-missing switch, Chromium, SimpleSAMLphp,
and the PostgreSQL + Redis leg. If these fail, every journey built on them is in doubt."""

from __future__ import annotations

import os
import smtplib
import subprocess
import sys
import textwrap
from email.message import EmailMessage

import pytest
import requests
from lxml import etree

from tests.support.peers import PEER_MISSING_PREFIX, REQUIRE_PEERS_ENV, require_peer
from tests.support.system import REPO

NS = {
    "md": "urn:oasis:names:tc:SAML:2.0:metadata",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
}


# --- mail ----------------------------------------------------------------------------------
def test_smtp_server_receives_parses_and_finds_links(smtp_server):
    message = EmailMessage()
    message["From"] = "noreply@orglogin.test"
    message["To"] = "Jane@Example.test"
    message["Subject"] = "Please confirm"
    message.set_content("Open http://127.0.0.1:8000/accounts/confirm-email/abc123/ to confirm.")
    message.add_alternative(
        '<p><a href="http://127.0.0.1:8000/accounts/confirm-email/abc123/">Confirm</a></p>',
        subtype="html",
    )
    with smtplib.SMTP(smtp_server.host, smtp_server.port, timeout=10) as client:
        client.send_message(message)

    mail = smtp_server.wait_for(to="jane@example.test", subject_contains="confirm")
    assert mail.subject == "Please confirm"
    assert mail.links == ["http://127.0.0.1:8000/accounts/confirm-email/abc123/"]
    with pytest.raises(AssertionError, match="no mail to"):
        smtp_server.wait_for(to="nobody@example.test", timeout=0.2)


def test_django_sends_real_smtp_through_smtp_mail(smtp_mail):
    from django.core.mail import send_mail

    send_mail("Hello", "Body http://example.test/x", None, ["learner@example.test"])
    mail = smtp_mail.wait_for(to="learner@example.test")
    assert mail.subject == "Hello"
    assert mail.links == ["http://example.test/x"]


# --- the peer-missing switch ---------------------------------------------------------------
def test_require_peer_skips_locally_and_fails_when_peers_are_required(monkeypatch):
    monkeypatch.delenv(REQUIRE_PEERS_ENV, raising=False)
    with pytest.raises(pytest.skip.Exception, match=PEER_MISSING_PREFIX):
        require_peer("no such thing")
    monkeypatch.setenv(REQUIRE_PEERS_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="no such thing"):
        require_peer("no such thing")


def test_conftest_hook_turns_any_peer_missing_skip_into_a_failure(tmp_path):
    probe = tmp_path / "test_probe.py"
    probe.write_text(
        textwrap.dedent(
            f"""
            import pytest
            from tests.support.peers import require_peer

            def test_through_helper():
                require_peer("probe peer")

            def test_raw_skip():
                pytest.skip({PEER_MISSING_PREFIX!r} + "raw probe peer")

            def test_ordinary_skip():
                pytest.skip("not about peers")
            """
        )
    )

    def run(required: bool) -> str:
        env = {k: v for k, v in os.environ.items() if k != REQUIRE_PEERS_ENV}
        env["PYTHONPATH"] = str(REPO)
        if required:
            env[REQUIRE_PEERS_ENV] = "1"
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            "-c",
            str(REPO / "pyproject.toml"),
            "--rootdir",
            str(REPO),
            "-p",
            "tests.conftest",
            "-q",
            str(probe),
        ]
        done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        return done.stdout + done.stderr

    assert "3 skipped" in run(required=False)
    assert "2 failed, 1 skipped" in run(required=True)


# --- installing the peers ---------------------------------------------------------------------
def _fake_needs(monkeypatch, system, installed: set[str]):
    needs = tuple(
        system.DebianNeed(need.name, need.packages, lambda n=need: n.packages[0] in installed)
        for need in system.DEBIAN_NEEDS
    )
    monkeypatch.setattr(system, "DEBIAN_NEEDS", needs)
    commands: list[list[str]] = []

    def fake_run(cmd, *, cwd=None):
        commands.append(cmd)
        if cmd[:2] == ["apt-get", "install"]:
            installed.update(cmd)
        return True

    monkeypatch.setattr(system, "_run", fake_run)
    monkeypatch.setattr(system.shutil, "which", lambda name: f"/usr/bin/{name}")
    return commands


def test_missing_debian_packages_are_installed_with_apt_get_as_root(monkeypatch):
    from tests.support import system

    commands = _fake_needs(monkeypatch, system, installed={"chromium"})
    monkeypatch.setattr(system.os, "geteuid", lambda: 0)
    assert system.ensure_debian_packages() == []
    assert commands == [
        ["apt-get", "update", "-q"],
        [
            "apt-get",
            "install",
            "-y",
            "-q",
            "--no-install-recommends",
            "php-cli",
            "php-mbstring",
            "php-xml",
            "simplesamlphp",
        ],
    ]


def test_missing_debian_packages_are_named_when_not_root(monkeypatch):
    from tests.support import system

    commands = _fake_needs(monkeypatch, system, installed=set())
    monkeypatch.setattr(system.os, "geteuid", lambda: 1000)
    hints = system.ensure_debian_packages()
    assert commands == []
    assert hints == [
        "headless Chromium (browser tests) is not installed: run "
        "`apt-get install -y --no-install-recommends chromium` as root",
        "SimpleSAMLphp (SAML IdP peer) is not installed: run `apt-get install -y "
        "--no-install-recommends simplesamlphp php-cli php-xml php-mbstring` as root",
    ]


# --- the browser ---------------------------------------------------------------------------
@pytest.mark.browser
def test_chromium_renders_the_live_app_and_saves_a_screenshot(live_app, page, screenshots):
    from django.conf import settings

    page.goto(live_app + "/")
    assert settings.PLATFORM_NAME in page.title()
    path = screenshots(page, "home")
    assert path.exists() and path.stat().st_size > 1000
    assert path.parent.name == "test_chromium_renders_the_live_app_and_saves_a_screenshot"


# --- SimpleSAMLphp -------------------------------------------------------------------------
@pytest.mark.peer_saml
def test_simplesamlphp_serves_metadata_and_an_sp_initiated_login(simplesamlphp):
    from tests.support.simplesamlphp import (
        NAMEID_PERSISTENT,
        RemoteSP,
        authn_request_url,
        login_at_idp,
    )

    sp_entity_id = "http://sp.orglogin.test/sso/saml/metadata/"
    acs_url = "http://sp.orglogin.test/sso/saml/acs/"
    simplesamlphp.set_remote_sps([RemoteSP(sp_entity_id, acs_url)])

    metadata = etree.fromstring(simplesamlphp.metadata_xml().encode())
    assert metadata.get("entityID") == simplesamlphp.entity_id
    certs = metadata.xpath("//md:KeyDescriptor//ds:X509Certificate/text()", namespaces=NS)
    assert {c.strip() for c in certs} == {simplesamlphp.idp_certificate_b64}
    sso = metadata.xpath("//md:SingleSignOnService/@Location", namespaces=NS)
    assert simplesamlphp.sso_url in sso

    jane = simplesamlphp.users["jane"]
    start = authn_request_url(
        simplesamlphp.sso_url,
        sp_entity_id=sp_entity_id,
        acs_url=acs_url,
        request_id="_orglogin-probe-1",
        relay_state="opaque-key",
    )
    post = login_at_idp(requests.Session(), start, jane)
    assert post.action == acs_url
    assert post.relay_state == "opaque-key"

    response = etree.fromstring(post.response_xml.encode())
    assert response.get("InResponseTo") == "_orglogin-probe-1"
    assert response.xpath("string(saml:Issuer)", namespaces=NS) == simplesamlphp.entity_id
    name_id = response.xpath("//saml:Assertion/saml:Subject/saml:NameID", namespaces=NS)[0]
    assert name_id.get("Format") == NAMEID_PERSISTENT
    assert name_id.text == jane.uid
    assert response.xpath("//saml:Assertion/ds:Signature", namespaces=NS)  # assertion signed
    attributes = {
        a.get("Name"): a.xpath("saml:AttributeValue/text()", namespaces=NS)
        for a in response.xpath("//saml:AttributeStatement/saml:Attribute", namespaces=NS)
    }
    assert attributes["mail"] == [jane.email]
    assert attributes["givenName"] == ["Jane"]
    assert attributes["eduPersonPrincipalName"] == ["jane@acme.test"]


@pytest.mark.peer_saml
def test_simplesamlphp_refuses_an_unknown_sp_with_an_error_page(simplesamlphp):
    from tests.support.simplesamlphp import authn_request_url, looks_like_error

    start = authn_request_url(
        simplesamlphp.sso_url, sp_entity_id="http://unknown.test/", acs_url="http://x.test/acs"
    )
    page = requests.get(start, timeout=10)
    assert page.status_code == 200  # its error pages answer 200: the content tells
    assert looks_like_error(page.text)


# --- the PostgreSQL + Redis leg --------------------------------------------------------------
@pytest.mark.postgres
@pytest.mark.django_db
def test_postgres_leg_uses_postgresql_and_redis_for_cache_and_sessions():
    from django.conf import settings
    from django.core.cache import cache, caches
    from django.db import connection

    assert connection.vendor == "postgresql"
    assert settings.SESSION_ENGINE == "django.contrib.sessions.backends.cache"
    cache.set("orglogin-leg-probe", "ok", 30)
    assert cache.get("orglogin-leg-probe") == "ok"
    assert type(caches["default"]).__name__ == "RedisCache"
