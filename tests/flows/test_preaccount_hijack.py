"""Pre-account hijacking (Sudhodanan & Paverd, USENIX Security 2022): an attacker claims the
learner's org email before the learner arrives through SSO. The unproven claim is dropped;
the attacker neither absorbs the org identity nor blocks the learner."""

import re

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.core import mail
from django.test import Client
from django.urls import reverse

from orglogin.audit.models import AuditEvent
from orglogin.sso import flows
from orglogin.sso.flows.claims import CLAIM_DROPPED
from orglogin.sso.models import OrgIdentity
from tests.flows.sso_support import asserted, session_request
from tests.flows.test_sso_linking_support import (
    PASSWORD,
    User,
    allauth_login,
    existing_login,
    logged_in_user_id,
    personal_user,
    sso_login,
)

pytestmark = pytest.mark.django_db
ATTACKER_PASSWORD = "attacker's own passphrase"
LEARNER_PASSWORD = PASSWORD
LINK = re.compile(r"http://testserver(/accounts/[^\s]+/)")


def squat_by_signup() -> tuple[User, Client, str]:
    """The attacker signs up with the learner's org email and never confirms it; a session
    stays open in the attacker's browser. Returns the account, that browser, and the
    confirmation link mailed to the (learner's) address."""
    attacker = Client()
    attacker.post(
        reverse("account_signup"), {"email": "jane@acme.test", "password1": ATTACKER_PASSWORD}
    )
    squatter = User.objects.get(email="jane@acme.test")
    assert not EmailAddress.objects.get(user=squatter).verified
    attacker.force_login(squatter)  # however it got one: a session that must not survive
    assert attacker.get(reverse("dashboard")).status_code == 200
    return squatter, attacker, LINK.search(mail.outbox[-1].body).group(1)


def learner_signs_up(client) -> User:
    response = sso_login(client)
    assert response.status_code == 302 and response["Location"] == reverse("sso:choose")
    response = client.post(
        reverse("sso:signup"), {"first_name": "Jane", "last_name": "Doe", "password": PASSWORD}
    )
    assert response.status_code == 302, response.content[:300]
    return User.objects.get(email="jane@acme.test")


def dropped(action):
    return AuditEvent.objects.filter(event=CLAIM_DROPPED, detail__action=action)


def test_a_squatting_signup_is_dropped_and_the_learner_signs_up(client, dev_connection):
    squatter, attacker, confirm_url = squat_by_signup()
    squatter_id = squatter.pk

    learner = learner_signs_up(client)

    assert learner.pk != squatter_id and not User.objects.filter(pk=squatter_id).exists()
    assert learner.check_password(LEARNER_PASSWORD)
    assert not learner.check_password(ATTACKER_PASSWORD)
    assert OrgIdentity.objects.get().user == learner
    assert logged_in_user_id(client) == learner.pk
    event = dropped("account_deleted").get()
    assert event.detail["account"] == squatter_id and event.detail["email"] == "jane@acme.test"
    assert event.organization == dev_connection.organization
    # the attacker's old session reaches nothing: it is sent to log in
    response = attacker.get(reverse("dashboard"))
    assert response.status_code == 302 and response["Location"].startswith(reverse("account_login"))
    # the attacker's password opens nothing, and the old confirmation link is dead
    allauth_login(attacker, "jane@acme.test", ATTACKER_PASSWORD)
    assert attacker.get(reverse("dashboard")).status_code == 302
    Client().post(confirm_url)
    assert EmailAddress.objects.get(email="jane@acme.test").user == learner


def test_the_squatter_cannot_absorb_the_identity_by_the_existing_user_way(client, dev_connection):
    squat_by_signup()
    sso_login(client)  # drops the squatter on arrival
    response = existing_login(client, "jane@acme.test", ATTACKER_PASSWORD)
    assert response.status_code == 200 and not OrgIdentity.objects.exists()


def test_a_pending_email_change_to_the_org_address_is_cancelled(client, dev_connection):
    attacker_account = personal_user("mallory@evil.example")
    attacker = Client()
    attacker.force_login(attacker_account)
    attacker.post(
        reverse("accounts:settings"),
        {"first_name": "M", "last_name": "", "email": "jane@acme.test"},
    )
    pending_change = EmailAddress.objects.get(email="jane@acme.test")
    assert (pending_change.user, pending_change.verified) == (attacker_account, False)
    confirm_url = LINK.search(mail.outbox[-1].body).group(1)

    learner = learner_signs_up(client)

    assert not EmailAddress.objects.filter(user=attacker_account, email="jane@acme.test").exists()
    attacker_account.refresh_from_db()
    assert attacker_account.email == "mallory@evil.example"  # keeps only what it had proven
    assert dropped("pending_change_cancelled").get().detail["account"] == attacker_account.pk
    # the confirmation link can't move the address to the attacker afterwards
    attacker.post(confirm_url)
    attacker_account.refresh_from_db()
    assert attacker_account.email == "mallory@evil.example"
    assert EmailAddress.objects.get(email="jane@acme.test").user == learner


def test_a_social_link_on_the_squatting_account_is_not_carried_over(client, dev_connection):
    squatter, attacker, _ = squat_by_signup()
    SocialAccount.objects.create(user=squatter, provider="google", uid="attacker-google")

    learner = learner_signs_up(client)

    assert not SocialAccount.objects.filter(user=learner).exists()
    squatter.refresh_from_db()  # kept (it holds a social link) but without the address
    assert squatter.email != "jane@acme.test" and squatter.email.endswith("@email.invalid")
    assert not EmailAddress.objects.filter(user=squatter, email__iexact="jane@acme.test").exists()
    assert SocialAccount.objects.get().user == squatter
    assert dropped("email_released").get().detail["account"] == squatter.pk
    response = attacker.get(reverse("dashboard"))  # its sessions ended
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))
    assert OrgIdentity.objects.get().user == learner


def test_a_released_account_with_a_verified_address_falls_back_to_it(dev_connection):
    user = personal_user("mallory@evil.example")
    User.objects.filter(pk=user.pk).update(email="jane@acme.test")
    EmailAddress.objects.create(user=user, email="jane@acme.test", verified=False)
    flows.handle_asserted_identity(session_request(), asserted(dev_connection))
    user.refresh_from_db()
    assert user.email == "mallory@evil.example"
    assert EmailAddress.objects.get(user=user).primary


def test_a_verified_claim_is_left_to_its_owner(dev_connection):
    owner = personal_user("jane@acme.test")
    outcome = flows.handle_asserted_identity(session_request(), asserted(dev_connection))
    assert isinstance(outcome, flows.NeedsChoice)
    assert User.objects.get() == owner and EmailAddress.objects.get().verified
    assert not AuditEvent.objects.filter(event=CLAIM_DROPPED).exists()


def test_nothing_is_dropped_for_an_address_the_org_does_not_vouch_for(dev_connection):
    personal_user("jane@gmail.test", verified=False)
    flows.handle_asserted_identity(
        session_request(), asserted(dev_connection, email="jane@gmail.test")
    )
    flows.handle_asserted_identity(
        session_request(), asserted(dev_connection, subject="x", email_verified=False)
    )
    assert User.objects.count() == 1 and EmailAddress.objects.count() == 1
    assert not AuditEvent.objects.filter(event=CLAIM_DROPPED).exists()


def test_an_account_of_unknown_status_is_left_alone(dev_connection):
    User.objects.create_user("jane@acme.test", PASSWORD)  # operator-made: no allauth row
    flows.handle_asserted_identity(session_request(), asserted(dev_connection))
    assert User.objects.count() == 1


def test_no_claim_to_drop_costs_no_write_transaction(dev_connection, django_assert_max_num_queries):
    """The returning-login path: nobody else claims the address, so no lock is taken."""
    from django.db import connection as db

    from orglogin.sso.flows.claims import release_unproven_claims

    identity = asserted(dev_connection, subject="x", email="jane@acme.test")
    with django_assert_max_num_queries(2) as captured:
        assert release_unproven_claims(None, identity, connection=dev_connection) == []
    assert not any("SAVEPOINT" in q["sql"].upper() for q in captured.captured_queries), db.vendor
