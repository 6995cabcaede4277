"""The three personal-account providers of spec 2.4.1 and whether this site has an app for each.

An app comes from the environment (GOOGLE_CLIENT_ID, ...; see orglogin.core.config) or from a
SocialApp row in the Django admin; allauth's adapter blends both, so we ask it.
"""

from __future__ import annotations

from dataclasses import dataclass

from allauth.socialaccount.adapter import get_adapter
from allauth.socialaccount.providers import registry
from django.http import HttpRequest
from django.urls import reverse

PERSONAL_PROVIDERS: tuple[str, ...] = ("google", "facebook", "apple")


def provider_name(provider_id: str) -> str:
    """Display name ("Google") without needing an app, so stale links still render."""
    provider_class = registry.get_class(provider_id)
    return provider_class.name if provider_class else provider_id.title()


def is_configured(request: HttpRequest | None, provider_id: str) -> bool:
    return bool(get_adapter(request).list_apps(request, provider=provider_id))


@dataclass(frozen=True)
class SocialProvider:
    id: str
    name: str
    configured: bool

    @property
    def button_label(self) -> str:
        return f"Continue with {self.name}"

    @property
    def start_url(self) -> str:
        """allauth's login view (POST starts the redirect), or the "not set up" page."""
        if self.configured:
            return reverse(f"{self.id}_login")
        return reverse("accounts:social_unavailable", args=[self.id])


def personal_providers(request: HttpRequest) -> list[SocialProvider]:
    return [
        SocialProvider(pid, provider_name(pid), is_configured(request, pid))
        for pid in PERSONAL_PROVIDERS
    ]
