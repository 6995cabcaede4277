"""Audit receivers for personal-account events (spec 6). Connected by AccountsConfig.ready().

allauth sends its signals from its flows (views, API and our own Settings page alike), so
listening here audits every surface once. Receivers never put a password in an event:
Django's user_login_failed already masks it, and we copy only the login identifier.
"""

from __future__ import annotations

from typing import Any

from allauth.account import signals as account_signals
from allauth.mfa import signals as mfa_signals
from allauth.mfa.models import Authenticator
from allauth.socialaccount import signals as social_signals
from django.contrib.auth import signals as auth_signals
from django.dispatch import receiver

from orglogin.audit import Event, record

# Recovery codes come and go with TOTP; recording them would double every MFA event.
MFA_FACTORS = {Authenticator.Type.TOTP, Authenticator.Type.WEBAUTHN}


def _login_method(kwargs: dict[str, Any]) -> str:
    sociallogin = kwargs.get("sociallogin")
    return f"social:{sociallogin.account.provider}" if sociallogin else "password"


@receiver(account_signals.user_signed_up, dispatch_uid="orglogin.audit.signup")
def on_signed_up(sender, request, user, **kwargs) -> None:
    record(Event.SIGNUP, actor=user, request=request, method=_login_method(kwargs))


@receiver(account_signals.user_logged_in, dispatch_uid="orglogin.audit.login")
def on_logged_in(sender, request, user, **kwargs) -> None:
    record(Event.LOGIN, actor=user, request=request, method=_login_method(kwargs))


@receiver(auth_signals.user_login_failed, dispatch_uid="orglogin.audit.login_failed")
def on_login_failed(sender, credentials: dict[str, Any], request=None, **kwargs) -> None:
    login = credentials.get("email") or credentials.get("username") or ""
    record(
        Event.LOGIN_FAILED,
        request=request,
        outcome="failure",
        reason="bad_credentials",
        login=str(login)[:254],
    )


@receiver(auth_signals.user_logged_out, dispatch_uid="orglogin.audit.logout")
def on_logged_out(sender, request, user, **kwargs) -> None:
    if user is not None:
        record(Event.LOGOUT, actor=user, request=request)


@receiver(account_signals.email_added, dispatch_uid="orglogin.audit.email_added")
def on_email_added(sender, request, user, email_address, **kwargs) -> None:
    if not email_address.verified:
        record(Event.EMAIL_CHANGE_REQUESTED, actor=user, request=request, to=email_address.email)


@receiver(account_signals.email_confirmed, dispatch_uid="orglogin.audit.email_confirmed")
def on_email_confirmed(sender, request, email_address, **kwargs) -> None:
    record(
        Event.EMAIL_CONFIRMED, actor=email_address.user, request=request, email=email_address.email
    )


@receiver(account_signals.email_changed, dispatch_uid="orglogin.audit.email_changed")
def on_email_changed(
    sender, request, user, from_email_address, to_email_address, **kwargs
) -> None:
    record(
        Event.EMAIL_CHANGED,
        actor=user,
        request=request,
        **{"from": getattr(from_email_address, "email", None), "to": to_email_address.email},
    )


@receiver(account_signals.password_changed, dispatch_uid="orglogin.audit.password_changed")
def on_password_changed(sender, request, user, **kwargs) -> None:
    record(Event.PASSWORD_CHANGED, actor=user, request=request)


@receiver(account_signals.password_set, dispatch_uid="orglogin.audit.password_set")
def on_password_set(sender, request, user, **kwargs) -> None:
    record(Event.PASSWORD_SET, actor=user, request=request)


@receiver(account_signals.password_reset, dispatch_uid="orglogin.audit.password_reset")
def on_password_reset(sender, request, user, **kwargs) -> None:
    record(Event.PASSWORD_RESET, actor=user, request=request)


@receiver(mfa_signals.authenticator_added, dispatch_uid="orglogin.audit.mfa_added")
def on_authenticator_added(sender, request, user, authenticator, **kwargs) -> None:
    if authenticator.type in MFA_FACTORS:
        record(Event.MFA_ENABLED, actor=user, request=request, factor=authenticator.type)


@receiver(mfa_signals.authenticator_removed, dispatch_uid="orglogin.audit.mfa_removed")
def on_authenticator_removed(sender, request, user, authenticator, **kwargs) -> None:
    if authenticator.type in MFA_FACTORS:
        record(Event.MFA_DISABLED, actor=user, request=request, factor=authenticator.type)


@receiver(social_signals.social_account_added, dispatch_uid="orglogin.audit.social_added")
def on_social_added(sender, request, sociallogin, **kwargs) -> None:
    account = sociallogin.account
    record(Event.SOCIAL_LINKED, actor=account.user, request=request, provider=account.provider)


@receiver(social_signals.social_account_removed, dispatch_uid="orglogin.audit.social_removed")
def on_social_removed(sender, request, socialaccount, **kwargs) -> None:
    record(
        Event.SOCIAL_DELINKED,
        actor=socialaccount.user,
        request=request,
        provider=socialaccount.provider,
    )
