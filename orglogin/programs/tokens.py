"""Invitation tokens: unguessable (256 bits), stored only as a hash, re-derivable for mailing."""

from __future__ import annotations

import base64
import hashlib
import secrets

from django.utils.crypto import salted_hmac

KEY_SALT = "orglogin.programs.invitation-token"


def new_salt() -> str:
    return secrets.token_hex(16)


def token_for(salt: str) -> str:
    """The link token for an invitation's salt; needs SECRET_KEY, so the DB alone can't mint it."""
    digest = salted_hmac(KEY_SALT, salt, algorithm="sha256").digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
