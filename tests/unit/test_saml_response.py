"""SamlConnector.parse_response: good responses and every rule of spec 6, with real crypto.

Each negative test sends the response through parse_response, asserts the SsoError's code
and check, and that nothing was written to the database.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from orglogin.core.errors import ErrorCode
from orglogin.sso.errors import SsoError
from orglogin.sso.protocols.saml import SamlConnector
from orglogin.sso.protocols.saml_xml import (
    ATTRNAME_URI,
    NAMEID_EMAIL,
    NAMEID_TRANSIENT,
)
from tests.support.db import row_counts
from tests.support.saml_idp import (
    ResponseFactory,
    encode,
    keys,
    make_connection,
)

pytestmark = pytest.mark.django_db

REQUEST_ID = "_request-0001"




@pytest.fixture
def refused(connection):
    """refused(value, code, check, expected_request_id=REQUEST_ID, now=None): asserts the
    SsoError and that no row was written anywhere."""

    def check(value, code, check_name, *, expected_request_id=REQUEST_ID, now=None, conn=None):
        before = row_counts()
        with pytest.raises(SsoError) as info:
            SamlConnector(conn or connection).parse_response(
                value, expected_request_id=expected_request_id, now=now
            )
        assert (info.value.code, info.value.check) == (code, check_name), info.value
        assert row_counts() == before
        return info.value

    return check


def accept(connection, value, *, expected_request_id=REQUEST_ID, now=None):
    return SamlConnector(connection).parse_response(
        value, expected_request_id=expected_request_id, now=now
    )


# --- good responses ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sign_assertion", "sign_response"),
    [(True, False), (False, True), (True, True)],
    ids=["assertion-signed", "response-signed", "both-signed"],
)
def test_good_response_gives_the_asserted_identity(
    connection, factory, sign_assertion, sign_response
):
    value = factory.post_value(
        in_response_to=REQUEST_ID, sign_assertion=sign_assertion, sign_response=sign_response
    )
    identity = accept(connection, value)
    assert identity.connection_id == connection.pk
    assert identity.subject == "id-jane-0001"
    assert identity.email == "jane@acme.test"
    assert identity.email_verified is True  # SAML: the org's IdP vouches for it
    assert (identity.given_name, identity.family_name, identity.display_name) == (
        "Jane",
        "Doe",
        "Jane Doe",
    )
    assert identity.attributes["mail"] == ("jane@acme.test",)


def test_simplesamlphp_oid_attribute_names(connection, factory):
    value = factory.post_value(
        in_response_to=REQUEST_ID,
        attribute_name_format=ATTRNAME_URI,
        attributes=[
            ("urn:oid:0.9.2342.19200300.100.1.3", ["sam@acme.test"]),
            ("urn:oid:2.5.4.42", ["Sam"]),
            ("urn:oid:2.5.4.4", ["Lee"]),
            ("urn:oid:2.16.840.1.113730.3.1.241", ["Sam Lee"]),
        ],
    )
    identity = accept(connection, value)
    assert (identity.email, identity.given_name, identity.family_name, identity.full_name) == (
        "sam@acme.test",
        "Sam",
        "Lee",
        "Sam Lee",
    )


def test_entra_id_claim_names(connection, factory):
    claims = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/"
    value = factory.post_value(
        in_response_to=REQUEST_ID,
        attributes=[
            (claims + "emailaddress", ["ada@acme.test"]),
            (claims + "givenname", ["Ada"]),
            (claims + "surname", ["Lovelace"]),
            (claims + "name", ["ada.upn@acme.test"]),
            ("http://schemas.microsoft.com/identity/claims/displayname", ["Ada L."]),
        ],
    )
    identity = accept(connection, value)
    assert (identity.email, identity.given_name, identity.family_name, identity.display_name) == (
        "ada@acme.test",
        "Ada",
        "Lovelace",
        "Ada L.",
    )


def test_okta_style_names(connection, factory):
    value = factory.post_value(
        in_response_to=REQUEST_ID,
        attributes=[("email", ["kim@acme.test"]), ("firstName", ["Kim"]), ("lastName", ["Park"])],
    )
    identity = accept(connection, value)
    assert (identity.email, identity.full_name) == ("kim@acme.test", "Kim Park")


def test_attribute_mapping_overrides_the_defaults(idp):
    connection = make_connection(
        idp, attribute_mapping={"email": "workEmail", "given_name": "fn", "family_name": ""}
    )
    value = ResponseFactory(connection, idp).post_value(
        in_response_to=REQUEST_ID,
        attributes=[
            ("mail", ["ignored@acme.test"]),
            ("workEmail", ["work@acme.test"]),
            ("fn", ["Jo"]),
            ("sn", ["Default"]),
        ],
    )
    identity = accept(connection, value)
    assert (identity.email, identity.given_name, identity.family_name) == (
        "work@acme.test",
        "Jo",
        "Default",
    )


def test_email_from_an_email_format_name_id_when_no_attribute(connection, factory):
    value = factory.post_value(
        in_response_to=REQUEST_ID,
        name_id="jo@acme.test",
        name_id_format=NAMEID_EMAIL,
        attributes=[],
    )
    identity = accept(connection, value)
    assert (identity.subject, identity.email) == ("jo@acme.test", "jo@acme.test")


def test_transient_name_id_uses_the_mapped_subject_attribute(idp):
    connection = make_connection(idp, attribute_mapping={"subject": "employeeNumber"})
    value = ResponseFactory(connection, idp).post_value(
        in_response_to=REQUEST_ID,
        name_id="_transient-123",
        name_id_format=NAMEID_TRANSIENT,
        attributes=[("mail", ["jane@acme.test"]), ("employeeNumber", ["E-42"])],
    )
    assert accept(connection, value).subject == "E-42"


def test_transient_name_id_without_subject_attribute_is_refused(factory, refused):
    value = factory.post_value(
        in_response_to=REQUEST_ID, name_id="_transient-123", name_id_format=NAMEID_TRANSIENT
    )
    refused(value, ErrorCode.SSO_RESPONSE_INVALID, "subject")


def test_missing_email_is_refused(factory, refused):
    value = factory.post_value(in_response_to=REQUEST_ID, attributes=[("givenName", ["Jane"])])
    refused(value, ErrorCode.SSO_MISSING_ATTRIBUTES, "email")


def test_certificate_rollover_accepts_either_certificate(idp):
    old, new = keys("idp"), keys("idp-next")
    connection = make_connection(idp, certificates=[old, new])
    factory = ResponseFactory(connection, idp)
    for key in (old, new):
        value = factory.post_value(in_response_to=REQUEST_ID, key=key)
        assert accept(connection, value).subject == "id-jane-0001"


def test_idp_initiated_is_accepted_when_the_connection_allows_it(idp):
    connection = make_connection(idp, allow_idp_initiated=True)
    value = ResponseFactory(connection, idp).post_value(in_response_to=None)
    assert accept(connection, value, expected_request_id=None).email == "jane@acme.test"


# --- signature --------------------------------------------------------------------------------


def test_unsigned_response_is_refused(factory, refused):
    value = factory.post_value(in_response_to=REQUEST_ID, sign_assertion=False)
    refused(value, ErrorCode.SSO_SIGNATURE, "signature")


@pytest.mark.parametrize("include_cert", [False, True], ids=["no-keyinfo", "key-in-keyinfo"])
@pytest.mark.parametrize("where", ["assertion", "response"])
def test_signed_by_a_key_not_in_the_connection_is_refused(factory, refused, include_cert, where):
    value = factory.post_value(
        in_response_to=REQUEST_ID,
        key=keys("attacker"),
        include_cert=include_cert,
        sign_assertion=where == "assertion",
        sign_response=where == "response",
    )
    refused(value, ErrorCode.SSO_SIGNATURE, "signature")


def test_good_response_signature_with_a_forged_assertion_signature_is_refused(factory, refused):
    # Every signature present must verify, not just one of them.
    root = factory.tree(in_response_to=REQUEST_ID)
    from tests.support.saml_idp import assertion_of, sign

    sign(assertion_of(root), keys("attacker"))
    sign(root, factory.idp.key)
    refused(encode(root), ErrorCode.SSO_SIGNATURE, "signature")


def test_sha1_is_refused_unless_the_connection_opts_in(idp, factory, refused):
    value = factory.post_value(in_response_to=REQUEST_ID, sha1=True)
    refused(value, ErrorCode.SSO_SIGNATURE, "signature_algorithm")

    lax = make_connection(idp, allow_sha1=True)
    value = ResponseFactory(lax, idp).post_value(in_response_to=REQUEST_ID, sha1=True)
    assert accept(lax, value).subject == "id-jane-0001"


# --- issuer, destination, recipient, audience ------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "check"),
    [
        ({"assertion_issuer": "https://evil.example.test/idp"}, "issuer"),
        ({"response_issuer": "https://evil.example.test/idp"}, "issuer"),
        ({"destination": "http://testserver/sso/saml/other/acs/"}, "destination"),
        ({"destination": None}, "destination"),
        ({"recipient": "http://testserver/sso/saml/other/acs/"}, "recipient"),
        ({"recipient": None}, "recipient"),
        ({"audiences": ["https://other-sp.example.test/metadata"]}, "audience"),
        ({"audiences": None}, "audience"),
        ({"conditions": False}, "audience"),
    ],
    ids=[
        "assertion-issuer",
        "response-issuer",
        "wrong-destination",
        "missing-destination",
        "wrong-recipient",
        "missing-recipient",
        "wrong-audience",
        "missing-audience-restriction",
        "missing-conditions",
    ],
)
@pytest.mark.parametrize("sign_response", [False, True], ids=["assertion-signed", "both-signed"])
def test_wrong_or_missing_addressing_is_refused(factory, refused, overrides, check, sign_response):
    value = factory.post_value(in_response_to=REQUEST_ID, sign_response=sign_response, **overrides)
    refused(value, ErrorCode.SSO_RESPONSE_INVALID, check)


def test_destination_prefix_is_not_enough(factory, connection, refused):
    acs = factory.spec().acs_url
    for destination in (acs + "extra", acs.rstrip("/"), acs.upper()):
        value = factory.post_value(in_response_to=REQUEST_ID, destination=destination)
        refused(value, ErrorCode.SSO_RESPONSE_INVALID, "destination")


def test_recipient_substring_is_not_enough(factory, refused):
    acs = factory.spec().acs_url
    value = factory.post_value(in_response_to=REQUEST_ID, recipient="https://evil.test/?" + acs)
    refused(value, ErrorCode.SSO_RESPONSE_INVALID, "recipient")


def test_any_audience_of_a_restriction_may_name_us(factory):
    ours = factory.spec().sp_entity_id
    value = factory.post_value(in_response_to=REQUEST_ID, audiences=["https://x.test", ours])
    assert accept(factory.connection, value)


def test_every_audience_restriction_must_name_us(factory, refused):
    from lxml import etree

    from orglogin.sso.protocols.saml_xml import SAML

    root = factory.tree(in_response_to=REQUEST_ID)
    conditions = root.find(f"{{{SAML}}}Assertion/{{{SAML}}}Conditions")
    other = etree.SubElement(conditions, f"{{{SAML}}}AudienceRestriction")
    etree.SubElement(other, f"{{{SAML}}}Audience").text = "https://other-sp.test"
    from tests.support.saml_idp import assertion_of, sign

    sign(assertion_of(root), factory.idp.key)
    refused(encode(root), ErrorCode.SSO_RESPONSE_INVALID, "audience")


# --- time window --------------------------------------------------------------------------------


def test_expired_response_is_refused_beyond_the_skew_and_accepted_within(
    factory, connection, refused
):
    issued = timezone.now() - timedelta(minutes=10)
    value = factory.post_value(in_response_to=REQUEST_ID, now=issued)  # valid until issued+5min
    end = issued + timedelta(minutes=5)
    refused(value, ErrorCode.SSO_CLOCK_SKEW, "not_on_or_after", now=end + timedelta(seconds=121))
    assert accept(connection, value, now=end + timedelta(seconds=119))


def test_not_yet_valid_response_is_refused_beyond_the_skew_and_accepted_within(
    factory, connection, refused
):
    issued = timezone.now() + timedelta(minutes=3)
    value = factory.post_value(in_response_to=REQUEST_ID, now=issued)
    refused(value, ErrorCode.SSO_CLOCK_SKEW, "not_before", now=issued - timedelta(seconds=121))
    assert accept(connection, value, now=issued - timedelta(seconds=119))


def test_expired_subject_confirmation_alone_is_refused(factory, refused):
    value = factory.post_value(
        in_response_to=REQUEST_ID, scd_not_on_or_after=timezone.now() - timedelta(minutes=3)
    )
    refused(value, ErrorCode.SSO_CLOCK_SKEW, "not_on_or_after")


def test_subject_confirmation_without_not_on_or_after_is_refused(factory, refused):
    value = factory.post_value(in_response_to=REQUEST_ID, scd_not_on_or_after=None)
    refused(value, ErrorCode.SSO_CLOCK_SKEW, "not_on_or_after")


def test_expired_conditions_alone_are_refused(factory, refused):
    value = factory.post_value(
        in_response_to=REQUEST_ID, not_on_or_after=timezone.now() - timedelta(minutes=3)
    )
    refused(value, ErrorCode.SSO_CLOCK_SKEW, "not_on_or_after")


# --- InResponseTo / unsolicited ------------------------------------------------------------------


@pytest.mark.parametrize("sign_response", [False, True], ids=["assertion-signed", "both-signed"])
def test_in_response_to_another_request_is_refused(factory, refused, sign_response):
    value = factory.post_value(in_response_to="_another-request", sign_response=sign_response)
    refused(value, ErrorCode.SSO_SESSION_MISMATCH, "in_response_to")


def test_in_response_to_only_in_the_unsigned_response_is_refused(factory, refused):
    # Only the assertion is signed: Response@InResponseTo is the attacker's to write.
    value = factory.post_value(
        response_in_response_to=REQUEST_ID, scd_in_response_to=None, sign_assertion=True
    )
    refused(value, ErrorCode.SSO_SESSION_MISMATCH, "in_response_to")


def test_in_response_to_in_the_signed_response_is_enough(factory, connection):
    value = factory.post_value(
        response_in_response_to=REQUEST_ID,
        scd_in_response_to=None,
        sign_assertion=False,
        sign_response=True,
    )
    assert accept(connection, value).subject == "id-jane-0001"


def test_unsolicited_response_is_refused_when_idp_initiated_is_off(factory, refused):
    value = factory.post_value(in_response_to=None)
    refused(value, ErrorCode.SSO_UNSOLICITED, "unsolicited", expected_request_id=None)


def test_solicited_response_arriving_without_a_pending_request_is_refused(idp, refused):
    connection = make_connection(idp, allow_idp_initiated=True)
    value = ResponseFactory(connection, idp).post_value(in_response_to="_someone-elses")
    refused(
        value,
        ErrorCode.SSO_SESSION_MISMATCH,
        "in_response_to",
        expected_request_id=None,
        conn=connection,
    )


# --- content --------------------------------------------------------------------------------------


def test_duplicate_attributes_are_refused(factory, refused):
    value = factory.post_value(
        in_response_to=REQUEST_ID,
        attributes=[("mail", ["jane@acme.test"]), ("mail", ["ceo@acme.test"])],
    )
    refused(value, ErrorCode.SSO_RESPONSE_INVALID, "duplicate_attribute")


@pytest.mark.parametrize("signed", [False, True])
def test_non_success_status_is_an_idp_error(factory, refused, signed):
    value = factory.post_value(
        in_response_to=REQUEST_ID,
        status="urn:oasis:names:tc:SAML:2.0:status:Responder",
        status_message="Authentication failed",
        sign_assertion=False,
        sign_response=signed,
    )
    error = refused(value, ErrorCode.SSO_IDP_ERROR, "status")
    assert "Responder" in error.detail


def test_two_assertions_are_refused(factory, refused):
    from tests.support.saml_idp import assertion_of, clone

    root = factory.signed_tree(in_response_to=REQUEST_ID)
    second = clone(assertion_of(root))
    second.set("ID", "_second-assertion")
    assertion_of(root).addnext(second)
    refused(encode(root), ErrorCode.SSO_RESPONSE_INVALID, "assertion_count")


def test_encrypted_assertion_is_refused_clearly(factory, refused):
    from lxml import etree

    from orglogin.sso.protocols.saml_xml import SAML

    root = factory.tree(in_response_to=REQUEST_ID)
    assertion = root.find(f"{{{SAML}}}Assertion")
    encrypted = etree.Element(f"{{{SAML}}}EncryptedAssertion")
    xenc = "http://www.w3.org/2001/04/xmlenc#"
    data = etree.SubElement(encrypted, f"{{{xenc}}}EncryptedData")
    cipher = etree.SubElement(data, f"{{{xenc}}}CipherData")
    etree.SubElement(cipher, f"{{{xenc}}}CipherValue").text = "AAAA"
    assertion.addprevious(encrypted)
    root.remove(assertion)
    error = refused(encode(root), ErrorCode.SSO_RESPONSE_INVALID, "encrypted_assertion")
    assert "encryption" in error.detail


def test_garbage_is_refused_as_xml(refused):
    refused("not base64!", ErrorCode.SSO_RESPONSE_INVALID, "xml")
    refused(encode(b"<a><b></a>"), ErrorCode.SSO_RESPONSE_INVALID, "xml")
    refused(encode(b"<root/>"), ErrorCode.SSO_RESPONSE_INVALID, "xml")


def test_schema_invalid_response_is_refused(factory, refused):
    from orglogin.sso.protocols.saml_xml import SAMLP

    root = factory.signed_tree(in_response_to=REQUEST_ID)
    root.remove(root.find(f"{{{SAMLP}}}Status"))
    refused(encode(root), ErrorCode.SSO_RESPONSE_INVALID, "schema")


def test_disabled_connection_is_refused(idp):
    connection = make_connection(idp, enabled=False)
    value = ResponseFactory(connection, idp).post_value(in_response_to=REQUEST_ID)
    with pytest.raises(SsoError) as info:
        accept(connection, value)
    assert info.value.code == ErrorCode.SSO_NOT_CONFIGURED


# --- the admin's "Test connection" report ---------------------------------------------------


def test_check_report_lists_every_check_and_consumes_nothing(connection, factory):
    value = factory.post_value(in_response_to=REQUEST_ID)
    before = row_counts()
    report = SamlConnector(connection).check_report(value, expected_request_id=REQUEST_ID)
    assert all(r.passed for r in report), report
    names = {r.check for r in report}
    for expected in (
        "signature",
        "issuer",
        "audience",
        "recipient",
        "destination",
        "not_on_or_after",
        "in_response_to",
        "attributes",
        "replay",
    ):
        assert expected in names
    assert row_counts() == before
    # Not consumed: the real login with the same response still works, once.
    assert accept(connection, value)
    report = SamlConnector(connection).check_report(value, expected_request_id=REQUEST_ID)
    assert [r.check for r in report if not r.passed] == ["replay"]


def test_check_report_shows_several_failures_without_raising(connection, factory):
    value = factory.post_value(
        in_response_to="_other",
        audiences=["https://other.test"],
        recipient="https://other.test/acs",
        key=keys("attacker"),
    )
    report = SamlConnector(connection).check_report(value, expected_request_id=REQUEST_ID)
    failed = {r.check for r in report if not r.passed}
    assert {"signature", "audience", "recipient", "in_response_to"} <= failed


def test_check_report_on_garbage(connection):
    report = SamlConnector(connection).check_report("@@@", expected_request_id=None)
    assert [(r.check, r.passed) for r in report] == [("xml", False)]
