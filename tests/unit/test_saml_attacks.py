"""Attacks on the SAML response parser: signature wrapping (XSW), comment injection, DTDs,
hostile signature transforms, Reference URI="". Real signatures, real xmlsec.
"""

from __future__ import annotations

import base64

import pytest
from lxml import etree

from orglogin.core.errors import ErrorCode
from orglogin.sso.errors import SsoError
from orglogin.sso.protocols import saml_verify
from orglogin.sso.protocols.saml import SamlConnector
from orglogin.sso.protocols.saml_xml import SAML, SAMLP
from tests.support.saml_idp import (
    DS,
    XPATH_TRANSFORM,
    XSLT_TRANSFORM,
    assertion_of,
    clone,
    encode,
    insert_extensions,
    name_id_of,
    sign,
)
from tests.unit.test_saml_response import row_counts

pytestmark = pytest.mark.django_db

REQUEST_ID = "_request-0002"
EVIL = "ceo@acme.test"


def parse(connection, value):
    return SamlConnector(connection).parse_response(value, expected_request_id=REQUEST_ID)


def refused(connection, value, checks, code=None) -> SsoError:
    checks = {checks} if isinstance(checks, str) else set(checks)
    before = row_counts()
    with pytest.raises(SsoError) as info:
        parse(connection, value)
    assert info.value.check in checks, info.value
    if code is not None:
        assert info.value.code == code
    assert row_counts() == before
    return info.value


def evil_assertion_from(signed_assertion, *, new_id: str | None = "_evil-assertion"):
    """A copy of the signed assertion, signature removed, subject and mail changed."""
    evil = clone(signed_assertion)
    for signature in evil.findall(f"{{{DS}}}Signature"):
        evil.remove(signature)
    if new_id is not None:
        evil.set("ID", new_id)
    evil.find(f"{{{SAML}}}Subject/{{{SAML}}}NameID").text = "id-ceo"
    for value in evil.iter(f"{{{SAML}}}AttributeValue"):
        if value.text == "jane@acme.test":
            value.text = EVIL
    return evil


def wrap(extensions, element):
    """samlp:Extensions only takes foreign elements: hide `element` in one."""
    wrapper = etree.SubElement(extensions, "{urn:example:evil}Wrapper")
    wrapper.append(element)


# --- signature wrapping ------------------------------------------------------------------------


def test_xsw_signed_assertion_moved_into_extensions(connection, factory):
    root = factory.signed_tree(in_response_to=REQUEST_ID)
    original = assertion_of(root)
    evil = evil_assertion_from(original)
    insert_extensions(root).append(clone(original))
    original.addprevious(evil)
    root.remove(original)
    refused(connection, encode(root), "assertion_count")


def test_xsw_signed_assertion_moved_into_signature_object(connection, factory):
    root = factory.signed_tree(in_response_to=REQUEST_ID)
    original = assertion_of(root)
    evil = evil_assertion_from(original, new_id=None)  # keeps the signed ID
    signature = clone(original.find(f"{{{DS}}}Signature"))
    hidden = clone(original)
    hidden.remove(hidden.find(f"{{{DS}}}Signature"))
    obj = etree.SubElement(signature, f"{{{DS}}}Object")
    obj.append(hidden)
    evil.find(f"{{{SAML}}}Issuer").addnext(signature)
    original.addprevious(evil)
    root.remove(original)
    # Duplicate IDs already fail the schema (xs:ID); the assertion count would catch it next.
    refused(connection, encode(root), {"schema", "assertion_count"})


def test_xsw_signed_assertion_in_object_with_a_fresh_id_for_the_evil_one(connection, factory):
    root = factory.signed_tree(in_response_to=REQUEST_ID)
    original = assertion_of(root)
    evil = evil_assertion_from(original)
    signature = clone(original.find(f"{{{DS}}}Signature"))
    etree.SubElement(signature, f"{{{DS}}}Object").append(clone(original))
    evil.find(f"{{{SAML}}}Issuer").addnext(signature)
    original.addprevious(evil)
    root.remove(original)
    refused(connection, encode(root), "assertion_count")


@pytest.mark.parametrize("position", ["before", "after"])
def test_xsw_unsigned_assertion_next_to_the_signed_one(connection, factory, position):
    root = factory.signed_tree(in_response_to=REQUEST_ID)
    original = assertion_of(root)
    evil = evil_assertion_from(original)
    (original.addprevious if position == "before" else original.addnext)(evil)
    refused(connection, encode(root), "assertion_count")


def test_xsw_evil_response_wrapping_the_signed_response(connection, factory):
    signed = factory.signed_tree(
        in_response_to=REQUEST_ID, sign_assertion=False, sign_response=True
    )
    evil = factory.tree(in_response_to=REQUEST_ID, response_id="_evil-response", name_id="id-ceo")
    wrap(insert_extensions(evil), signed)
    refused(connection, encode(evil), "assertion_count")


def test_xsw_evil_response_carrying_the_signed_response_signature(connection, factory):
    # The Response signature moved onto an evil Response; the signed Response hidden in its
    # ds:Object (the signature's Reference still points at the hidden Response's ID).
    signed = factory.signed_tree(
        in_response_to=REQUEST_ID, sign_assertion=False, sign_response=True
    )
    signature = signed.find(f"{{{DS}}}Signature")
    signed.remove(signature)
    evil = factory.tree(in_response_to=REQUEST_ID, response_id="_evil-response", name_id="id-ceo")
    evil.find(f"{{{SAML}}}Issuer").addnext(signature)
    etree.SubElement(signature, f"{{{DS}}}Object").append(signed)
    refused(connection, encode(evil), {"assertion_count", "signature"})


def test_xsw_evil_response_with_only_the_wrapped_signed_response(connection, factory):
    signed = factory.signed_tree(
        in_response_to=REQUEST_ID, sign_assertion=False, sign_response=True
    )
    evil = factory.tree(in_response_to=REQUEST_ID, response_id="_evil-response")
    evil.remove(assertion_of(evil))
    wrap(insert_extensions(evil), signed)
    refused(connection, encode(evil), "assertion_count")


def test_assertion_id_swap_breaks_the_reference(connection, factory):
    root = factory.signed_tree(in_response_to=REQUEST_ID)
    assertion = assertion_of(root)
    assertion.set("ID", "_swapped")
    refused(connection, encode(root), "reference_uri", ErrorCode.SSO_SIGNATURE)


def test_assertion_id_swap_with_a_decoy_carrying_the_signed_id(connection, factory):
    root = factory.signed_tree(in_response_to=REQUEST_ID)
    original = assertion_of(root)
    signed_id = original.get("ID")
    decoy = clone(original)  # keeps the signed ID and signature, hidden in Extensions
    insert_extensions(root).append(decoy)
    original.set("ID", "_swapped")
    original.find(f"{{{SAML}}}Subject/{{{SAML}}}NameID").text = "id-ceo"
    assert decoy.get("ID") == signed_id
    refused(connection, encode(root), {"assertion_count", "reference_uri"})


def test_signature_moved_from_assertion_to_response_is_refused(connection, factory):
    root = factory.signed_tree(in_response_to=REQUEST_ID)
    signature = assertion_of(root).find(f"{{{DS}}}Signature")
    root.find(f"{{{SAML}}}Issuer").addnext(signature)
    # The signature's parent is now the Response, but it references the Assertion.
    refused(connection, encode(root), "reference_uri")


def test_signature_in_an_unexpected_place_is_refused(connection, factory):
    root = factory.signed_tree(in_response_to=REQUEST_ID)
    subject = assertion_of(root).find(f"{{{SAML}}}Subject")
    extra = clone(assertion_of(root).find(f"{{{DS}}}Signature"))
    insert_extensions(root).append(etree.Element(f"{{{SAML}}}Wrapper"))
    root.find(f"{{{SAMLP}}}Extensions")[0].append(extra)
    assert subject is not None
    refused(connection, encode(root), {"signature", "schema"})


def test_content_changed_after_signing_is_refused(connection, factory):
    root = factory.signed_tree(in_response_to=REQUEST_ID)
    name_id_of(root).text = "id-ceo"
    refused(connection, encode(root), "signature", ErrorCode.SSO_SIGNATURE)


def test_unsigned_response_wrapping_cannot_borrow_an_unrelated_signed_element(connection, factory):
    # Response signed, assertion replaced afterwards by an unsigned one: the Response digest
    # no longer matches.
    root = factory.signed_tree(in_response_to=REQUEST_ID, sign_assertion=False, sign_response=True)
    original = assertion_of(root)
    original.addprevious(evil_assertion_from(original, new_id=None))
    root.remove(original)
    refused(connection, encode(root), "signature")


# --- comment injection ------------------------------------------------------------------------


def test_comment_in_name_id_and_email_does_not_truncate(connection, factory):
    full = "user@evil.com.attacker.com"
    root = factory.tree(in_response_to=REQUEST_ID, name_id=full, attributes=[("mail", [full])])
    # Signed first (exclusive c14n drops comments), comment injected afterwards.
    sign(assertion_of(root), factory.idp.key)
    for element in (name_id_of(root), next(assertion_of(root).iter(f"{{{SAML}}}AttributeValue"))):
        element.text = "user@evil.com"
        comment = etree.Comment("")
        comment.tail = ".attacker.com"
        element.append(comment)
    xml = etree.tostring(root)
    assert b"user@evil.com<!---->.attacker.com" in xml
    identity = parse(connection, encode(xml))
    assert identity.subject == full
    assert identity.email == full


# --- DTDs and entities -----------------------------------------------------------------------


BILLION_LAUGHS = (
    '<?xml version="1.0"?>\n<!DOCTYPE lolz [\n <!ENTITY lol "lol">\n'
    + "".join(
        f' <!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">\n'
        for i in range(1, 10)
    )
    + ']>\n<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_x" '
    'Version="2.0" IssueInstant="2024-01-01T00:00:00Z">&lol9;</samlp:Response>'
)
XXE = (
    '<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
    '<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="_x" '
    'Version="2.0" IssueInstant="2024-01-01T00:00:00Z">&xxe;</samlp:Response>'
)
PARAMETER_ENTITY = (
    '<?xml version="1.0"?>\n<!DOCTYPE r [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/x.dtd">'
    "%remote;]>\n<r/>"
)


@pytest.mark.parametrize(
    "xml", [BILLION_LAUGHS, XXE, PARAMETER_ENTITY], ids=["billion-laughs", "xxe", "parameter"]
)
def test_dtd_payloads_are_refused_before_parsing(connection, xml):
    refused(connection, encode(xml), "dtd", ErrorCode.SSO_RESPONSE_INVALID)


def test_dtd_in_utf16_is_refused_too(connection):
    xml = XXE.replace('<?xml version="1.0"?>', '<?xml version="1.0" encoding="UTF-16"?>')
    data = xml.encode("utf-16")
    assert b"<!DOCTYPE" not in data  # the byte test cannot see it; the parser check must
    refused(connection, base64.b64encode(data).decode(), "dtd")


def test_dtd_prepended_to_a_validly_signed_response_is_refused(connection, factory):
    root = factory.signed_tree(in_response_to=REQUEST_ID)
    xml = b'<!DOCTYPE samlp:Response [<!ENTITY e "x">]>\n' + etree.tostring(root)
    refused(connection, encode(xml), "dtd")


# --- hostile signature structure: refused before xmlsec ---------------------------------------


@pytest.fixture
def xmlsec_must_not_run(monkeypatch):
    def forbidden(*args, **kwargs):
        raise AssertionError("xmlsec verification ran on a signature that should be refused")

    monkeypatch.setattr(saml_verify, "_verify_with_any", forbidden)


XSLT = (
    '<xsl:stylesheet xmlns:xsl="http://www.w3.org/1999/XSL/Transform" version="1.0">'
    '<xsl:template match="/"><xsl:value-of select="document(\'file:///etc/passwd\')"/>'
    "</xsl:template></xsl:stylesheet>"
)


def _add_transform(root, algorithm, child_xml=None):
    # XPath: ElementPath misses some nodes that xmlsec created in memory.
    (transforms,) = assertion_of(root).xpath(
        "ds:Signature/ds:SignedInfo/ds:Reference/ds:Transforms", namespaces={"ds": DS}
    )
    transform = etree.SubElement(transforms, f"{{{DS}}}Transform", Algorithm=algorithm)
    if child_xml:
        transform.append(etree.fromstring(child_xml))


def test_xslt_transform_is_refused_before_xmlsec(connection, factory, xmlsec_must_not_run):
    root = factory.signed_tree(in_response_to=REQUEST_ID)
    _add_transform(root, XSLT_TRANSFORM, XSLT)
    refused(connection, encode(root), "transforms", ErrorCode.SSO_SIGNATURE)


def test_xslt_transform_in_an_unsigned_looking_document_is_refused_before_xmlsec(
    connection, factory, xmlsec_must_not_run
):
    # Signed by nobody we know: the XSLT must still never reach libxmlsec1 (pre-auth DoS).
    from tests.support.saml_idp import keys

    root = factory.signed_tree(in_response_to=REQUEST_ID, key=keys("attacker"))
    _add_transform(root, XSLT_TRANSFORM, XSLT)
    refused(connection, encode(root), "transforms")


def test_xpath_transform_is_refused_before_xmlsec(connection, factory, xmlsec_must_not_run):
    root = factory.signed_tree(in_response_to=REQUEST_ID)
    _add_transform(
        root, XPATH_TRANSFORM, f'<ds:XPath xmlns:ds="{DS}">not(ancestor-or-self::x)</ds:XPath>'
    )
    refused(connection, encode(root), "transforms")


def test_canonicalization_with_comments_is_refused(connection, factory, xmlsec_must_not_run):
    root = factory.signed_tree(in_response_to=REQUEST_ID)
    method = assertion_of(root).find(
        f"{{{DS}}}Signature/{{{DS}}}SignedInfo/{{{DS}}}CanonicalizationMethod"
    )
    method.set("Algorithm", "http://www.w3.org/2001/10/xml-exc-c14n#WithComments")
    refused(connection, encode(root), "transforms")


def test_empty_reference_uri_is_refused(connection, factory, xmlsec_must_not_run):
    # A genuinely valid signature over the whole document, by the right key.
    root = factory.tree(in_response_to=REQUEST_ID)
    sign(assertion_of(root), factory.idp.key, reference_uri="")
    refused(connection, encode(root), "reference_uri", ErrorCode.SSO_SIGNATURE)


def test_reference_to_another_element_is_refused(connection, factory, xmlsec_must_not_run):
    root = factory.tree(in_response_to=REQUEST_ID)
    sign(assertion_of(root), factory.idp.key, reference_uri="#" + root.get("ID"))
    refused(connection, encode(root), "reference_uri")


def test_two_references_are_refused(connection, factory, xmlsec_must_not_run):
    root = factory.signed_tree(in_response_to=REQUEST_ID)
    signed_info = assertion_of(root).find(f"{{{DS}}}Signature/{{{DS}}}SignedInfo")
    signed_info.append(clone(signed_info.find(f"{{{DS}}}Reference")))
    refused(connection, encode(root), "reference_uri")


def test_sha1_refused_before_xmlsec(connection, factory, xmlsec_must_not_run):
    value = factory.post_value(in_response_to=REQUEST_ID, sha1=True)
    refused(connection, value, "signature_algorithm", ErrorCode.SSO_SIGNATURE)


def test_hmac_signature_method_is_refused(connection, factory, xmlsec_must_not_run):
    root = factory.signed_tree(in_response_to=REQUEST_ID)
    method = assertion_of(root).find(
        f"{{{DS}}}Signature/{{{DS}}}SignedInfo/{{{DS}}}SignatureMethod"
    )
    method.set("Algorithm", "http://www.w3.org/2000/09/xmldsig#hmac-sha1")
    refused(connection, encode(root), "signature_algorithm")


def test_xml_id_attributes_are_refused(connection, factory):
    root = factory.signed_tree(in_response_to=REQUEST_ID)
    wrapper = etree.SubElement(insert_extensions(root), "{urn:example:evil}Wrapper")
    wrapper.set("{http://www.w3.org/XML/1998/namespace}id", assertion_of(root).get("ID"))
    refused(connection, encode(root), {"signature", "schema"})
