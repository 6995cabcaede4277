"""The email-change race (spec 2.5, 6 "Bad input never loses data").

Learner A asks to change to x@example.org (free at the time, so the form accepts it);
meanwhile account B comes to hold x@example.org. When A follows the confirmation link the
change is refused on a clear page: nothing changes, A keeps the old address, and the page
does not say whose account holds the address.
"""

import re

import pytest
from allauth.account.models import EmailAddress
from django.core import mail
from django.core.cache import cache
from django.urls import reverse

from orglogin.accounts.forms import EMAIL_TAKEN
from orglogin.accounts.models import User
from orglogin.audit import Event
from orglogin.audit.models import AuditEvent

PASSWORD = "correct horse battery staple"
LINK = re.compile(r"http://testserver(/accounts/[^\s]+/)")
TARGET = "x@example.org"

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


def make_user(email, *, verified=True, first_name="") -> User:
    user = User.objects.create_user(email=email, password=PASSWORD, first_name=first_name)
    EmailAddress.objects.create(user=user, email=email.lower(), primary=True, verified=verified)
    return user


@pytest.fixture
def ada(client):
    """A, logged in, who has asked to change to x@example.org; returns (user, confirm path)."""
    user = make_user("ada@example.com")
    client.force_login(user)
    data = {"first_name": "", "last_name": "", "email": TARGET}
    assert client.post(reverse("accounts:settings"), data).status_code == 302
    (message,) = mail.outbox
    mail.outbox.clear()
    return user, LINK.search(message.body).group(1)


def assert_nothing_changed(ada_user, holder):
    ada_user.refresh_from_db()
    holder.refresh_from_db()
    assert ada_user.email == "ada@example.com"
    assert holder.email.lower() == TARGET
    primary = EmailAddress.objects.get(user=ada_user, primary=True)
    assert (primary.email, primary.verified) == ("ada@example.com", True)
    assert not EmailAddress.objects.filter(user=ada_user, email__iexact=TARGET, verified=True)
    assert not AuditEvent.objects.filter(event=Event.EMAIL_CHANGED).exists()
    assert not AuditEvent.objects.filter(event=Event.EMAIL_CONFIRMED).exists()
    assert mail.outbox == []  # no "your email was changed" notice went anywhere


def assert_clear_page(response, holder_name="Grace"):
    html = response.content.decode()
    assert response.status_code == 409
    assert EMAIL_TAKEN in html
    assert "Nothing was changed" in html
    # Never whose account: no name, no id, no other address of that account.
    assert holder_name not in html
    conflict = AuditEvent.objects.get(event=Event.EMAIL_CHANGE_CONFLICT)
    assert conflict.outcome == "failure"
    assert conflict.reference in html
    return conflict


@pytest.mark.parametrize(
    "holder_email, holder_verified",
    [
        # B signed up with the address and has not confirmed it yet: allauth lets A verify
        # (only *verified* rows block it) and the user table's unique email raised a 500.
        (TARGET, False),
        # B holds it in another case (an import, an IdP's claim): allauth's exact-match
        # check misses it, the case-insensitive unique constraint raised a 500.
        ("X@Example.org", True),
    ],
)
def test_confirming_an_address_another_account_took_meanwhile(
    client, ada, holder_email, holder_verified
):
    ada_user, confirm_path = ada
    grace = User.objects.create_user(email=holder_email, password=PASSWORD, first_name="Grace")
    EmailAddress.objects.create(
        user=grace, email=holder_email, primary=True, verified=holder_verified
    )

    response = client.post(confirm_path)

    conflict = assert_clear_page(response)
    assert conflict.actor_id == ada_user.pk
    assert conflict.detail["reason"] == "email_taken"
    assert_nothing_changed(ada_user, grace)
    # A is still logged in and can try another address.
    assert client.get(reverse("accounts:settings")).status_code == 200


def test_confirming_an_address_another_account_verified_meanwhile(client, ada):
    """B verified the address: allauth's own check catches it; same clear page."""
    ada_user, confirm_path = ada
    grace = make_user(TARGET, first_name="Grace")

    page = client.get(confirm_path)
    assert page.status_code == 409 and EMAIL_TAKEN in page.content.decode()
    assert "Grace" not in page.content.decode()

    response = client.post(confirm_path)
    assert_clear_page(response)
    assert_nothing_changed(ada_user, grace)


def test_account_with_the_address_but_no_emailaddress_row(client, ada):
    """An account made outside allauth (admin, import) has only User.email."""
    ada_user, confirm_path = ada
    grace = User.objects.create_user(email=TARGET, password=PASSWORD, first_name="Grace")

    response = client.post(confirm_path)

    assert_clear_page(response)
    assert_nothing_changed(ada_user, grace)


def test_confirmation_still_works_when_nobody_took_it(client, ada):
    ada_user, confirm_path = ada
    response = client.post(confirm_path)
    assert response.status_code == 302
    ada_user.refresh_from_db()
    assert ada_user.email == TARGET
    assert not AuditEvent.objects.filter(event=Event.EMAIL_CHANGE_CONFLICT).exists()


def test_the_database_constraint_still_ends_in_the_clear_page(client, ada, monkeypatch):
    """The account takes the address between our check and allauth's write: the unique
    constraint fires, the transaction rolls back, the learner sees the same page."""
    from orglogin.accounts import email_change, views

    ada_user, confirm_path = ada
    grace = User.objects.create_user(email=TARGET, password=PASSWORD, first_name="Grace")
    calls = []

    def check_too_early(email, *, besides):
        calls.append(email)
        return [] if len(calls) == 1 else email_change.holders_of(email, besides=besides)

    monkeypatch.setattr(views, "holders_of", check_too_early)

    response = client.post(confirm_path)

    conflict = assert_clear_page(response)
    assert conflict.detail["race"] is True
    assert conflict.actor_label == "ada@example.com"  # not the address refused
    assert_nothing_changed(ada_user, grace)
