"""What a protocol hands to the flows: one verified value object, nothing protocol-specific."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class AssertedIdentity:
    """An org identity that passed every check of its protocol (signature, issuer, audience,
    time window, binding to this browser's request, replay).

    `subject` is the stable identifier (SAML NameID or the mapped subject attribute; OIDC
    `sub`/`oid`), always read together with `connection_id`. `email` is a claim, never a key:
    flows must not link accounts because of it (spec 6).
    """

    connection_id: int
    subject: str
    email: str
    email_verified: bool
    given_name: str = ""
    family_name: str = ""
    display_name: str = ""
    attributes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @property
    def full_name(self) -> str:
        return self.display_name or " ".join(p for p in (self.given_name, self.family_name) if p)
