"""The development IdP: real metadata, real signed responses, the same ACS checks."""

from __future__ import annotations

import html
import importlib
import re
from urllib.parse import urlsplit

import pytest
from django.http import Http404
from django.test import RequestFactory
from django.urls import clear_url_caches

from orglogin.sso.errors import SsoError
from orglogin.sso.models import IdpCertificate
from orglogin.sso.protocols import devidp
from orglogin.sso.protocols.saml import SamlConnector, parse_idp_metadata
from tests.support.saml_idp import fingerprint, make_connection

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def key_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("dev-idp")


@pytest.fixture(autouse=True)
def _dev_idp_keys(settings, key_dir):
    settings.DEV_IDP_DIR = str(key_dir)


def dev_connection(**fields):
    """What the demo seeding does: a connection made from the dev IdP's metadata."""
    metadata = parse_idp_metadata(devidp.dev_idp_metadata_xml())
    connection = make_connection(
        certificates=[],
        idp_entity_id=metadata.entity_id,
        idp_sso_url=metadata.sso_url,
        idp_wants_signed_requests=metadata.wants_signed_requests,
        **fields,
    )
    for pem in metadata.certificates:
        IdpCertificate.objects.create(
            connection=connection, pem=pem, sha256_fingerprint=fingerprint(pem), source="metadata"
        )
    return connection


def test_metadata_parses_and_is_stable(key_dir):
    first = parse_idp_metadata(devidp.dev_idp_metadata_xml())
    assert first.entity_id == "http://testserver/dev-idp/metadata/"
    assert first.sso_url == "http://testserver/dev-idp/sso/"
    assert first.wants_signed_requests is True
    assert len(first.certificates) == 1
    assert (key_dir / "idp.pem").stat().st_mode & 0o077 == 0  # private key not world-readable
    devidp._keypair_cache.clear()  # as after a restart: same key from the file
    assert parse_idp_metadata(devidp.dev_idp_metadata_xml()).certificates == first.certificates


def test_a_response_it_builds_passes_parse_response():
    connection = dev_connection()
    value = devidp.build_signed_response(
        connection,
        email="jane@acme.test",
        given_name="Jane",
        family_name="Doe",
        in_response_to="_req-dev-1",
    )
    identity = SamlConnector(connection).parse_response(value, expected_request_id="_req-dev-1")
    assert identity.email == "jane@acme.test"
    assert identity.subject == devidp.persistent_name_id("jane@acme.test")
    assert (identity.given_name, identity.family_name, identity.display_name) == (
        "Jane",
        "Doe",
        "Jane Doe",
    )


def test_name_id_is_stable_and_opaque():
    assert devidp.persistent_name_id("Jane@Acme.test") == devidp.persistent_name_id(
        "jane@acme.test"
    )
    assert devidp.persistent_name_id("jane@acme.test") != devidp.persistent_name_id("sam@acme.test")
    assert "jane" not in devidp.persistent_name_id("jane@acme.test")


def _login_url(connection, relay_state="relay-key-1"):
    url, request_id = SamlConnector(connection).authn_request_redirect(relay_state=relay_state)
    parts = urlsplit(url)
    assert parts.path == "/dev-idp/sso/"
    return f"{parts.path}?{parts.query}", parts.query, request_id


def test_full_round_trip_through_the_pages(client):
    connection = dev_connection()
    path, query, request_id = _login_url(connection)

    page = client.get(path)
    assert page.status_code == 200
    text = page.content.decode()
    assert "Development IdP — pick a test user" in text
    assert "DEVELOPMENT ONLY" in text
    assert "jane@acme.test" in text and "sam@acme.test" in text

    posted = client.post("/dev-idp/sso/", {"request": query, "user": "sam@acme.test"})
    assert posted.status_code == 200
    body = posted.content.decode()
    action = html.unescape(
        re.search(r'<form id="devidp-post" method="post" action="([^"]+)"', body)[1]
    )
    saml_response = html.unescape(re.search(r'name="SAMLResponse" value="([^"]+)"', body)[1])
    relay_state = html.unescape(re.search(r'name="RelayState" value="([^"]*)"', body)[1])
    assert action == SamlConnector(connection).endpoints.acs_url
    assert relay_state == "relay-key-1"
    assert '<button type="submit">Continue</button>' in body  # works without the script
    assert ".submit()" in body

    identity = SamlConnector(connection).parse_response(
        saml_response, expected_request_id=request_id
    )
    assert (identity.email, identity.full_name) == ("sam@acme.test", "Sam Lee")


def test_custom_user(client):
    connection = dev_connection()
    _, query, request_id = _login_url(connection)
    posted = client.post(
        "/dev-idp/sso/",
        {"request": query, "user": "custom", "email": "alex@acme.test", "name": "Alex  Smith"},
    )
    saml_response = html.unescape(
        re.search(r'name="SAMLResponse" value="([^"]+)"', posted.content.decode())[1]
    )
    identity = SamlConnector(connection).parse_response(
        saml_response, expected_request_id=request_id
    )
    assert (identity.email, identity.given_name, identity.family_name) == (
        "alex@acme.test",
        "Alex",
        "Smith",
    )
    bad = client.post("/dev-idp/sso/", {"request": query, "user": "custom", "email": "nope"})
    assert bad.status_code == 400


def test_tampered_request_signature_is_refused(client):
    connection = dev_connection()
    path, _, _ = _login_url(connection)
    tampered = path.replace("RelayState=relay-key-1", "RelayState=relay-key-2")
    page = client.get(tampered)
    assert page.status_code == 400
    assert "signature does not verify" in page.content.decode()


def test_unsigned_request_is_refused_when_the_connection_signs(client):
    connection = dev_connection()
    path, _, _ = _login_url(connection)
    unsigned = re.sub(r"&(SigAlg|Signature)=[^&]*", "", path)
    assert client.get(unsigned).status_code == 400


def test_request_from_a_connection_of_another_idp_is_refused(client):
    connection = make_connection(idp_sso_url="http://testserver/dev-idp/sso/")
    path, _, _ = _login_url(connection)
    page = client.get(path)
    assert page.status_code == 400
    assert "no enabled SAML connection" in page.content.decode()


def test_request_from_a_disabled_connection_is_refused():
    connection = dev_connection()
    _, query, _ = _login_url(connection)
    connection.enabled = False
    connection.save()
    with pytest.raises(devidp.DevIdpError):
        devidp.parse_authn_request(query)


def test_missing_or_garbage_request_is_refused(client):
    assert client.get("/dev-idp/sso/").status_code == 400
    assert client.get("/dev-idp/sso/?SAMLRequest=%%%").status_code == 400


def test_metadata_endpoint(client):
    response = client.get("/dev-idp/metadata/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/samlmetadata+xml")
    assert parse_idp_metadata(response.content).entity_id == "http://testserver/dev-idp/metadata/"


def test_views_refuse_when_disabled(settings):
    settings.DEV_IDP_ENABLED = False
    from orglogin.sso import devidp_views

    request = RequestFactory().get("/dev-idp/metadata/")
    with pytest.raises(Http404):
        devidp_views.metadata(request)


def test_urls_are_not_mounted_when_disabled(client, settings):
    import orglogin.urls

    original = settings.DEV_IDP_ENABLED
    try:
        settings.DEV_IDP_ENABLED = False
        importlib.reload(orglogin.urls)
        clear_url_caches()
        assert not any("dev-idp" in str(p.pattern) for p in orglogin.urls.urlpatterns)
        assert client.get("/dev-idp/metadata/").status_code == 404
        assert client.get("/dev-idp/sso/").status_code == 404
    finally:
        settings.DEV_IDP_ENABLED = original
        importlib.reload(orglogin.urls)
        clear_url_caches()
    if original:
        assert client.get("/dev-idp/metadata/").status_code == 200


def test_wrong_response_for_another_request_fails_at_the_sp():
    connection = dev_connection()
    value = devidp.build_signed_response(connection, email="jane@acme.test", in_response_to="_a")
    with pytest.raises(SsoError) as info:
        SamlConnector(connection).parse_response(value, expected_request_id="_b")
    assert info.value.check == "in_response_to"
