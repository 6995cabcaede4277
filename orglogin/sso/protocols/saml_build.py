"""Building and signing SAML 2.0 Responses: the IdP side, for the development IdP and the
test IdP toolkit (tests/support/saml_idp.py). Never used on the login path.

`ResponseSpec` has a knob for every field the SP checks; `UNSET` means "the correct value",
`None` means "leave the field out" (what negative tests need).
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from lxml import etree

from orglogin.sso.protocols.saml_xml import (
    ATTRNAME_BASIC,
    CM_BEARER,
    NAMEID_PERSISTENT,
    RSA_SHA1,
    RSA_SHA256,
    SAML,
    SAMLP,
    SHA1,
    SHA256,
    STATUS_SUCCESS,
    XS,
    XSI,
    format_saml_time,
    new_id,
    sign_element,
)

UNSET: Any = object()
LIFETIME = timedelta(minutes=5)


@dataclass
class ResponseSpec:
    idp_entity_id: str
    acs_url: str
    sp_entity_id: str
    name_id: str
    now: datetime
    name_id_format: str = NAMEID_PERSISTENT
    # (name, values); a list so that negative tests can repeat a name.
    attributes: Sequence[tuple[str, Sequence[str]]] = ()
    in_response_to: str | None = None
    response_in_response_to: Any = UNSET  # default: in_response_to
    scd_in_response_to: Any = UNSET  # default: in_response_to
    destination: Any = UNSET  # default: acs_url
    recipient: Any = UNSET  # default: acs_url
    audiences: Any = UNSET  # default: [sp_entity_id]; None: no AudienceRestriction
    response_issuer: Any = UNSET  # default: idp_entity_id
    assertion_issuer: Any = UNSET  # default: idp_entity_id
    not_before: Any = UNSET  # Conditions; default: now
    not_on_or_after: Any = UNSET  # Conditions; default: now + 5 min
    scd_not_before: Any = None  # SubjectConfirmationData; default: absent (SAML profiles)
    scd_not_on_or_after: Any = UNSET  # default: now + 5 min
    conditions: bool = True
    authn_instant: Any = UNSET  # AuthnStatement@AuthnInstant; default: now; None: no statement
    status: str = STATUS_SUCCESS
    status_message: str = ""
    response_id: str = field(default_factory=new_id)
    assertion_id: str = field(default_factory=new_id)
    session_index: str = field(default_factory=new_id)
    attribute_name_format: str = ATTRNAME_BASIC


def _pick(value: Any, default: Any) -> Any:
    return default if value is UNSET else value


def _sub(parent: etree._Element, ns: str, tag: str, text: str | None = None, **attrib):
    element = etree.SubElement(parent, f"{{{ns}}}{tag}")
    for key, value in attrib.items():
        if value is not None:
            element.set(key, value)
    if text is not None:
        element.text = text
    return element


def build_response(spec: ResponseSpec) -> etree._Element:
    """An unsigned samlp:Response with one saml:Assertion, as a tree."""
    now = spec.now
    until = now + LIFETIME
    issue_instant = format_saml_time(now)
    root = etree.Element(
        f"{{{SAMLP}}}Response", nsmap={"samlp": SAMLP, "saml": SAML, "xs": XS, "xsi": XSI}
    )
    root.set("ID", spec.response_id)
    root.set("Version", "2.0")
    root.set("IssueInstant", issue_instant)
    destination = _pick(spec.destination, spec.acs_url)
    if destination is not None:
        root.set("Destination", destination)
    response_irt = _pick(spec.response_in_response_to, spec.in_response_to)
    if response_irt is not None:
        root.set("InResponseTo", response_irt)
    response_issuer = _pick(spec.response_issuer, spec.idp_entity_id)
    if response_issuer is not None:
        _sub(root, SAML, "Issuer", response_issuer)
    status = _sub(root, SAMLP, "Status")
    _sub(status, SAMLP, "StatusCode", Value=spec.status)
    if spec.status_message:
        _sub(status, SAMLP, "StatusMessage", spec.status_message)
    if spec.status != STATUS_SUCCESS:
        return root

    assertion = _sub(root, SAML, "Assertion", ID=spec.assertion_id, Version="2.0")
    assertion.set("IssueInstant", issue_instant)
    assertion_issuer = _pick(spec.assertion_issuer, spec.idp_entity_id)
    _sub(assertion, SAML, "Issuer", assertion_issuer or "")

    subject = _sub(assertion, SAML, "Subject")
    if spec.name_id is not None:
        _sub(subject, SAML, "NameID", spec.name_id, Format=spec.name_id_format)
    confirmation = _sub(subject, SAML, "SubjectConfirmation", Method=CM_BEARER)
    scd_not_before = spec.scd_not_before
    _sub(
        confirmation,
        SAML,
        "SubjectConfirmationData",
        NotBefore=format_saml_time(scd_not_before) if scd_not_before is not None else None,
        NotOnOrAfter=_time_or_none(_pick(spec.scd_not_on_or_after, until)),
        Recipient=_pick(spec.recipient, spec.acs_url),
        InResponseTo=_pick(spec.scd_in_response_to, spec.in_response_to),
    )

    if spec.conditions:
        conditions = _sub(
            assertion,
            SAML,
            "Conditions",
            NotBefore=_time_or_none(_pick(spec.not_before, now)),
            NotOnOrAfter=_time_or_none(_pick(spec.not_on_or_after, until)),
        )
        audiences = _pick(spec.audiences, [spec.sp_entity_id])
        if audiences is not None:
            restriction = _sub(conditions, SAML, "AudienceRestriction")
            for audience in audiences:
                _sub(restriction, SAML, "Audience", audience)

    authn_instant = _pick(spec.authn_instant, now)
    if authn_instant is not None:
        statement = _sub(
            assertion,
            SAML,
            "AuthnStatement",
            AuthnInstant=format_saml_time(authn_instant),
            SessionIndex=spec.session_index,
        )
        context = _sub(statement, SAML, "AuthnContext")
        _sub(
            context,
            SAML,
            "AuthnContextClassRef",
            "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
        )

    if spec.attributes:
        attribute_statement = _sub(assertion, SAML, "AttributeStatement")
        for name, values in spec.attributes:
            attribute = _sub(
                attribute_statement,
                SAML,
                "Attribute",
                Name=name,
                NameFormat=spec.attribute_name_format,
            )
            for value in values:
                element = _sub(attribute, SAML, "AttributeValue", value)
                element.set(f"{{{XSI}}}type", "xs:string")
    return root


def _time_or_none(value: datetime | None) -> str | None:
    return format_saml_time(value) if value is not None else None


def sign_response(
    root: etree._Element,
    *,
    key_pem: str,
    cert_pem: str | None,
    sign_assertion: bool = True,
    sign_response: bool = True,
    sha1: bool = False,
) -> etree._Element:
    """Sign the assertion, then the response (so the response signature covers the signed
    assertion), with RSA-SHA256 (or RSA-SHA1 when asked, for negative tests)."""
    method, digest = (RSA_SHA1, SHA1) if sha1 else (RSA_SHA256, SHA256)
    if sign_assertion:
        assertion = root.find(f"{{{SAML}}}Assertion")
        if assertion is not None:
            sign_element(
                assertion,
                key_pem=key_pem,
                cert_pem=cert_pem,
                signature_method=method,
                digest_method=digest,
            )
    if sign_response:
        sign_element(
            root, key_pem=key_pem, cert_pem=cert_pem, signature_method=method, digest_method=digest
        )
    return root


def to_post_value(root: etree._Element) -> str:
    """The base64 SAMLResponse form value (HTTP-POST binding)."""
    return base64.b64encode(etree.tostring(root, encoding="utf-8", xml_declaration=True)).decode()
