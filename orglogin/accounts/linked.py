"""Linked Accounts (spec 2.4.3): every social and org link of an account, and delinking.

One list for both kinds so the page, and the rule "never remove the last way to log in",
see the same thing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from allauth.socialaccount.internal.flows.connect import disconnect
from allauth.socialaccount.models import SocialAccount, SocialApp
from allauth.socialaccount.signals import social_account_removed
from django.contrib.auth import get_user_model
from django.db import transaction
from django.http import HttpRequest

from orglogin.accounts.social import provider_name
from orglogin.audit import Event, record
from orglogin.sso.models import OrgIdentity

Kind = Literal["social", "org"]


@dataclass(frozen=True)
class LinkedAccount:
    kind: Kind
    pk: int
    label: str  # "Google", or the organization's name
    detail: str  # the email the provider or IdP last gave us, if any
    linked_at: datetime | None

    @property
    def key(self) -> str:
        return f"{self.kind}:{self.pk}"

    @property
    def delink_label(self) -> str:
        return f"Delink my {self.label} Account"


def _social_email(account: SocialAccount) -> str:
    data = account.extra_data if isinstance(account.extra_data, dict) else {}
    return str(data.get("email") or "")


def linked_accounts(user) -> list[LinkedAccount]:
    social = [
        LinkedAccount("social", a.pk, provider_name(a.provider), _social_email(a), a.date_joined)
        for a in SocialAccount.objects.filter(user=user).order_by("pk")
    ]
    org = [
        LinkedAccount("org", i.pk, i.connection.organization.name, i.email, i.created_at)
        for i in OrgIdentity.objects.filter(user=user)
        .select_related("connection__organization")
        .order_by("pk")
    ]
    return social + org


@dataclass(frozen=True)
class Delinked:
    link: LinkedAccount


@dataclass(frozen=True)
class DelinkRefused:
    link: LinkedAccount
    reference: str


@dataclass(frozen=True)
class LinkNotFound:
    pass


DelinkOutcome = Delinked | DelinkRefused | LinkNotFound


def _disconnect(request: HttpRequest, account: SocialAccount) -> None:
    """allauth's own flow: deletes, sends social_account_removed (audited in accounts.signals)
    and notifies the account's email address."""
    try:
        disconnect(request, account)
    except SocialApp.DoesNotExist:
        # The provider's app was removed since the link was made; allauth needs it only to
        # word the notice, and a stale link must still be removable.
        account.delete()
        social_account_removed.send(sender=SocialAccount, request=request, socialaccount=account)


def delink(request: HttpRequest, user, key: str) -> DelinkOutcome:
    """Remove one link of `user` unless it is their last way to log in.

    The user row is locked so two concurrent delinks cannot each see the other link as the
    remaining way in and together leave the account unreachable.
    """
    with transaction.atomic():
        locked = get_user_model().objects.select_for_update().get(pk=user.pk)
        links = linked_accounts(locked)
        link = next((item for item in links if item.key == key), None)
        if link is None:
            return LinkNotFound()
        if not locked.has_usable_password() and len(links) == 1:
            event = record(
                Event.DELINK_REFUSED,
                actor=user,
                request=request,
                outcome="failure",
                link=link.key,
                label=link.label,
                reason="last_login_method",
            )
            return DelinkRefused(link, event.reference)
        if link.kind == "social":
            _disconnect(request, SocialAccount.objects.get(pk=link.pk, user=locked))
        else:
            identity = OrgIdentity.objects.select_related("connection__organization").get(
                pk=link.pk, user=locked
            )
            organization = identity.connection.organization
            identity.delete()
            record(
                Event.SSO_DELINKED,
                actor=user,
                organization=organization,
                request=request,
                connection=identity.connection_id,
                subject=identity.subject,
            )
        return Delinked(link)
