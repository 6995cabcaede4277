"""Home realm discovery (spec 2.1.2): what a learner types -> their organization.

Accepted, case- and space-insensitively: a bare domain (`acme.com`), a URL
(`https://www.acme.com/...`, `www.` dropped), an email (`jane@acme.com`) or the org slug.
Only verified domains route; a subdomain reaches its parent domain's org only when that org
allows it. One indexed query (`name__in` over the candidate suffixes), never a scan, and the
answer is the org or None: callers must not say more than that (no listing of orgs).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from django.core.exceptions import ValidationError

from orglogin.organizations.domains import DomainError, normalize_domain, parent_domains
from orglogin.organizations.models import Domain, Organization, slug_validator

MAX_INPUT_LENGTH = 320  # an email address at most


def domain_from_text(text: str) -> str | None:
    """The normalised domain named by `text` (domain, URL or email), or None."""
    text = "".join((text or "").split()).lower()  # "Acme .com " -> "acme.com"
    if not text or len(text) > MAX_INPUT_LENGTH:
        return None
    if "@" in text and "/" not in text:
        host = text.rsplit("@", 1)[1]
    else:
        if "://" not in text:
            text = "//" + text
        try:
            host = urlsplit(text).hostname or ""
        except ValueError:
            return None
    if host.startswith("www."):
        host = host[4:]
    try:
        return normalize_domain(host)
    except DomainError:
        return None


def find_organization(text: str) -> Organization | None:
    compact = "".join((text or "").split()).lower()
    if not compact:
        return None
    if "." not in compact and "@" not in compact and "/" not in compact:
        try:
            slug_validator(compact)
        except ValidationError:
            return None
        return Organization.objects.filter(slug=compact).first()

    domain = domain_from_text(compact)
    if domain is None:
        return None
    candidates = parent_domains(domain)
    matches = {
        d.name: d
        for d in Domain.objects.filter(verified=True, name__in=candidates).select_related(
            "organization"
        )
    }
    if domain in matches:
        return matches[domain].organization
    # Longest (most specific) parent first; it routes only if its org opted in.
    for parent in candidates[1:]:
        match = matches.get(parent)
        if match is not None:
            return match.organization if match.organization.match_subdomains else None
    return None
