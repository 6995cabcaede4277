"""Typed configuration, parsed and validated once from the environment.

The variable names are the operator contract of spec section 5; anything contradictory
fails at start-up with a message that names the variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

# Only ever used with DEBUG on; start-up refuses it in production.
DEVELOPMENT_SECRET_KEY = "orglogin-development-only-secret-key-do-not-use-in-production"
TRUE_WORDS = {"1", "true", "yes", "on"}
FALSE_WORDS = {"0", "false", "no", "off", ""}


@dataclass(frozen=True)
class Config:
    secret_key: str
    debug: bool
    base_url: str
    allowed_hosts: list[str]
    platform_name: str
    support_email: str
    database: dict[str, Any]
    redis_url: str
    email_host: str
    email_port: int
    email_host_user: str
    email_host_password: str
    email_use_tls: bool
    default_from_email: str
    dev_idp_enabled: bool
    log_level: str
    trusted_proxy_count: int
    social_providers: dict[str, Any] = field(default_factory=dict)

    @property
    def https(self) -> bool:
        return self.base_url.startswith("https://")


def parse_bool(name: str, raw: str | None, default: bool) -> bool:
    if raw is None:
        return default
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ImproperlyConfigured(f"{name} must be one of 1/0, true/false, yes/no, on/off")


def parse_base_url(raw: str) -> str:
    parts = urlsplit(raw.strip())
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ImproperlyConfigured(
            "BASE_URL must be an absolute http(s) URL such as http://127.0.0.1:8000"
        )
    if parts.path not in {"", "/"} or parts.query or parts.fragment:
        raise ImproperlyConfigured("BASE_URL must not carry a path, query or fragment")
    return f"{parts.scheme}://{parts.netloc}"


def sqlite_database(path: Path) -> dict[str, Any]:
    # WAL + synchronous=NORMAL and IMMEDIATE transactions: see shared/performance-notes.md.
    path.parent.mkdir(parents=True, exist_ok=True)
    return {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(path),
        "OPTIONS": {
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            "transaction_mode": "IMMEDIATE",
            "timeout": 20,
        },
        # Tests get Django's in-memory database (shared with live_server threads), so
        # several test runs on one machine never share a file.
    }


def parse_database(raw: str | None, base_dir: Path) -> dict[str, Any]:
    if not raw:
        return sqlite_database(base_dir / "data" / "orglogin.sqlite3")
    if raw.startswith("sqlite:///"):
        return sqlite_database(Path(raw.removeprefix("sqlite:///")))
    try:
        database = dj_database_url.parse(raw, conn_max_age=60, conn_health_checks=True)
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL is not a database URL: {exc}") from exc
    return database


def social_providers_from_env(env: Mapping[str, str]) -> dict[str, Any]:
    """Google / Facebook / Apple apps from the environment; the Django admin can add more.

    A provider appears here only when its client id is set, so an unconfigured provider
    falls back to a SocialApp row (or shows the "not set up" page) instead of half-working.
    """
    providers: dict[str, Any] = {
        "google": {"SCOPE": ["openid", "profile", "email"], "OAUTH_PKCE_ENABLED": True},
        "facebook": {"METHOD": "oauth2", "SCOPE": ["email", "public_profile"]},
        "apple": {},
    }
    for name in ("google", "facebook", "apple"):
        prefix = name.upper()
        client_id = env.get(f"{prefix}_CLIENT_ID", "")
        if not client_id:
            continue
        app: dict[str, Any] = {"client_id": client_id, "secret": env.get(f"{prefix}_SECRET", "")}
        if name == "apple":
            app["key"] = env.get("APPLE_KEY_ID", "")
            app["settings"] = {"certificate_key": env.get("APPLE_PRIVATE_KEY", "")}
        providers[name]["APPS"] = [app]
    return providers


def load_config(*, base_dir: Path, env: Mapping[str, str] | None = None) -> Config:
    env = os.environ if env is None else env
    debug = parse_bool("DEBUG", env.get("DEBUG"), default=False)
    secret_key = env.get("SECRET_KEY", "")
    if not secret_key:
        if not debug:
            raise ImproperlyConfigured(
                "SECRET_KEY is not set. Production mode (DEBUG off) refuses to start with a "
                "default secret key: set SECRET_KEY to a long random value, or DEBUG=1 for "
                "development."
            )
        secret_key = DEVELOPMENT_SECRET_KEY
    elif secret_key == DEVELOPMENT_SECRET_KEY and not debug:
        raise ImproperlyConfigured("SECRET_KEY is the development key; DEBUG is off.")
    elif len(secret_key) < 32 and not debug:
        raise ImproperlyConfigured("SECRET_KEY must be at least 32 characters long.")

    base_url = parse_base_url(env.get("BASE_URL", "http://127.0.0.1:8000"))
    host = urlsplit(base_url).hostname or ""
    allowed_hosts = [h.strip() for h in env.get("ALLOWED_HOSTS", "").split(",") if h.strip()]
    allowed_hosts = allowed_hosts or [host]
    if debug:
        allowed_hosts = sorted({*allowed_hosts, "127.0.0.1", "localhost", "testserver"})

    email_port_raw = env.get("EMAIL_PORT", "25")
    try:
        email_port = int(email_port_raw)
    except ValueError as exc:
        raise ImproperlyConfigured("EMAIL_PORT must be a port number") from exc

    try:
        trusted_proxy_count = int(env.get("TRUSTED_PROXY_COUNT", "0"))
    except ValueError as exc:
        raise ImproperlyConfigured(
            "TRUSTED_PROXY_COUNT must be the number of proxies in front of the app"
        ) from exc

    dev_idp = parse_bool("DEV_IDP", env.get("DEV_IDP"), default=debug)
    if dev_idp and not debug:
        raise ImproperlyConfigured(
            "DEV_IDP is on but DEBUG is off: the development IdP signs any assertion it is "
            "asked for and must never run in production."
        )

    platform_name = env.get("PLATFORM_NAME", "").strip() or "OrgLogin Learning"
    return Config(
        secret_key=secret_key,
        debug=debug,
        base_url=base_url,
        allowed_hosts=allowed_hosts,
        platform_name=platform_name,
        support_email=env.get("SUPPORT_EMAIL", "support@orglogin.invalid"),
        database=parse_database(env.get("DATABASE_URL"), base_dir),
        redis_url=env.get("REDIS_URL", ""),
        email_host=env.get("EMAIL_HOST", ""),
        email_port=email_port,
        email_host_user=env.get("EMAIL_HOST_USER", ""),
        email_host_password=env.get("EMAIL_HOST_PASSWORD", ""),
        email_use_tls=parse_bool("EMAIL_USE_TLS", env.get("EMAIL_USE_TLS"), default=False),
        default_from_email=env.get("DEFAULT_FROM_EMAIL", f"{platform_name} <noreply@localhost>"),
        dev_idp_enabled=dev_idp,
        log_level=env.get("LOG_LEVEL", "INFO").upper(),
        trusted_proxy_count=trusted_proxy_count,
        social_providers=social_providers_from_env(env),
    )
