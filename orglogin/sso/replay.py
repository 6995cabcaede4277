"""One-time use of protocol messages (spec 6: "assertion IDs are remembered until they
expire and a replay is refused").

Backed by the Django cache named by `settings.SSO_REPLAY_CACHE` (default "default"). With
`REDIS_URL` set that is Redis, shared by every app process, and `cache.add` is an atomic
SET NX: of two processes racing with the same key exactly one wins. Without Redis the
local-memory cache only protects a single process: fine for development, not for several
processes in production (spec 5 requires Redis there).
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime

from django.conf import settings
from django.core.cache import caches
from django.utils import timezone

# Keys live at least this long, so that a message whose validity ends "now" is still
# remembered for the clock-skew allowance the checks grant.
MINIMUM_TTL_SECONDS = 60


def _cache():
    return caches[getattr(settings, "SSO_REPLAY_CACHE", "default")]


def cache_key(namespace: str, key: str) -> str:
    digest = hashlib.sha256(key.encode("utf-8")).hexdigest()
    return f"sso-replay:{namespace}:{digest}"


def remember_once(namespace: str, key: str, until: datetime) -> bool:
    """Remember `key` in `namespace` until `until`; True the first time, False on a replay.

    Atomic across processes when the cache is shared (Redis `SET NX`). The key is kept until
    `until` with no upper bound: capping it would let a long-lived message be replayed once
    the key is forgotten. Callers pass the end of the message's validity plus any skew they
    allow.
    """
    remaining = (until - timezone.now()).total_seconds()
    ttl = max(MINIMUM_TTL_SECONDS, math.ceil(remaining))
    return bool(_cache().add(cache_key(namespace, key), "1", timeout=ttl))


def seen(namespace: str, key: str) -> bool:
    """Whether `key` was already remembered; writes nothing (for diagnostics only: never use
    it to decide acceptance, a check-then-add is a race)."""
    return _cache().get(cache_key(namespace, key)) is not None
