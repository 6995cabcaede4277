"""IdP metadata parsing and fetching, SP endpoints and metadata, the AuthnRequest redirect."""

from __future__ import annotations

import base64
import http.server
import threading
import zlib
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography import x509
from lxml import etree

from orglogin.sso.protocols import saml
from orglogin.sso.protocols.saml import (
    SamlConnector,
    SamlMetadataError,
    fetch_idp_metadata,
    generate_sp_keypair,
    parse_idp_metadata,
    sp_endpoints,
)
from orglogin.sso.protocols.saml_xml import NS
from tests.support.saml_idp import TestIdp, keys, make_connection

# --- parse_idp_metadata -------------------------------------------------------------------------


def test_good_metadata():
    idp = TestIdp.default()
    parsed = parse_idp_metadata(idp.metadata_xml(signed_requests=True))
    assert parsed.entity_id == idp.entity_id
    assert parsed.sso_url == idp.sso_url  # the HTTP-Redirect one, not the POST one
    assert parsed.slo_url == idp.sso_url + "/logout"
    assert parsed.wants_signed_requests is True
    assert parsed.certificates == (idp.key.certificate_pem,)


def test_metadata_with_two_certificates_and_as_bytes():
    idp = TestIdp.default()
    xml = idp.metadata_xml(certificates=[keys("idp"), keys("idp-next")]).encode()
    parsed = parse_idp_metadata(xml)
    assert len(parsed.certificates) == 2
    assert parsed.wants_signed_requests is False


def test_metadata_inside_entities_descriptor():
    inner = TestIdp.default().metadata_xml().split("?>", 1)[1]
    xml = f'<md:EntitiesDescriptor xmlns:md="{NS["md"]}">{inner}</md:EntitiesDescriptor>'
    assert parse_idp_metadata(xml).entity_id == TestIdp.default().entity_id


@pytest.mark.parametrize(
    ("xml", "message"),
    [
        (
            '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]><x>&e;</x>',
            "document type",
        ),
        ("<not-closed>", "well-formed"),
        ("<x/>", "not SAML 2.0 metadata"),
    ],
    ids=["dtd", "broken", "not-metadata"],
)
def test_bad_metadata_is_refused_with_one_line(xml, message):
    with pytest.raises(SamlMetadataError) as info:
        parse_idp_metadata(xml)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_metadata_without_certificate_is_refused():
    xml = TestIdp.default().metadata_xml(certificates=[])
    with pytest.raises(SamlMetadataError, match="no IdP signing certificate"):
        parse_idp_metadata(xml)


def test_metadata_without_redirect_sso_is_refused():
    xml = TestIdp.default().metadata_xml().replace("bindings:HTTP-Redirect", "bindings:SOAP")
    with pytest.raises(SamlMetadataError, match="HTTP-Redirect"):
        parse_idp_metadata(xml)


def test_metadata_with_a_broken_certificate_is_refused():
    xml = (
        TestIdp.default()
        .metadata_xml()
        .replace("<ds:X509Certificate>MII", "<ds:X509Certificate>xx")
    )
    with pytest.raises(SamlMetadataError, match="certificate"):
        parse_idp_metadata(xml)


# --- fetch_idp_metadata -------------------------------------------------------------------------


@pytest.fixture
def metadata_server():
    body = TestIdp.default().metadata_xml().encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            if self.path == "/big":
                payload = b"x" * (saml.MAX_METADATA_BYTES + 10)
            elif self.path == "/missing":
                self.send_response(404)
                self.end_headers()
                return
            else:
                payload = body
            self.send_response(200)
            self.send_header("Content-Type", "application/samlmetadata+xml")
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_fetch_metadata(metadata_server, settings):
    settings.SAML_METADATA_ALLOW_PRIVATE = True
    xml = fetch_idp_metadata(metadata_server + "/metadata")
    assert parse_idp_metadata(xml).entity_id == TestIdp.default().entity_id
    with pytest.raises(SamlMetadataError, match="larger than 1 MB"):
        fetch_idp_metadata(metadata_server + "/big")
    with pytest.raises(SamlMetadataError, match="HTTP 404"):
        fetch_idp_metadata(metadata_server + "/missing")


def test_fetch_refuses_private_addresses_in_production(metadata_server, settings):
    settings.SAML_METADATA_ALLOW_PRIVATE = False
    with pytest.raises(SamlMetadataError, match="not a public address"):
        fetch_idp_metadata(metadata_server + "/metadata")


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://x.test/m", "gopher://x", "nourl"])
def test_fetch_refuses_other_schemes(url):
    with pytest.raises(SamlMetadataError, match="http"):
        fetch_idp_metadata(url)


def test_fetch_unreachable_is_a_clear_error(settings):
    settings.SAML_METADATA_ALLOW_PRIVATE = True
    with pytest.raises(SamlMetadataError, match="could not be fetched"):
        fetch_idp_metadata("http://127.0.0.1:9/metadata", timeout=2)


# --- SP side ------------------------------------------------------------------------------------


def test_generate_sp_keypair():
    key_pem, cert_pem = generate_sp_keypair("sp.acme.test")
    assert key_pem.startswith("-----BEGIN PRIVATE KEY-----")
    cert = x509.load_pem_x509_certificate(cert_pem.encode())
    assert cert.public_key().key_size == 2048
    assert (cert.not_valid_after_utc - cert.not_valid_before_utc).days >= 3650


@pytest.mark.django_db
def test_sp_endpoints_follow_base_url_at_call_time(settings):
    connection = make_connection()
    endpoints = sp_endpoints(connection)
    public_id = connection.public_id
    assert endpoints.acs_url == f"http://testserver/sso/saml/{public_id}/acs/"
    assert endpoints.metadata_url == f"http://testserver/sso/saml/{public_id}/metadata/"
    assert endpoints.entity_id == endpoints.metadata_url
    settings.BASE_URL = "https://learn.example.com:8443"
    assert sp_endpoints(connection).acs_url.startswith("https://learn.example.com:8443/sso/saml/")


@pytest.mark.django_db
@pytest.mark.parametrize("signed", [False, True])
def test_sp_metadata(signed):
    connection = make_connection(idp_wants_signed_requests=signed)
    xml = SamlConnector(connection).sp_metadata_xml()
    root = etree.fromstring(xml.encode())
    endpoints = sp_endpoints(connection)
    assert root.get("entityID") == endpoints.entity_id
    assert root.get("validUntil") is None  # uploaded once to the IdP: must not expire
    (sp,) = root.xpath("md:SPSSODescriptor", namespaces=NS)
    assert sp.get("AuthnRequestsSigned") == ("true" if signed else "false")
    assert sp.get("WantAssertionsSigned") == "true"
    (acs,) = sp.xpath("md:AssertionConsumerService", namespaces=NS)
    assert acs.get("Location") == endpoints.acs_url
    assert acs.get("Binding").endswith("HTTP-POST")
    assert sp.xpath("md:NameIDFormat/text()", namespaces=NS) == [
        "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
    ]
    uses = sp.xpath("md:KeyDescriptor/@use", namespaces=NS)
    assert uses == ["signing"]  # no encryption key: IdPs must not encrypt (we refuse it)
    cert = sp.xpath("md:KeyDescriptor//ds:X509Certificate/text()", namespaces=NS)[0]
    assert cert.strip() in connection.sp_certificate.replace("\n", "")


def _request_from(url: str):
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    xml = zlib.decompress(base64.b64decode(query["SAMLRequest"][0]), -15)
    return parts, query, etree.fromstring(xml)


@pytest.mark.django_db
def test_authn_request_redirect_unsigned():
    connection = make_connection()
    url, request_id = SamlConnector(connection).authn_request_redirect(relay_state="k-123")
    parts, query, request = _request_from(url)
    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == connection.idp_sso_url
    assert query["RelayState"] == ["k-123"]
    assert "Signature" not in query
    endpoints = sp_endpoints(connection)
    assert request.get("ID") == request_id
    assert request.get("Destination") == connection.idp_sso_url
    assert request.get("AssertionConsumerServiceURL") == endpoints.acs_url
    assert request.get("ProtocolBinding").endswith("HTTP-POST")
    assert request.xpath("saml:Issuer/text()", namespaces=NS) == [endpoints.entity_id]
    assert request.xpath("samlp:RequestedAuthnContext", namespaces=NS) == []
    assert request.xpath("samlp:NameIDPolicy/@Format", namespaces=NS) == [
        "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
    ]


@pytest.mark.django_db
def test_authn_request_redirect_signed_rsa_sha256():
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    connection = make_connection(idp_wants_signed_requests=True)
    url, _ = SamlConnector(connection).authn_request_redirect(relay_state="k-456")
    query_string = urlsplit(url).query
    raw = dict(part.split("=", 1) for part in query_string.split("&"))
    assert parse_qs(query_string)["SigAlg"] == ["http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"]
    signed = (
        f"SAMLRequest={raw['SAMLRequest']}&RelayState={raw['RelayState']}&SigAlg={raw['SigAlg']}"
    )
    cert = x509.load_pem_x509_certificate(connection.sp_certificate.encode())
    cert.public_key().verify(
        base64.b64decode(parse_qs(query_string)["Signature"][0]),
        signed.encode(),
        padding.PKCS1v15(),
        hashes.SHA256(),
    )


@pytest.mark.django_db
def test_authn_request_redirect_keeps_an_existing_query_in_the_sso_url():
    connection = make_connection(idp_sso_url="https://login.example.test/saml2?tenant=acme")
    url, _ = SamlConnector(connection).authn_request_redirect(relay_state="k")
    query = parse_qs(urlsplit(url).query)
    assert query["tenant"] == ["acme"] and "SAMLRequest" in query


@pytest.mark.django_db
def test_authn_request_asks_for_fresh_authentication_only_when_told():
    connection = make_connection()
    connector = SamlConnector(connection)
    _, _, plain = _request_from(connector.authn_request_redirect(relay_state="k")[0])
    assert plain.get("ForceAuthn") in (None, "false")
    _, _, forced = _request_from(
        connector.authn_request_redirect(relay_state="k", force_authn=True)[0]
    )
    assert forced.get("ForceAuthn") == "true"
