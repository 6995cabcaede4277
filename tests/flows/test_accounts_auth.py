"""Personal accounts through HTTP: sign-up, email confirmation, log-in/out, reset, lockouts."""

import json
import re

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialApp
from django.core import mail
from django.core.cache import cache
from django.test import Client, override_settings
from django.urls import reverse

from orglogin.accounts.models import User
from orglogin.audit import Event
from orglogin.audit.models import AuditEvent

PASSWORD = "correct horse battery staple"
LINK = re.compile(r"http://testserver(/accounts/[^\s]+/)")

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    # allauth keeps rate-limit counters in the cache, which outlives a test's transaction.
    cache.clear()
    yield
    cache.clear()


def make_user(email="ada@example.com", password=PASSWORD, verified=True) -> User:
    user = User.objects.create_user(email=email, password=password)
    EmailAddress.objects.create(user=user, email=email, primary=True, verified=verified)
    return user


def login(client, email="ada@example.com", password=PASSWORD):
    return client.post(reverse("account_login"), {"login": email, "password": password})


def link_in(message) -> str:
    return LINK.search(message.body).group(1)


def events(name) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event=name))


# --- The log-in screen (spec 2.1.1) ------------------------------------------------------


def test_login_screen_has_fields_social_buttons_and_org_link(client):
    html = client.get(reverse("account_login")).content.decode()
    assert '<label for="id_login">' in html and '<label for="id_password">' in html
    for name in ("Google", "Facebook", "Apple"):
        assert f"Continue with {name}" in html
    assert f'href="{reverse("sso:discover")}">Log in with your organization</a>' in html
    # "at the bottom": after the social buttons
    assert html.index("Log in with your organization") > html.index("Continue with Apple")


@pytest.mark.parametrize("provider", ["google", "facebook", "apple"])
def test_unconfigured_social_button_leads_to_not_set_up_page(client, provider):
    html = client.get(reverse("account_login")).content.decode()
    target = reverse("accounts:social_unavailable", args=[provider])
    assert f'href="{target}"' in html
    page = client.get(target)
    assert page.status_code == 200
    assert "is not set up on this site" in page.content.decode()


@pytest.mark.parametrize("method", ["get", "post"])
def test_allauth_provider_url_without_app_is_not_a_500(client, method):
    response = getattr(client, method)(reverse("google_login"))
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:social_unavailable", args=["google"])


def test_configured_provider_button_posts_to_allauth(client):
    SocialApp.objects.create(provider="google", name="Google", client_id="cid", secret="s")
    html = client.get(reverse("account_login")).content.decode()
    assert f'action="{reverse("google_login")}"' in html
    assert reverse("accounts:social_unavailable", args=["google"]) not in html
    # Facebook still has no app
    assert reverse("accounts:social_unavailable", args=["facebook"]) in html


def test_unknown_provider_on_not_set_up_page_is_404(client):
    assert client.get("/accounts/login-method/myspace/not-set-up/").status_code == 404


# --- Sign-up with mandatory email verification ---------------------------------------------


def test_signup_confirm_then_login(client):
    response = client.post(
        reverse("account_signup"), {"email": "Grace@Example.com", "password1": PASSWORD}
    )
    assert response.status_code == 302
    user = User.objects.get(email__iexact="grace@example.com")
    assert user.check_password(PASSWORD)
    assert user.password.startswith("argon2")
    assert not EmailAddress.objects.get(user=user).verified
    assert events(Event.SIGNUP)[0].actor == user
    # Mandatory verification: the fresh account is not logged in, and cannot log in yet.
    assert "_auth_user_id" not in client.session
    assert len(mail.outbox) == 1
    login(client, "grace@example.com")
    assert "_auth_user_id" not in client.session

    confirm_url = link_in(mail.outbox[0])
    assert "Confirm" in client.get(confirm_url).content.decode()
    client.post(confirm_url)
    assert EmailAddress.objects.get(user=user).verified

    response = login(client, "grace@example.com")
    assert response.status_code == 302 and response["Location"] == reverse("dashboard")
    assert client.session["_auth_user_id"] == str(user.pk)
    assert events(Event.LOGIN)[0].actor == user


@pytest.mark.parametrize(
    ("data", "field", "text"),
    [
        ({"email": "not-an-email", "password1": PASSWORD}, "email", "valid email"),
        ({"email": "x@example.com", "password1": "short1"}, "password1", "too short"),
        ({"email": "x@example.com", "password1": "password123"}, "password1", "too common"),
        ({"email": "x@example.com", "password1": "a" * 257}, "password1", "too long"),
    ],
)
def test_signup_bad_input_writes_nothing_and_says_why(client, data, field, text):
    response = client.post(reverse("account_signup"), data)
    assert response.status_code == 200
    html = response.content.decode()
    assert text in html
    # the error is tied to its input
    assert 'aria-describedby="' in html and f"id_{field}_error" in html
    assert re.search(rf'aria-invalid="true"[^>]*id="id_{field}"', html)
    assert not User.objects.exists() and not EmailAddress.objects.exists()
    assert mail.outbox == []


def test_no_composition_rules_a_long_lowercase_passphrase_is_fine(client):
    client.post(reverse("account_signup"), {"email": "p@example.com", "password1": PASSWORD})
    assert User.objects.filter(email="p@example.com").exists()


def test_signup_with_a_taken_email_creates_nothing_and_tells_only_the_owner(client):
    owner = make_user("ada@example.com")
    response = client.post(
        reverse("account_signup"), {"email": "ADA@example.com", "password1": PASSWORD}
    )
    # Same screen as a real sign-up: the page must not reveal that the address has an account.
    assert response.status_code == 302
    page = client.get(response["Location"]).content.decode()
    assert "Check your email" in page
    assert list(User.objects.all()) == [owner]
    assert owner.check_password(PASSWORD)
    assert [m.to for m in mail.outbox] == [["ada@example.com"]]
    assert "already" in mail.outbox[0].body.lower()


def test_invalid_confirmation_link_says_so_and_changes_nothing(client):
    user = make_user(verified=False)
    for method in ("get", "post"):
        response = getattr(client, method)(reverse("account_confirm_email", args=["forged-key"]))
        assert response.status_code == 404
        assert "expired or is not valid" in response.content.decode()
    assert not EmailAddress.objects.get(user=user).verified


def test_expired_confirmation_link_is_refused(client):
    client.post(reverse("account_signup"), {"email": "late@example.com", "password1": PASSWORD})
    confirm_url = link_in(mail.outbox[0])
    with override_settings(ACCOUNT_EMAIL_CONFIRMATION_EXPIRE_DAYS=0):
        response = client.post(confirm_url)
    assert "expired or is not valid" in response.content.decode()
    assert not EmailAddress.objects.get(email="late@example.com").verified


# --- Log-in, log-out, failures --------------------------------------------------------------


def test_login_rotates_the_session_and_logout_ends_it(client):
    user = make_user()
    client.get(reverse("account_login"))
    client.session.save()
    before = client.session.session_key
    login(client)
    assert client.session["_auth_user_id"] == str(user.pk)
    assert client.session.session_key != before

    response = client.post(reverse("account_logout"))
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session
    assert events(Event.LOGOUT)[0].actor == user
    assert client.get(reverse("accounts:settings")).status_code == 302


def test_wrong_password_is_refused_generically_and_audited_without_the_password(client):
    make_user()
    response = login(client, password="wrong password guess")
    html = response.content.decode()
    assert response.status_code == 200
    assert "not correct" in html and 'role="alert"' in html
    assert "_auth_user_id" not in client.session
    # An unknown address gets the same answer (no account enumeration).
    other = login(client, "nobody@example.com", "wrong password guess").content.decode()
    assert "not correct" in other

    failed = events(Event.LOGIN_FAILED)
    assert {e.detail["login"] for e in failed} == {"ada@example.com", "nobody@example.com"}
    assert all(e.outcome == "failure" for e in failed)
    dump = json.dumps([e.detail for e in AuditEvent.objects.all()])
    assert "wrong password guess" not in dump and PASSWORD not in dump


def test_login_lockout_after_five_failures_refuses_even_the_right_password(client):
    make_user()
    for _ in range(5):
        login(client, password="guess guess guess")
    response = login(client)  # the correct password
    assert "_auth_user_id" not in client.session
    assert "Too many failed login attempts" in response.content.decode()
    assert events(Event.LOGIN_FAILED)[0].detail["reason"] == "rate_limited"
    # The lockout is per account: another account from the same browser still logs in.
    make_user("bob@example.com")
    login(client, "bob@example.com")
    assert "_auth_user_id" in client.session


def test_login_failures_from_one_ip_are_limited_across_accounts(client):
    for n in range(10):
        login(client, f"user{n}@example.com", "guess guess guess")
    make_user("fresh@example.com")
    response = login(client, "fresh@example.com")
    assert "_auth_user_id" not in client.session
    assert "Too many failed login attempts" in response.content.decode()


def test_login_view_rate_limit_answers_429():
    client = Client()
    for _ in range(30):
        client.post(reverse("account_login"), {"login": "", "password": ""})
    response = client.post(reverse("account_login"), {"login": "", "password": ""})
    assert response.status_code == 429
    assert "Too many attempts" in response.content.decode()


def test_post_without_csrf_token_is_refused():
    make_user()
    client = Client(enforce_csrf_checks=True)
    assert login(client).status_code == 403
    assert "_auth_user_id" not in client.session
    response = client.post(
        reverse("account_signup"), {"email": "csrf@example.com", "password1": PASSWORD}
    )
    assert response.status_code == 403
    assert not User.objects.filter(email="csrf@example.com").exists()


def test_next_must_stay_on_this_site(client):
    make_user()
    response = client.post(
        reverse("account_login"),
        {"login": "ada@example.com", "password": PASSWORD, "next": "https://evil.example/"},
    )
    assert response["Location"] == reverse("dashboard")


def test_admin_login_goes_through_allauth(client):
    response = client.get("/admin/login/")
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


# --- Password reset ----------------------------------------------------------------------


def test_password_reset_by_email(client):
    user = make_user()
    client.post(reverse("account_reset_password"), {"email": "ada@example.com"})
    assert len(mail.outbox) == 1
    reset_url = link_in(mail.outbox[0])
    form_url = client.get(reset_url)["Location"]  # allauth hides the key from the page URL
    new = "a brand new passphrase"
    response = client.post(form_url, {"password1": new, "password2": new})
    assert response.status_code == 302
    user.refresh_from_db()
    assert user.check_password(new)
    assert events(Event.PASSWORD_RESET)[0].actor == user
    dump = json.dumps([e.detail for e in AuditEvent.objects.all()])
    assert new not in dump
    # the link is single-use
    assert "invalid" in client.get(reset_url, follow=True).content.decode()


def test_password_reset_refuses_a_weak_password(client):
    user = make_user()
    client.post(reverse("account_reset_password"), {"email": "ada@example.com"})
    form_url = client.get(link_in(mail.outbox[0]))["Location"]
    response = client.post(form_url, {"password1": "12345678", "password2": "12345678"})
    assert response.status_code == 200
    assert "too common" in response.content.decode()
    user.refresh_from_db()
    assert user.check_password(PASSWORD)


def test_password_reset_requests_are_rate_limited_per_address(client):
    make_user()
    for _ in range(5):
        client.post(reverse("account_reset_password"), {"email": "ada@example.com"})
    response = client.post(reverse("account_reset_password"), {"email": "ada@example.com"})
    assert response.status_code == 429
    assert len(mail.outbox) == 5
