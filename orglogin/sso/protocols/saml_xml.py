"""XML plumbing shared by the SAML layer and the development IdP: a hardened parser, the
namespaces and algorithm URIs, SAML time values and an xmlsec signer.

Only `orglogin.sso.protocols` imports this module (conventions: xmlsec stays in protocols).
"""

from __future__ import annotations

import base64
import re
import secrets
import textwrap
from datetime import UTC, datetime, timedelta

import xmlsec
from lxml import etree

SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
XS = "http://www.w3.org/2001/XMLSchema"
NS = {"samlp": SAMLP, "saml": SAML, "md": MD, "ds": DS, "xsi": XSI, "xs": XS}

BINDING_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"
NAMEID_PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
NAMEID_TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
NAMEID_EMAIL = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
CM_BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
ATTRNAME_BASIC = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
ATTRNAME_URI = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"

# Algorithms (XML-DSig and its 2008 additions).
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N11 = "http://www.w3.org/2006/12/xml-c14n11"
RSA_SHA1 = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
RSA_SHA384 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha384"
RSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512"
ECDSA_SHA1 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
ECDSA_SHA384 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha384"
ECDSA_SHA512 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha512"
SHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
SHA384 = "http://www.w3.org/2001/04/xmldsig-more#sha384"
SHA512 = "http://www.w3.org/2001/04/xmlenc#sha512"

SIGNATURE_METHODS = {RSA_SHA256, RSA_SHA384, RSA_SHA512, ECDSA_SHA256, ECDSA_SHA384, ECDSA_SHA512}
SIGNATURE_METHODS_SHA1 = {RSA_SHA1, ECDSA_SHA1}
DIGEST_METHODS = {SHA256, SHA384, SHA512}
DIGEST_METHODS_SHA1 = {SHA1}
# SignedInfo canonicalization: the exclusive and inclusive forms, never "#WithComments".
SIGNED_INFO_C14N = {EXC_C14N, C14N, C14N11}
# Reference transforms (spec: enveloped-signature and exclusive c14n, nothing else: no XSLT,
# no XPath, no Base64 - each of those is pre-auth attack surface in libxmlsec1).
REFERENCE_TRANSFORMS = {ENVELOPED, EXC_C14N}

XMLSEC_SIGNATURE_METHODS = {
    RSA_SHA1: xmlsec.Transform.RSA_SHA1,
    RSA_SHA256: xmlsec.Transform.RSA_SHA256,
    RSA_SHA384: xmlsec.Transform.RSA_SHA384,
    RSA_SHA512: xmlsec.Transform.RSA_SHA512,
    ECDSA_SHA1: xmlsec.Transform.ECDSA_SHA1,
    ECDSA_SHA256: xmlsec.Transform.ECDSA_SHA256,
    ECDSA_SHA384: xmlsec.Transform.ECDSA_SHA384,
    ECDSA_SHA512: xmlsec.Transform.ECDSA_SHA512,
}
XMLSEC_DIGESTS = {
    SHA1: xmlsec.Transform.SHA1,
    SHA256: xmlsec.Transform.SHA256,
    SHA384: xmlsec.Transform.SHA384,
    SHA512: xmlsec.Transform.SHA512,
}
XMLSEC_C14N = {
    EXC_C14N: xmlsec.Transform.EXCL_C14N,
    C14N: xmlsec.Transform.C14N,
    C14N11: xmlsec.Transform.C14N11,
}

MAX_DOCUMENT_BYTES = 256 * 1024


class UnsafeXml(ValueError):
    """The document declares a DTD or entities: refused before any XML processing."""


def parse_untrusted_xml(data: bytes, *, max_bytes: int = MAX_DOCUMENT_BYTES) -> etree._Element:
    """Parse XML from outside with every dangerous feature off; refuse DTDs and entities.

    Raises UnsafeXml for a DTD/entity declaration and etree.XMLSyntaxError / ValueError for
    anything that is not one well-formed document. Does NOT check any signature.
    """
    if len(data) > max_bytes:
        raise ValueError(f"document larger than {max_bytes} bytes")
    # A DTD is the only way to declare entities (billion laughs, external entities, XXE).
    # This byte test covers UTF-8/ASCII; the docinfo test below covers other encodings.
    if b"<!DOCTYPE" in data or b"<!ENTITY" in data:
        raise UnsafeXml("document type declarations are not allowed")
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=False,
        remove_pis=False,
        strip_cdata=True,
    )
    root = etree.fromstring(data, parser=parser)  # noqa: S320 - hardened parser above
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise UnsafeXml("document type declarations are not allowed")
    for node in root.iter(etree.Entity):
        raise UnsafeXml(f"entity reference {node.text!r} is not allowed")
    return root


def text_of(element: etree._Element | None) -> str:
    """The full text content of an element, comments and child markup notwithstanding.

    `user@evil.com<!---->.attacker.com` reads as `user@evil.com.attacker.com` (the signed
    value under exclusive c14n), never as the part before the comment.
    """
    if element is None:
        return ""
    return str(element.xpath("string()")).strip()


_SAML_TIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})?$"
)


def parse_saml_time(value: str) -> datetime:
    """xs:dateTime as SAML uses it (UTC, 'Z'); offsets are accepted, no zone means UTC."""
    match = _SAML_TIME.match(value.strip())
    if not match:
        raise ValueError(f"not a SAML time: {value[:40]!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    moment = datetime(
        int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=UTC
    )
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        moment -= sign * timedelta(hours=hours, minutes=minutes)
    return moment


def format_saml_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id() -> str:
    # NCName: must not start with a digit.
    return "_" + secrets.token_hex(20)


def pem_body(pem: str) -> str:
    """Base64 body of a PEM certificate (what <ds:X509Certificate> holds)."""
    lines = [ln.strip() for ln in pem.strip().splitlines()]
    return "".join(ln for ln in lines if ln and not ln.startswith("-----"))


def pem_from_body(body: str) -> str:
    clean = re.sub(r"\s+", "", body)
    base64.b64decode(clean, validate=True)
    return (
        "-----BEGIN CERTIFICATE-----\n"
        + "\n".join(textwrap.wrap(clean, 64))
        + "\n-----END CERTIFICATE-----\n"
    )


def sign_element(
    element: etree._Element,
    *,
    key_pem: str,
    cert_pem: str | None,
    signature_method: str = RSA_SHA256,
    digest_method: str = SHA256,
) -> etree._Element:
    """Sign `element` in place (enveloped, exclusive c14n, Reference to its ID), placing the
    signature right after its Issuer as the SAML schema requires. Returns the ds:Signature.
    """
    element_id = element.get("ID")
    if not element_id:
        raise ValueError("the element to sign needs an ID")
    signature = xmlsec.template.create(
        element, xmlsec.Transform.EXCL_C14N, XMLSEC_SIGNATURE_METHODS[signature_method], ns="ds"
    )
    issuer = element.find(f"{{{SAML}}}Issuer")
    if issuer is not None:
        issuer.addnext(signature)
    else:
        element.insert(0, signature)
    ref = xmlsec.template.add_reference(
        signature, XMLSEC_DIGESTS[digest_method], uri="#" + element_id
    )
    xmlsec.template.add_transform(ref, xmlsec.Transform.ENVELOPED)
    xmlsec.template.add_transform(ref, xmlsec.Transform.EXCL_C14N)
    if cert_pem:
        key_info = xmlsec.template.ensure_key_info(signature)
        xmlsec.template.add_x509_data(key_info)
    xmlsec.tree.add_ids(element, ["ID"])
    ctx = xmlsec.SignatureContext()
    key = xmlsec.Key.from_memory(key_pem.encode(), xmlsec.KeyFormat.PEM)
    if cert_pem:
        key.load_cert_from_memory(cert_pem.encode(), xmlsec.KeyFormat.CERT_PEM)
    ctx.key = key
    ctx.sign(signature)
    return signature
