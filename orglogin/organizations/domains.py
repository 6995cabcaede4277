"""Email domain names as we store and compare them: lowercase, no trailing dot, IDNA (punycode).

One function for both sides, so a domain an operator adds and the text a learner types are
compared in the same form.
"""

from __future__ import annotations

import re

import idna

_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
MAX_LABELS = 16  # deeper names are not email domains; also bounds the HRD candidate list


class DomainError(ValueError):
    """The text is not a domain name we accept."""


def normalize_domain(raw: str) -> str:
    """`Acme.COM.` -> `acme.com`, `bücher.example` -> `xn--bcher-kva.example`.

    Raises DomainError for anything that is not a multi-label DNS name (no IP addresses,
    no single labels such as `localhost`, no spaces, `@`, `/` or ports).
    """
    name = (raw or "").strip().lower().rstrip(".")
    if not name:
        raise DomainError("empty domain")
    if any(ch.isspace() for ch in name) or any(ch in name for ch in "@/:\\?#[]"):
        raise DomainError(f"not a domain name: {raw.strip()!r}")
    if not name.isascii():
        try:
            name = idna.encode(name, uts46=True).decode("ascii")
        except idna.IDNAError as exc:
            raise DomainError(f"not a valid international domain name: {raw.strip()!r}") from exc
    labels = name.split(".")
    if len(labels) < 2 or len(labels) > MAX_LABELS or len(name) > 253:
        raise DomainError(f"not a domain name: {raw.strip()!r}")
    if not all(_LABEL.match(label) for label in labels):
        raise DomainError(f"not a domain name: {raw.strip()!r}")
    if labels[-1].isdigit():
        raise DomainError(f"an IP address is not a domain name: {raw.strip()!r}")
    return name


def parent_domains(name: str) -> list[str]:
    """`a.b.acme.com` -> [`a.b.acme.com`, `b.acme.com`, `acme.com`] (never the bare TLD)."""
    labels = name.split(".")
    return [".".join(labels[i:]) for i in range(len(labels) - 1)]
