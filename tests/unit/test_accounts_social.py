"""Social login policy (spec 2.4, 6): an email match never logs in to or links an account.

Social logins are built the way allauth's own tests do: an unsaved `SocialLogin` handed to
allauth's `complete_social_login`, which runs the same flow as a provider's callback view.
"""

import pytest
from allauth.account.models import EmailAddress
from allauth.core import context
from allauth.socialaccount.helpers import complete_social_login
from allauth.socialaccount.models import SocialAccount, SocialApp, SocialLogin
from allauth.socialaccount.providers.base import AuthProcess
from django.contrib.auth.models import AnonymousUser
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.core import mail
from django.test import override_settings

from orglogin.accounts.linked import linked_accounts
from orglogin.accounts.models import User
from orglogin.audit import Event
from orglogin.audit.models import AuditEvent
from orglogin.organizations.models import Organization
from orglogin.sso.models import Connection, OrgIdentity

PASSWORD = "correct horse battery staple"

pytestmark = pytest.mark.django_db


@pytest.fixture
def google_app():
    return SocialApp.objects.create(provider="google", name="Google", client_id="cid", secret="s")


@pytest.fixture
def owner():
    user = User.objects.create_user(email="ada@example.com", password=PASSWORD)
    EmailAddress.objects.create(user=user, email=user.email, primary=True, verified=True)
    return user


def make_request(rf, user=None):
    request = rf.get("/accounts/google/login/callback/")
    SessionMiddleware(lambda r: None).process_request(request)
    MessageMiddleware(lambda r: None).process_request(request)
    request.session.save()
    request.user = user or AnonymousUser()
    return request


def google_login(email, *, verified=True, uid="google-uid-1", process=None) -> SocialLogin:
    sociallogin = SocialLogin(
        user=User(email=email),
        account=SocialAccount(provider="google", uid=uid, extra_data={"email": email}),
        email_addresses=[EmailAddress(email=email, verified=verified, primary=True)],
    )
    if process:
        sociallogin.state["process"] = process
    return sociallogin


def run(request, sociallogin):
    with context.request_context(request):
        return complete_social_login(request, sociallogin)


def assert_nothing_taken_over(request, owner):
    assert list(User.objects.all()) == [owner]
    assert not SocialAccount.objects.exists()
    assert "_auth_user_id" not in request.session
    owner.refresh_from_db()
    assert owner.check_password(PASSWORD)


def test_verified_email_of_an_existing_account_gets_a_clear_screen(rf, google_app, owner):
    request = make_request(rf)
    response = run(request, google_login("ADA@example.com"))
    html = response.content.decode()
    assert response.status_code == 409
    assert "You already have an account" in html
    assert "did not log you in to it and did not link your Google account" in html
    event = AuditEvent.objects.get(event=Event.LOGIN_FAILED)
    assert event.detail["reason"] == "social_email_in_use" and event.reference in html
    assert_nothing_taken_over(request, owner)


@override_settings(
    SOCIALACCOUNT_EMAIL_AUTHENTICATION=True, SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT=True
)
def test_email_authentication_cannot_be_switched_on_by_configuration(rf, google_app, owner):
    google_app.settings = {"email_authentication": True}
    google_app.save()
    request = make_request(rf)
    response = run(request, google_login("ada@example.com"))
    assert response.status_code == 409
    assert_nothing_taken_over(request, owner)


def test_unverified_email_of_an_existing_account_gets_the_enumeration_safe_path(
    rf, google_app, owner
):
    request = make_request(rf)
    response = run(request, google_login("ada@example.com", verified=False))
    assert response.status_code == 302  # "check your email", like any sign-up
    assert_nothing_taken_over(request, owner)
    assert [m.to for m in mail.outbox] == [["ada@example.com"]]


def test_new_email_signs_up_links_and_logs_in(rf, google_app):
    request = make_request(rf)
    run(request, google_login("new@example.com"))
    user = User.objects.get(email="new@example.com")
    assert not user.has_usable_password()
    assert SocialAccount.objects.get().user == user
    assert request.session["_auth_user_id"] == str(user.pk)
    assert AuditEvent.objects.get(event=Event.SIGNUP).detail["method"] == "social:google"


def test_an_existing_link_logs_in_to_its_account(rf, google_app, owner):
    SocialAccount.objects.create(user=owner, provider="google", uid="google-uid-1")
    request = make_request(rf)
    # The provider now reports another email: the link (uid), not the email, decides.
    run(request, google_login("someone-else@example.com"))
    assert request.session["_auth_user_id"] == str(owner.pk)
    assert AuditEvent.objects.get(event=Event.LOGIN).detail["method"] == "social:google"


def test_logged_in_owner_links_google_explicitly(rf, google_app, owner):
    request = make_request(rf, user=owner)
    run(request, google_login("ada@example.com", process=AuthProcess.CONNECT))
    assert SocialAccount.objects.get().user == owner
    assert AuditEvent.objects.get(event=Event.SOCIAL_LINKED).actor == owner


def test_linked_accounts_lists_social_and_org_links(owner):
    SocialAccount.objects.create(
        user=owner, provider="apple", uid="a-1", extra_data={"email": "relay@icloud.example"}
    )
    org = Organization.objects.create(slug="acme", name="Acme Corp")
    connection = Connection.objects.create(organization=org, protocol="saml", name="Okta")
    OrgIdentity.objects.create(
        connection=connection, subject="jane", user=owner, email="j@acme.test"
    )
    other = User.objects.create_user(email="other@example.com", password=PASSWORD)
    SocialAccount.objects.create(user=other, provider="google", uid="g-9")

    links = linked_accounts(owner)
    assert [(link.kind, link.label, link.detail) for link in links] == [
        ("social", "Apple", "relay@icloud.example"),
        ("org", "Acme Corp", "j@acme.test"),
    ]
    assert [link.delink_label for link in links] == [
        "Delink my Apple Account",
        "Delink my Acme Corp Account",
    ]
