"""Verification of a SAML 2.0 Response (Web Browser SSO profile, HTTP-POST binding).

Our own checks, written for the places where python3-saml's defaults are too lax (see
shared/peers/README.md). The order matters and is the point of this module:

1. Before any XML feature runs: size, base64, no DTD / entity (billion laughs, XXE).
2. Structure, before xmlsec sees the document: the SAML protocol schema (compiled once per
   thread), exactly one Assertion in the whole document and it is a direct child of the
   Response, ds:Signature only as a direct child of the Response or of that Assertion,
   each signature with one Reference whose URI is "#<ID of its parent>" (never ""), only
   the enveloped-signature and exclusive-c14n transforms (no XSLT/XPath: the pre-auth DoS),
   allowed algorithms (SHA-1 only when the connection opts in), unique ID attributes.
3. Cryptography: xmlsec verifies each signature with the connection's certificates only
   (the key in the message's KeyInfo is never used), with its transforms restricted too.
   At least the Assertion, or the whole Response, must verify; a signature that is present
   and does not verify fails the response.
4. Semantics, read ONLY from the node that was verified (the single Assertion, or the
   verified Response containing it): Destination (exact, required), Issuer, InResponseTo
   (from a signed element only), bearer SubjectConfirmationData (Recipient exact,
   NotOnOrAfter required, NotBefore), Conditions time window and AudienceRestriction
   (required), subject, attributes (no duplicates), email.
   When the caller asks for a fresh login (`require_authn_after`, the link of spec 2.2.1):
   the AuthnStatement's AuthnInstant (check "authn_instant", below).
5. Replay: the Assertion ID is remembered (orglogin.sso.replay, atomic `cache.add`) until
   the end of its validity plus the skew; a second use is refused.

Because 2 pins every signature to its parent element and allows only one Assertion in the
whole document, the classic signature-wrapping variants cannot put an unsigned assertion
where the reads of 4 look.

Fresh login ("authn_instant", only when `require_authn_after` is given): ForceAuthn asks the
IdP to authenticate again, but an IdP may still answer from its session. The verified
Assertion's AuthnStatement@AuthnInstant must then be no earlier than `require_authn_after`
minus CLOCK_SKEW (and not later than now plus CLOCK_SKEW). An Assertion may hold several
AuthnStatements (SAML core 2.7.2: each one an act of authentication the IdP vouches for, all
covered by the same signature); the LATEST instant counts, since it is the most recent time
the IdP says the subject authenticated. No AuthnStatement, or one without a valid
AuthnInstant, is refused. Without `require_authn_after` AuthnInstant is not looked at.

Not checked: AuthnContext, SessionNotOnOrAfter, the certificates' own validity dates (IdP
certificates are trusted as configured, as IdPs routinely sign with expired self-signed
certificates), metadata signatures.
"""

from __future__ import annotations

import base64
import binascii
import functools
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import onelogin.saml2
import xmlsec
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from lxml import etree

from orglogin.core.errors import ErrorCode
from orglogin.sso import replay
from orglogin.sso.errors import SsoError
from orglogin.sso.identity import AssertedIdentity
from orglogin.sso.protocols.saml_xml import (
    CM_BEARER,
    DIGEST_METHODS,
    DIGEST_METHODS_SHA1,
    ENVELOPED,
    EXC_C14N,
    NAMEID_EMAIL,
    NAMEID_TRANSIENT,
    NS,
    REFERENCE_TRANSFORMS,
    SAMLP,
    SIGNATURE_METHODS,
    SIGNATURE_METHODS_SHA1,
    SIGNED_INFO_C14N,
    STATUS_SUCCESS,
    XMLSEC_C14N,
    XMLSEC_DIGESTS,
    XMLSEC_SIGNATURE_METHODS,
    XSI,
    UnsafeXml,
    parse_saml_time,
    parse_untrusted_xml,
    text_of,
)

CLOCK_SKEW = timedelta(seconds=120)
REPLAY_NAMESPACE = "saml-assertion"
MAX_POST_VALUE = 512 * 1024  # base64 characters
MAX_SUBJECT_LENGTH = 512  # OrgIdentity.subject

# check name -> the learner-facing error code (orglogin.core.errors).
CHECK_CODES: dict[str, ErrorCode] = {
    "xml": ErrorCode.SSO_RESPONSE_INVALID,
    "dtd": ErrorCode.SSO_RESPONSE_INVALID,
    "schema": ErrorCode.SSO_RESPONSE_INVALID,
    "status": ErrorCode.SSO_IDP_ERROR,
    "encrypted_assertion": ErrorCode.SSO_RESPONSE_INVALID,
    "assertion_count": ErrorCode.SSO_RESPONSE_INVALID,
    "signature": ErrorCode.SSO_SIGNATURE,
    "signature_algorithm": ErrorCode.SSO_SIGNATURE,
    "reference_uri": ErrorCode.SSO_SIGNATURE,
    "transforms": ErrorCode.SSO_SIGNATURE,
    "destination": ErrorCode.SSO_RESPONSE_INVALID,
    "issuer": ErrorCode.SSO_RESPONSE_INVALID,
    "unsolicited": ErrorCode.SSO_UNSOLICITED,
    "in_response_to": ErrorCode.SSO_SESSION_MISMATCH,
    "subject_confirmation": ErrorCode.SSO_RESPONSE_INVALID,
    "recipient": ErrorCode.SSO_RESPONSE_INVALID,
    "not_before": ErrorCode.SSO_CLOCK_SKEW,
    "not_on_or_after": ErrorCode.SSO_CLOCK_SKEW,
    "audience": ErrorCode.SSO_RESPONSE_INVALID,
    "subject": ErrorCode.SSO_RESPONSE_INVALID,
    "duplicate_attribute": ErrorCode.SSO_RESPONSE_INVALID,
    "attributes": ErrorCode.SSO_RESPONSE_INVALID,
    "email": ErrorCode.SSO_MISSING_ATTRIBUTES,
    "replay": ErrorCode.SSO_REPLAY,
    "authn_instant": ErrorCode.SSO_REAUTH_REQUIRED,
}

# Attribute names of the usual IdPs, in order of preference, for each field of
# AssertedIdentity. `Connection.attribute_mapping` overrides a field with one name.
DEFAULT_ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "email": (
        "email",  # Okta, Google Workspace (as usually mapped), generic
        "mail",  # Shibboleth / SimpleSAMLphp / LDAP
        "urn:oid:0.9.2342.19200300.100.1.3",  # mail, URI name format
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",  # Entra, ADFS
        "http://schemas.xmlsoap.org/claims/EmailAddress",  # ADFS
        "emailAddress",
        "Email",
        "EmailAddress",
        "user.email",
        "urn:oid:1.2.840.113549.1.9.1",  # PKCS#9 emailAddress
        # Entra's default "name" claim is the UPN: the last resort when no mail is released.
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name",
    ),
    "given_name": (
        "givenName",
        "urn:oid:2.5.4.42",
        "firstName",
        "first_name",
        "given_name",
        "FirstName",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
        "user.firstName",
    ),
    "family_name": (
        "sn",
        "urn:oid:2.5.4.4",
        "surname",
        "lastName",
        "last_name",
        "family_name",
        "LastName",
        "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
        "user.lastName",
    ),
    "display_name": (
        "displayName",
        "urn:oid:2.16.840.1.113730.3.1.241",
        "http://schemas.microsoft.com/identity/claims/displayname",
        "display_name",
        "name",
        "cn",
        "urn:oid:2.5.4.3",
        "http://schemas.xmlsoap.org/claims/CommonName",  # ADFS
    ),
}


@dataclass(frozen=True)
class CheckResult:
    """One line of the admin's "Test connection" report (spec 3)."""

    check: str
    passed: bool
    detail: str = ""


@dataclass(frozen=True)
class VerifyPolicy:
    """Everything the verification needs from a Connection, read once."""

    connection_id: int
    idp_entity_id: str
    sp_entity_id: str
    acs_url: str
    certificates: tuple[str, ...]  # PEM; several allowed for rollover
    allow_sha1: bool = False
    allow_idp_initiated: bool = False
    attribute_mapping: Mapping[str, str] = field(default_factory=dict)


class _Stop(Exception):
    """Report mode: a check the following ones depend on failed."""


class _Recorder:
    def __init__(self, report: bool) -> None:
        self.report = report
        self.results: list[CheckResult] = []

    def ok(self, check: str, detail: str = "") -> None:
        self.results.append(CheckResult(check, True, detail))

    def fail(
        self, check: str, detail: str, *, code: ErrorCode | None = None, fatal: bool = False
    ) -> None:
        self.results.append(CheckResult(check, False, detail))
        if not self.report:
            raise SsoError(code or CHECK_CODES[check], check, detail)
        if fatal:
            raise _Stop


_compiled = threading.local()


def _all(element: etree._Element, path: str) -> list:
    # XPath (libxml2) rather than ElementPath: the same answer for every tree, however built.
    # Compiled once per path and thread (the paths are constants of this module).
    cache = getattr(_compiled, "xpaths", None)
    if cache is None:
        cache = _compiled.xpaths = {}
    compiled = cache.get(path)
    if compiled is None:
        compiled = cache[path] = etree.XPath(path, namespaces=NS)
    return compiled(element)


def _one(element: etree._Element, path: str):
    found = _all(element, path)
    return found[0] if found else None


def _short(value: object, limit: int = 120) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


_schemas = threading.local()


def _protocol_schema() -> etree.XMLSchema:
    """python3-saml's SAML 2.0 protocol schema, compiled once per thread (compiling it is two
    thirds of python3-saml's own per-response cost; see shared/performance-notes.md)."""
    schema = getattr(_schemas, "protocol", None)
    if schema is None:
        path = Path(onelogin.saml2.__file__).parent / "schemas" / "saml-schema-protocol-2.0.xsd"
        schema = etree.XMLSchema(etree.parse(str(path)))  # noqa: S320 - our own packaged file
        _schemas.protocol = schema
    return schema


def verify_response(
    policy: VerifyPolicy,
    saml_response: str | bytes,
    *,
    expected_request_id: str | None,
    now: datetime,
    report: bool = False,
    require_authn_after: datetime | None = None,
) -> tuple[AssertedIdentity | None, list[CheckResult]]:
    """Verify a base64 SAMLResponse POST value.

    require_authn_after: when set, the IdP must have authenticated the subject at or after
    this moment (less CLOCK_SKEW), per the verified Assertion's AuthnInstant.

    report=False: raise SsoError at the first failed check; on success consume the
    assertion ID (replay cache) and return the identity.
    report=True: never raise, write nothing (the replay cache is only read) and return every
    check's result; the identity is returned when every check passed.
    """
    recorder = _Recorder(report)
    try:
        identity = _verify(
            recorder, policy, saml_response, expected_request_id, now, require_authn_after
        )
    except _Stop:
        return None, recorder.results
    if report and not all(r.passed for r in recorder.results):
        return None, recorder.results
    return identity, recorder.results


def _verify(
    rec: _Recorder,
    policy: VerifyPolicy,
    saml_response: str | bytes,
    expected_request_id: str | None,
    now: datetime,
    require_authn_after: datetime | None = None,
) -> AssertedIdentity | None:
    root = _decode_and_parse(rec, saml_response)
    _check_status(rec, root)
    assertion = _single_assertion(rec, root)
    response_verified, assertion_verified = _verify_signatures(rec, policy, root, assertion)

    # From here on every read is from `assertion` (covered by a verified signature) or from
    # the Response (trusted only when response_verified, which the InResponseTo rule uses).
    destination = root.get("Destination")
    if destination is None:
        rec.fail("destination", "the Response has no Destination")
    elif destination != policy.acs_url:
        rec.fail("destination", f"Destination {_short(destination)} is not our ACS URL")
    else:
        rec.ok("destination", destination)

    _check_issuer(rec, policy, root, assertion)

    subject = _one(assertion, "saml:Subject")
    if subject is None:
        rec.fail("subject", "the Assertion has no Subject", fatal=True)
        return None
    scd, scd_not_on_or_after = _check_subject_confirmation(rec, policy, subject, now)
    _check_in_response_to(
        rec,
        policy,
        expected_request_id,
        response_irt=root.get("InResponseTo"),
        response_trusted=response_verified,
        scd_irt=scd.get("InResponseTo") if scd is not None else None,
        assertion_trusted=assertion_verified or response_verified,
    )
    conditions_not_on_or_after = _check_conditions(rec, policy, assertion, now)
    if require_authn_after is not None:
        _check_authn_instant(rec, assertion, require_authn_after, now)
    attributes = _read_attributes(rec, assertion)
    subject_value, name_id, name_id_format = _read_subject(rec, policy, subject, attributes)
    email = _read_email(rec, policy, attributes, name_id, name_id_format)
    names = {
        key: _pick(attributes, policy.attribute_mapping.get(key), DEFAULT_ATTRIBUTES[key])
        for key in ("given_name", "family_name", "display_name")
    }
    rec.ok(
        "attributes",
        "; ".join(f"{name}={', '.join(values)}" for name, values in attributes.items())[:2000]
        or "(none)",
    )

    ends = [t for t in (scd_not_on_or_after, conditions_not_on_or_after) if t is not None]
    until = (min(ends) if ends else now) + CLOCK_SKEW
    assertion_id = assertion.get("ID", "")
    key = replay_key(policy.connection_id, assertion_id)
    if rec.report:
        if replay.seen(REPLAY_NAMESPACE, key):
            rec.fail("replay", f"assertion {_short(assertion_id)} was already used")
        else:
            rec.ok("replay", "assertion not seen before (a test run does not record it)")
    elif not replay.remember_once(REPLAY_NAMESPACE, key, until):
        rec.fail("replay", f"assertion {_short(assertion_id)} was already used")
    else:
        rec.ok("replay", assertion_id)

    return AssertedIdentity(
        connection_id=policy.connection_id,
        subject=subject_value,
        email=email,
        # SAML: the organization's IdP vouches for the address it releases (the org owns the
        # domain). Still a claim, never a key: flows never link accounts on it (spec 6).
        email_verified=True,
        given_name=names["given_name"],
        family_name=names["family_name"],
        display_name=names["display_name"],
        attributes=attributes,
    )


def replay_key(connection_id: int, assertion_id: str) -> str:
    return f"{connection_id}:{assertion_id}"


# --- 1. bytes -> tree -----------------------------------------------------------------------


def _decode_and_parse(rec: _Recorder, saml_response: str | bytes) -> etree._Element:
    raw = (
        saml_response.encode("ascii", "replace")
        if isinstance(saml_response, str)
        else (saml_response)
    )
    if len(raw) > MAX_POST_VALUE:
        rec.fail("xml", "SAMLResponse is too large", fatal=True)
    try:
        data = base64.b64decode(b"".join(raw.split()), validate=True)
    except (binascii.Error, ValueError):
        rec.fail("xml", "SAMLResponse is not base64", fatal=True)
        raise _Stop from None
    try:
        root = parse_untrusted_xml(data)
    except UnsafeXml as exc:
        rec.fail("dtd", str(exc), fatal=True)
        raise _Stop from None
    except (etree.XMLSyntaxError, ValueError) as exc:
        rec.ok("dtd")
        rec.fail("xml", f"not a well-formed XML document: {exc}"[:300], fatal=True)
        raise _Stop from None
    rec.ok("dtd", "no DTD or entities")
    if root.tag != f"{{{SAMLP}}}Response":
        rec.fail("xml", f"the document is {_short(root.tag)}, not a samlp:Response", fatal=True)
    if root.get("Version") != "2.0":
        rec.fail("xml", "the Response is not SAML version 2.0", fatal=True)
    rec.ok("xml", "a SAML 2.0 Response")
    schema = _protocol_schema()
    if not schema.validate(root):
        error = schema.error_log.last_error
        rec.fail("schema", f"not valid against the SAML 2.0 schema: {error}"[:300], fatal=True)
    rec.ok("schema", "valid against the SAML 2.0 protocol schema")
    return root


def _check_status(rec: _Recorder, root: etree._Element) -> None:
    status_code = _one(root, "samlp:Status/samlp:StatusCode")
    value = status_code.get("Value") if status_code is not None else None
    if value == STATUS_SUCCESS:
        rec.ok("status", "Success")
        return
    parts = [str(value)]
    if status_code is not None:
        nested = _one(status_code, "samlp:StatusCode")
        if nested is not None:
            parts.append(str(nested.get("Value")))
    message = text_of(_one(root, "samlp:Status/samlp:StatusMessage"))
    if message:
        parts.append(message[:200])
    # Unsigned in general: only ever shown as "your IdP reported a problem", never trusted.
    rec.fail("status", "the IdP answered " + " / ".join(parts), fatal=True)


def _single_assertion(rec: _Recorder, root: etree._Element) -> etree._Element:
    if _all(root, "//saml:EncryptedAssertion"):
        rec.fail(
            "encrypted_assertion",
            "encrypted assertions are not supported: turn off assertion encryption for this "
            "service provider at the IdP",
            fatal=True,
        )
    # Anywhere in the document, not just in the expected place: an assertion tucked into
    # Extensions, ds:Object or a nested Response is the raw material of signature wrapping.
    everywhere = _all(root, "//saml:Assertion")
    direct = _all(root, "saml:Assertion")
    if len(everywhere) != 1 or len(direct) != 1:
        rec.fail(
            "assertion_count",
            f"{len(everywhere)} assertions in the document ({len(direct)} in the Response); "
            "exactly one is required",
            fatal=True,
        )
    rec.ok("assertion_count", "exactly one assertion")
    assertion = direct[0]
    if assertion.get("Version") != "2.0":
        rec.fail("xml", "the Assertion is not SAML version 2.0", fatal=True)
    return assertion


# --- 2 + 3. signatures ----------------------------------------------------------------------


def _verify_signatures(
    rec: _Recorder, policy: VerifyPolicy, root: etree._Element, assertion: etree._Element
) -> tuple[bool, bool]:
    response_signature = assertion_signature = None
    for signature in _all(root, "//ds:Signature"):
        parent = signature.getparent()
        if parent is root and response_signature is None:
            response_signature = signature
        elif parent is assertion and assertion_signature is None:
            assertion_signature = signature
        else:
            rec.fail(
                "signature",
                "a signature in an unexpected place (only the Response and its Assertion may "
                "be signed)",
                fatal=True,
            )
    if response_signature is None and assertion_signature is None:
        rec.fail("signature", "neither the Response nor the Assertion is signed", fatal=True)

    if _all(root, "//@xml:id"):
        # libxml2 resolves xml:id as an ID too: a second, unregistered ID space.
        rec.fail("signature", "xml:id attributes are not allowed", fatal=True)
    ids: set[str] = set()
    for value in _all(root, "//@ID"):
        value = str(value)
        if value in ids:
            rec.fail("signature", f"the ID {_short(value)} appears twice", fatal=True)
        ids.add(value)

    structure_ok = {}
    for name, signature, parent in (
        ("Response", response_signature, root),
        ("Assertion", assertion_signature, assertion),
    ):
        if signature is not None:
            structure_ok[name] = _check_signature_structure(rec, policy, name, signature, parent)

    if not policy.certificates:
        rec.fail("signature", "the connection has no IdP certificate", fatal=True)
    keys = _load_keys(rec, policy.certificates)
    xmlsec.tree.add_ids(root, ["ID"])

    verified = {"Response": False, "Assertion": False}
    failed = []
    for name, signature in (("Response", response_signature), ("Assertion", assertion_signature)):
        if signature is None or not structure_ok.get(name):
            continue
        verified[name] = _verify_with_any(policy, signature, keys)
        if not verified[name]:
            failed.append(name)
    if failed:
        rec.fail(
            "signature",
            f"the {' and '.join(failed)} signature does not verify with any certificate of "
            "this connection",
        )
    elif verified["Response"] or verified["Assertion"]:
        signed = " and ".join(n for n in ("Response", "Assertion") if verified[n])
        rec.ok("signature", f"{signed} signed by a certificate of this connection")
    else:
        rec.fail("signature", "no signature could be verified")
    return verified["Response"], verified["Assertion"]


def _check_signature_structure(
    rec: _Recorder, policy: VerifyPolicy, name: str, signature: etree._Element, parent
) -> bool:
    """Everything about a ds:Signature that can be refused without running xmlsec."""
    problems_before = len([r for r in rec.results if not r.passed])

    signed_infos = _all(signature, "ds:SignedInfo")
    if len(signed_infos) != 1 or _one(signature, "ds:Object") is not None:
        rec.fail("signature", f"the {name} signature is malformed (SignedInfo/Object)")
        return False
    signed_info = signed_infos[0]

    c14n = _one(signed_info, "ds:CanonicalizationMethod")
    if c14n is None or c14n.get("Algorithm") not in SIGNED_INFO_C14N or _foreign_children(c14n):
        algorithm = c14n.get("Algorithm") if c14n is not None else None
        rec.fail("transforms", f"{name} SignedInfo canonicalization {_short(algorithm)} refused")

    method = _one(signed_info, "ds:SignatureMethod")
    method_uri = method.get("Algorithm") if method is not None else None
    _check_algorithm(
        rec, policy, name, "signature", method_uri, SIGNATURE_METHODS, SIGNATURE_METHODS_SHA1
    )

    references = _all(signed_info, "ds:Reference")
    if len(references) != 1:
        rec.fail("reference_uri", f"the {name} signature has {len(references)} References")
        return False
    reference = references[0]
    uri = reference.get("URI")
    parent_id = parent.get("ID")
    if not uri or not parent_id or uri != "#" + parent_id:
        rec.fail(
            "reference_uri",
            f"the {name} signature's Reference URI {_short(uri)} does not point at the "
            f"{name}'s ID {_short(parent_id)}",
        )
    else:
        rec.ok("reference_uri", f"{name} signature references {uri}")

    transforms = _all(reference, "ds:Transforms/ds:Transform")
    algorithms = [t.get("Algorithm") for t in transforms]
    bad = [a for a in algorithms if a not in REFERENCE_TRANSFORMS]
    if (
        bad
        or ENVELOPED not in algorithms
        or len(algorithms) != len(set(algorithms))
        or any(_foreign_children(t) for t in transforms)
    ):
        rec.fail(
            "transforms",
            f"the {name} signature's transforms {_short(algorithms)} are refused (only "
            "enveloped-signature and exclusive c14n are allowed)",
        )
    else:
        rec.ok("transforms", f"{name}: enveloped-signature + exclusive c14n")

    digest = _one(reference, "ds:DigestMethod")
    digest_uri = digest.get("Algorithm") if digest is not None else None
    _check_algorithm(rec, policy, name, "digest", digest_uri, DIGEST_METHODS, DIGEST_METHODS_SHA1)

    return len([r for r in rec.results if not r.passed]) == problems_before


def _foreign_children(element: etree._Element) -> bool:
    """Any child other than exclusive c14n's InclusiveNamespaces."""
    for child in element:
        if not isinstance(child.tag, str):
            continue  # comments
        if child.tag != f"{{{EXC_C14N}}}InclusiveNamespaces":
            return True
    return False


def _check_algorithm(rec, policy, name, what, uri, allowed, sha1) -> None:
    if uri in allowed:
        rec.ok("signature_algorithm", f"{name} {what} {uri}")
    elif uri in sha1 and policy.allow_sha1:
        rec.ok("signature_algorithm", f"{name} {what} {uri} (SHA-1 allowed for this connection)")
    elif uri in sha1:
        rec.fail(
            "signature_algorithm",
            f"the {name} {what} uses SHA-1 ({uri}), which this connection does not allow",
        )
    else:
        rec.fail("signature_algorithm", f"the {name} {what} algorithm {_short(uri)} is refused")


@functools.lru_cache(maxsize=256)
def _key_for(pem: str) -> xmlsec.Key | None:
    # Safe to share: assigning SignatureContext.key duplicates the key.
    try:
        return xmlsec.Key.from_memory(pem.encode(), xmlsec.KeyFormat.CERT_PEM)
    except xmlsec.Error:
        return None


def _load_keys(rec: _Recorder, certificates: Sequence[str]) -> list[xmlsec.Key]:
    # A broken row must not lock out the good ones.
    keys = [key for key in map(_key_for, certificates) if key is not None]
    if not keys:
        rec.fail("signature", "no usable IdP certificate on this connection", fatal=True)
    return keys


def _verify_with_any(policy: VerifyPolicy, signature: etree._Element, keys) -> bool:
    for key in keys:
        ctx = xmlsec.SignatureContext()
        # Setting the key means xmlsec never looks at the message's KeyInfo for one.
        ctx.key = key
        for transform in (xmlsec.Transform.ENVELOPED, xmlsec.Transform.EXCL_C14N):
            ctx.enable_reference_transform(transform)
        for transform in XMLSEC_C14N.values():
            ctx.enable_signature_transform(transform)
        for uri, transform in XMLSEC_SIGNATURE_METHODS.items():
            if uri in SIGNATURE_METHODS or (policy.allow_sha1 and uri in SIGNATURE_METHODS_SHA1):
                ctx.enable_signature_transform(transform)
        for uri, transform in XMLSEC_DIGESTS.items():
            if uri in DIGEST_METHODS or (policy.allow_sha1 and uri in DIGEST_METHODS_SHA1):
                ctx.enable_reference_transform(transform)
        try:
            ctx.verify(signature)
        except xmlsec.Error:
            continue
        return True
    return False


# --- 4. semantics, from verified nodes only -------------------------------------------------


def _check_issuer(rec, policy: VerifyPolicy, root, assertion) -> None:
    assertion_issuer = text_of(_one(assertion, "saml:Issuer"))
    if assertion_issuer != policy.idp_entity_id:
        rec.fail(
            "issuer",
            f"Assertion Issuer {_short(assertion_issuer)} is not the connection's IdP "
            f"{_short(policy.idp_entity_id)}",
        )
        return
    response_issuer_element = _one(root, "saml:Issuer")
    # Optional on the Response in SAML core; when present it must agree.
    if response_issuer_element is not None:
        response_issuer = text_of(response_issuer_element)
        if response_issuer != policy.idp_entity_id:
            rec.fail(
                "issuer",
                f"Response Issuer {_short(response_issuer)} is not the connection's IdP",
            )
            return
    rec.ok("issuer", assertion_issuer)


def _time(rec: _Recorder, check: str, value: str | None, where: str) -> datetime | None:
    if value is None:
        return None
    try:
        return parse_saml_time(value)
    except ValueError:
        rec.fail(check, f"{where} {check} is not a valid time", code=ErrorCode.SSO_RESPONSE_INVALID)
        return None


def _check_window(rec: _Recorder, now: datetime, where: str, not_before, not_on_or_after) -> None:
    if not_before is not None:
        if now + CLOCK_SKEW < not_before:
            rec.fail("not_before", f"{where} NotBefore {not_before.isoformat()} is in the future")
        else:
            rec.ok("not_before", f"{where} NotBefore {not_before.isoformat()}")
    if not_on_or_after is not None:
        if now - CLOCK_SKEW >= not_on_or_after:
            rec.fail(
                "not_on_or_after",
                f"{where} NotOnOrAfter {not_on_or_after.isoformat()} has passed",
            )
        else:
            rec.ok("not_on_or_after", f"{where} NotOnOrAfter {not_on_or_after.isoformat()}")


def _check_subject_confirmation(
    rec: _Recorder, policy: VerifyPolicy, subject, now: datetime
) -> tuple[etree._Element | None, datetime | None]:
    """Pick the bearer SubjectConfirmationData that satisfies every rule; report the first
    bearer's problems when none does."""
    bearers = [
        _one(sc, "saml:SubjectConfirmationData")
        for sc in _all(subject, "saml:SubjectConfirmation")
        if sc.get("Method") == CM_BEARER
    ]
    if not bearers:
        rec.fail("subject_confirmation", "no bearer SubjectConfirmation")
        return None, None
    candidates = []
    for data in bearers:
        trial = _Recorder(report=True)
        if data is None:
            trial.fail("recipient", "a bearer SubjectConfirmation without SubjectConfirmationData")
            candidates.append((data, None, trial))
            continue
        recipient = data.get("Recipient")
        if recipient is None:
            trial.fail("recipient", "SubjectConfirmationData has no Recipient")
        elif recipient != policy.acs_url:
            trial.fail("recipient", f"Recipient {_short(recipient)} is not our ACS URL")
        else:
            trial.ok("recipient", recipient)
        not_before = _time(trial, "not_before", data.get("NotBefore"), "SubjectConfirmationData")
        not_on_or_after = _time(
            trial, "not_on_or_after", data.get("NotOnOrAfter"), "SubjectConfirmationData"
        )
        if data.get("NotOnOrAfter") is None:
            trial.fail("not_on_or_after", "SubjectConfirmationData has no NotOnOrAfter")
        _check_window(trial, now, "SubjectConfirmationData", not_before, not_on_or_after)
        candidates.append((data, not_on_or_after, trial))
        if all(r.passed for r in trial.results):
            break
    chosen = next((c for c in candidates if all(r.passed for r in c[2].results)), candidates[0])
    data, not_on_or_after, trial = chosen
    for result in trial.results:
        if result.passed:
            rec.ok(result.check, result.detail)
        else:
            code = CHECK_CODES[result.check]
            if "not a valid time" in result.detail:
                code = ErrorCode.SSO_RESPONSE_INVALID
            rec.fail(result.check, result.detail, code=code)
    return data, not_on_or_after


def _check_in_response_to(
    rec: _Recorder,
    policy: VerifyPolicy,
    expected: str | None,
    *,
    response_irt: str | None,
    response_trusted: bool,
    scd_irt: str | None,
    assertion_trusted: bool,
) -> None:
    if expected is None:
        if not policy.allow_idp_initiated:
            rec.fail(
                "unsolicited",
                "an IdP-initiated (unsolicited) response, and this connection does not allow "
                "IdP-initiated login",
            )
            return
        if response_irt is not None or scd_irt is not None:
            rec.fail(
                "in_response_to",
                "the response answers a request, but no request is pending in this browser",
            )
            return
        rec.ok("unsolicited", "IdP-initiated login is allowed for this connection")
        return
    # InResponseTo binds the response to this browser's request; it counts only when read
    # from a signed element. With only the Assertion signed, Response@InResponseTo is
    # attacker-controlled, so the signed SubjectConfirmationData must carry it.
    for value, where in ((response_irt, "Response"), (scd_irt, "SubjectConfirmationData")):
        if value is not None and value != expected:
            rec.fail("in_response_to", f"{where} InResponseTo answers another request")
            return
    if response_trusted and response_irt == expected:
        rec.ok("in_response_to", "signed Response answers our request")
    elif assertion_trusted and scd_irt == expected:
        rec.ok("in_response_to", "signed SubjectConfirmationData answers our request")
    else:
        rec.fail(
            "in_response_to",
            "no signed element says which request this answers (InResponseTo missing from the "
            "signed Response and from the signed Assertion's SubjectConfirmationData)",
        )


def _check_conditions(
    rec: _Recorder, policy: VerifyPolicy, assertion, now: datetime
) -> datetime | None:
    conditions = _one(assertion, "saml:Conditions")
    if conditions is None:
        rec.fail("audience", "the Assertion has no Conditions (and so no AudienceRestriction)")
        return None
    not_before = _time(rec, "not_before", conditions.get("NotBefore"), "Conditions")
    not_on_or_after = _time(rec, "not_on_or_after", conditions.get("NotOnOrAfter"), "Conditions")
    _check_window(rec, now, "Conditions", not_before, not_on_or_after)
    restrictions = _all(conditions, "saml:AudienceRestriction")
    if not restrictions:
        rec.fail("audience", "the Assertion has no AudienceRestriction")
        return not_on_or_after
    for restriction in restrictions:  # several restrictions all apply (SAML core 2.5.1.4)
        audiences = [text_of(a) for a in _all(restriction, "saml:Audience")]
        if policy.sp_entity_id not in audiences:
            rec.fail(
                "audience",
                f"AudienceRestriction {_short(audiences)} does not name our entity ID",
            )
            return not_on_or_after
    rec.ok("audience", policy.sp_entity_id)
    return not_on_or_after


def _check_authn_instant(rec: _Recorder, assertion, require_after: datetime, now: datetime) -> None:
    """The subject authenticated at the IdP no earlier than `require_after` (less the skew):
    the latest AuthnInstant of the verified Assertion's AuthnStatements counts."""
    statements = _all(assertion, "saml:AuthnStatement")
    if not statements:
        rec.fail(
            "authn_instant",
            "a fresh login was required and the Assertion has no AuthnStatement",
        )
        return
    instants = []
    for statement in statements:
        value = statement.get("AuthnInstant")
        if value is None:
            rec.fail(
                "authn_instant",
                "a fresh login was required and an AuthnStatement has no AuthnInstant",
            )
            return
        try:
            instants.append(parse_saml_time(value))
        except ValueError:
            rec.fail(
                "authn_instant",
                f"AuthnInstant {_short(value)} is not a valid time",
                code=ErrorCode.SSO_RESPONSE_INVALID,
            )
            return
    latest = max(instants)
    if latest > now + CLOCK_SKEW:
        rec.fail(
            "authn_instant",
            f"AuthnInstant {latest.isoformat()} is in the future",
            code=ErrorCode.SSO_CLOCK_SKEW,
        )
    elif latest < require_after - CLOCK_SKEW:
        rec.fail(
            "authn_instant",
            f"AuthnInstant {latest.isoformat()} is before the fresh login was asked for "
            f"({require_after.isoformat()}): the IdP answered from an earlier session",
        )
    else:
        rec.ok("authn_instant", f"AuthnInstant {latest.isoformat()} (a fresh login)")


def _read_attributes(rec: _Recorder, assertion) -> dict[str, tuple[str, ...]]:
    attributes: dict[str, tuple[str, ...]] = {}
    duplicates = []
    for statement in _all(assertion, "saml:AttributeStatement"):
        for attribute in _all(statement, "saml:Attribute"):
            name = attribute.get("Name", "")
            values = tuple(
                text_of(value)
                for value in _all(attribute, "saml:AttributeValue")
                if value.get(f"{{{XSI}}}nil") not in {"true", "1"}
            )
            if name in attributes:
                duplicates.append(name)
                continue
            attributes[name] = values
    if duplicates:
        # Which of two values is "the" email would be the parser's choice, not the IdP's.
        rec.fail("duplicate_attribute", f"attributes sent twice: {_short(sorted(set(duplicates)))}")
    else:
        rec.ok("duplicate_attribute", f"{len(attributes)} distinct attributes")
    return attributes


def _pick(attributes: Mapping[str, tuple[str, ...]], mapped: str | None, defaults) -> str:
    names = (mapped,) if mapped else defaults
    for name in names:
        for value in attributes.get(name, ()):
            if value:
                return value
    if not mapped:
        lowered = {k.lower(): v for k, v in attributes.items()}
        for name in defaults:
            for value in lowered.get(name.lower(), ()):
                if value:
                    return value
    return ""


def _read_subject(
    rec: _Recorder, policy: VerifyPolicy, subject, attributes
) -> tuple[str, str, str]:
    """The NameID unless it is transient (or absent); then the mapped `subject` attribute."""
    if _one(subject, "saml:EncryptedID") is not None:
        rec.fail("subject", "encrypted NameIDs are not supported")
        return "", "", ""
    name_id_element = _one(subject, "saml:NameID")
    name_id = text_of(name_id_element)
    name_id_format = name_id_element.get("Format", "") if name_id_element is not None else ""
    subject_attribute = policy.attribute_mapping.get("subject") or ""
    if name_id and name_id_format != NAMEID_TRANSIENT:
        value, source = name_id, f"NameID ({name_id_format or 'unspecified format'})"
    elif subject_attribute:
        values = [v for v in attributes.get(subject_attribute, ()) if v]
        if len(values) != 1:
            rec.fail(
                "subject",
                f"the NameID is transient or missing and the subject attribute "
                f"{_short(subject_attribute)} has {len(values)} values (exactly one required)",
            )
            return "", name_id, name_id_format
        value, source = values[0], f"attribute {subject_attribute}"
    else:
        rec.fail(
            "subject",
            "the NameID is transient or missing and no subject attribute is mapped; ask the "
            "IdP for a persistent NameID or map a stable attribute as the subject",
        )
        return "", name_id, name_id_format
    if len(value) > MAX_SUBJECT_LENGTH:
        rec.fail("subject", f"the subject is longer than {MAX_SUBJECT_LENGTH} characters")
        return "", name_id, name_id_format
    rec.ok("subject", f"{source}: {value}")
    return value, name_id, name_id_format


def _read_email(rec: _Recorder, policy: VerifyPolicy, attributes, name_id, name_id_format) -> str:
    mapped = policy.attribute_mapping.get("email") or None
    email = _pick(attributes, mapped, DEFAULT_ATTRIBUTES["email"])
    if not email and name_id_format == NAMEID_EMAIL and not mapped:
        email = name_id
    if not email:
        rec.fail(
            "email",
            f"no email attribute (looked for {_short(mapped or 'the usual names')})",
            code=ErrorCode.SSO_MISSING_ATTRIBUTES,
        )
        return ""
    try:
        validate_email(email)
    except ValidationError:
        rec.fail(
            "email", f"{_short(email)} is not an email address", code=ErrorCode.SSO_RESPONSE_INVALID
        )
        return ""
    rec.ok("email", email)
    return email
