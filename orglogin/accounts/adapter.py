"""allauth adapters: where OrgLogin's account policy meets allauth's flows.

Social login policy (spec 2.4, 6: "never because two emails match"):

* A Google / Facebook / Apple login is matched to an account only through an existing
  link (provider + provider's user id). `can_authenticate_by_email` is hard-wired to False,
  so neither the settings nor a SocialApp's `email_authentication` flag can make a
  provider's email claim log into, or get connected to, an existing account.
* When the provider vouches for an email that an account already uses, nothing is created
  or linked: the learner sees a screen (`socialaccount/email_in_use.html`) telling them to
  log in with that account first and link the provider from Account Settings, where the
  logged-in owner links it explicitly. An email the provider does not vouch for gets
  allauth's enumeration-safe path instead (a mail to the address, nothing shown).
* A provider without an app (no SocialApp row, no client id in the environment) leads to
  a "not set up on this site" page instead of a 500.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from allauth.account.adapter import DefaultAccountAdapter
from allauth.account.utils import filter_users_by_email
from allauth.core.exceptions import ImmediateHttpResponse
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from allauth.socialaccount.models import SocialApp
from allauth.socialaccount.providers.base import AuthProcess
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse

from orglogin.accounts.social import provider_name
from orglogin.audit import Event, record

if TYPE_CHECKING:
    from allauth.socialaccount.models import SocialAccount, SocialLogin


class AccountAdapter(DefaultAccountAdapter):
    def get_password_change_redirect_url(self, request: HttpRequest) -> str:
        return reverse("accounts:settings")

    def pre_authenticate(self, request: HttpRequest, **credentials: Any) -> None:
        # allauth refuses here once `login_failed` is exhausted; Django's user_login_failed
        # never fires for that case, so the lockout is audited here.
        try:
            super().pre_authenticate(request, **credentials)
        except ValidationError:
            record(
                Event.LOGIN_FAILED,
                request=request,
                outcome="failure",
                reason="rate_limited",
                login=str(credentials.get("email") or credentials.get("username") or "")[:254],
            )
            raise


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def can_authenticate_by_email(self, login: SocialLogin, email: str) -> bool:
        """Never: a provider's email claim is not proof of owning an account here."""
        return False

    def pre_social_login(self, request: HttpRequest, sociallogin: SocialLogin) -> None:
        """Stop a new social login whose vouched-for email belongs to an existing account.

        Takeover guard: the account's owner proved nothing on this screen, so we neither log
        in nor link; the owner links the provider after logging in (Account Settings).
        """
        if sociallogin.is_existing or sociallogin.state.get("process") == AuthProcess.CONNECT:
            return
        for address in sociallogin.email_addresses:
            if not address.verified or not filter_users_by_email(address.email):
                continue
            event = record(
                Event.LOGIN_FAILED,
                request=request,
                outcome="failure",
                reason="social_email_in_use",
                provider=sociallogin.account.provider,
            )
            context = {
                "provider_name": provider_name(sociallogin.account.provider),
                "reference": event.reference,
            }
            response = render(request, "socialaccount/email_in_use.html", context, status=409)
            raise ImmediateHttpResponse(response)

    def get_provider(self, request: HttpRequest, provider: str, client_id: str | None = None):
        try:
            return super().get_provider(request, provider, client_id=client_id)
        except SocialApp.DoesNotExist:
            match = getattr(request, "resolver_match", None)
            starting = match is not None and match.url_name in {
                f"{provider}_login",
                f"{provider}_callback",
            }
            if not starting:
                raise
            unavailable = reverse("accounts:social_unavailable", args=[provider])
            raise ImmediateHttpResponse(HttpResponseRedirect(unavailable)) from None

    def get_connect_redirect_url(self, request: HttpRequest, socialaccount: SocialAccount) -> str:
        return reverse("accounts:settings")
