"""Account Settings: name/email (spec 2.5), password, MFA, Linked Accounts (spec 2.4.3)."""

import re
import time
from datetime import date

import pytest
from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import SECRET_SESSION_KEY, format_hotp_value, hotp_value
from allauth.socialaccount.models import SocialAccount, SocialApp
from django.contrib import admin
from django.core import mail
from django.core.cache import cache
from django.test import Client
from django.urls import reverse

from orglogin.accounts.models import User
from orglogin.audit import Event
from orglogin.audit.models import AuditEvent
from orglogin.organizations.models import Organization
from orglogin.programs.models import Certificate, Program, ProgramMembership
from orglogin.sso.models import Connection, OrgIdentity

PASSWORD = "correct horse battery staple"
LINK = re.compile(r"http://testserver(/accounts/[^\s]+/)")

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_rate_limits():
    cache.clear()
    yield
    cache.clear()


def make_user(email="ada@example.com", password=PASSWORD) -> User:
    user = User.objects.create_user(email=email, password=password)
    EmailAddress.objects.create(user=user, email=email, primary=True, verified=True)
    return user


def user_with_google_link(password: str | None = PASSWORD) -> User:
    user = make_user(password=password)
    if password is None:
        user.set_unusable_password()
        user.save()
    SocialAccount.objects.create(
        user=user, provider="google", uid="g-1", extra_data={"email": user.email}
    )
    return user


def org_identity(user, name="Acme Corp") -> OrgIdentity:
    org = Organization.objects.create(slug=name.split()[0].lower(), name=name)
    connection = Connection.objects.create(organization=org, protocol="saml", name="Okta")
    return OrgIdentity.objects.create(connection=connection, subject="jane", user=user)


@pytest.fixture
def ada_client(client):
    client.force_login(make_user())
    return client


def events(name) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(event=name))


# --- Settings: name and email ---------------------------------------------------------


def test_settings_page_shows_name_email_save_and_sections(ada_client):
    html = ada_client.get(reverse("accounts:settings")).content.decode()
    assert ">Settings</h2>" in html and ">Linked Accounts</h2>" in html
    assert 'value="ada@example.com"' in html and '<label for="id_email">' in html
    assert '<label for="id_first_name">' in html
    assert ">Save</button>" in html
    assert reverse("account_change_password") in html
    assert reverse("mfa_activate_totp") in html


def test_settings_requires_login(client):
    response = client.get(reverse("accounts:settings"))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("account_login"))


def test_save_name(ada_client):
    data = {"first_name": "Ada", "last_name": "Lovelace", "email": "ada@example.com"}
    ada_client.post(reverse("accounts:settings"), data)
    user = User.objects.get()
    assert (user.first_name, user.last_name) == ("Ada", "Lovelace")
    assert mail.outbox == []
    assert "Ada Lovelace" in ada_client.get(reverse("accounts:settings")).content.decode()


def test_email_change_takes_effect_only_after_confirmation(ada_client):
    data = {"first_name": "", "last_name": "", "email": "ada@newmail.example"}
    response = ada_client.post(reverse("accounts:settings"), data)
    assert response.status_code == 302
    user = User.objects.get()
    assert user.email == "ada@example.com"  # not yet
    assert [m.to for m in mail.outbox] == [["ada@newmail.example"]]
    page = ada_client.get(reverse("accounts:settings")).content.decode()
    assert "We sent a confirmation link to <strong>ada@newmail.example</strong>" in page
    assert events(Event.EMAIL_CHANGE_REQUESTED)[0].detail["to"] == "ada@newmail.example"

    confirm_url = LINK.search(mail.outbox[0].body).group(1)
    ada_client.post(confirm_url)
    user.refresh_from_db()
    assert user.email == "ada@newmail.example"
    assert list(EmailAddress.objects.values_list("email", "verified", "primary")) == [
        ("ada@newmail.example", True, True)
    ]
    # The old address is told of the change.
    notice = [m for m in mail.outbox if m.to == ["ada@example.com"]]
    assert len(notice) == 1 and "ada@newmail.example" in notice[0].body
    changed = events(Event.EMAIL_CHANGED)[0]
    assert changed.detail == {"from": "ada@example.com", "to": "ada@newmail.example"}
    assert events(Event.EMAIL_CONFIRMED)
    # The new address logs in, the old one no longer does.
    ada_client.post(reverse("account_logout"))
    c = Client()
    c.post(reverse("account_login"), {"login": "ada@example.com", "password": PASSWORD})
    assert "_auth_user_id" not in c.session
    c.post(reverse("account_login"), {"login": "ada@newmail.example", "password": PASSWORD})
    assert c.session["_auth_user_id"] == str(user.pk)


def test_email_in_use_by_another_account_is_refused_without_saying_whose(ada_client):
    other = make_user("grace@example.com")
    other.first_name = "Grace"
    other.save()
    data = {"first_name": "Ada", "last_name": "", "email": "GRACE@example.com"}
    response = ada_client.post(reverse("accounts:settings"), data)
    html = response.content.decode()
    assert response.status_code == 400
    assert "already used by another account" in html
    assert "Grace" not in html.replace("GRACE@example.com", "")
    assert mail.outbox == []
    assert EmailAddress.objects.filter(email__iexact="grace@example.com").count() == 1
    assert User.objects.get(email="ada@example.com").first_name == ""  # nothing partial


def test_allauth_email_page_refuses_a_taken_email_too(ada_client):
    make_user("grace@example.com")
    ada_client.post(reverse("account_email"), {"action_add": "", "email": "grace@example.com"})
    assert mail.outbox == []
    assert EmailAddress.objects.filter(email="grace@example.com").count() == 1


def test_malformed_email_in_settings_is_refused(ada_client):
    data = {"first_name": "", "last_name": "", "email": "ada@@example"}
    response = ada_client.post(reverse("accounts:settings"), data)
    assert response.status_code == 400
    assert 'aria-describedby="id_email_helptext id_email_error"' in response.content.decode()
    assert User.objects.get().email == "ada@example.com"
    assert EmailAddress.objects.count() == 1


def test_settings_post_without_csrf_is_refused():
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user())
    data = {"first_name": "X", "last_name": "", "email": "evil@example.com"}
    assert client.post(reverse("accounts:settings"), data).status_code == 403
    assert User.objects.get().first_name == ""
    assert mail.outbox == []


# --- Password ------------------------------------------------------------------------


def test_password_change_is_audited(ada_client):
    new = "another long passphrase"
    response = ada_client.post(
        reverse("account_change_password"),
        {"oldpassword": PASSWORD, "password1": new, "password2": new},
    )
    assert response["Location"] == reverse("accounts:settings")
    assert User.objects.get().check_password(new)
    assert events(Event.PASSWORD_CHANGED)


def test_password_change_needs_the_current_password(ada_client):
    new = "another long passphrase"
    ada_client.post(
        reverse("account_change_password"),
        {"oldpassword": "not it at all", "password1": new, "password2": new},
    )
    assert User.objects.get().check_password(PASSWORD)
    assert not events(Event.PASSWORD_CHANGED)


def test_account_without_password_is_offered_to_set_one(client):
    user = user_with_google_link(password=None)
    client.force_login(user)
    html = client.get(reverse("accounts:settings")).content.decode()
    assert reverse("account_set_password") in html
    new = "a passphrase of my own"
    client.post(reverse("account_set_password"), {"password1": new, "password2": new})
    user.refresh_from_db()
    assert user.check_password(new)
    assert events(Event.PASSWORD_SET)


# --- MFA ---------------------------------------------------------------------------


# allauth audits/notifies MFA changes on commit, inside the request: needs real transactions.
@pytest.mark.django_db(transaction=True)
def test_totp_can_be_enabled_and_disabled(client):
    client.force_login(make_user())
    # allauth asks for the password again before any MFA change.
    client.post(reverse("account_reauthenticate"), {"password": PASSWORD})
    ada_client = client
    ada_client.get(reverse("mfa_activate_totp"))
    secret = ada_client.session[SECRET_SESSION_KEY]
    code = format_hotp_value(hotp_value(secret, int(time.time()) // 30))
    ada_client.post(reverse("mfa_activate_totp"), {"code": code})
    assert Authenticator.objects.filter(type=Authenticator.Type.TOTP).exists()
    assert events(Event.MFA_ENABLED)[0].detail["factor"] == "totp"
    assert "Two-factor authentication is <strong>on</strong>" in ada_client.get(
        reverse("accounts:settings")
    ).content.decode()

    ada_client.post(reverse("mfa_deactivate_totp"))
    assert not Authenticator.objects.filter(type=Authenticator.Type.TOTP).exists()
    assert events(Event.MFA_DISABLED)


# --- Linked Accounts --------------------------------------------------------------------


def test_linked_accounts_lists_social_and_org_links_with_delink_buttons(client):
    user = user_with_google_link()
    org_identity(user)
    client.force_login(user)
    html = client.get(reverse("accounts:settings")).content.decode()
    assert ">Delink my Google Account</button>" in html
    assert ">Delink my Acme Corp Account</button>" in html
    assert f'action="{reverse("accounts:delink")}"' in html


def test_delink_with_a_password_left(client):
    SocialApp.objects.create(provider="google", name="Google", client_id="cid", secret="s")
    user = user_with_google_link()
    client.force_login(user)
    link = f"social:{SocialAccount.objects.get().pk}"
    response = client.post(reverse("accounts:delink"), {"link": link})
    assert response.status_code == 302
    assert not SocialAccount.objects.exists()
    assert events(Event.SOCIAL_DELINKED)[0].detail["provider"] == "google"
    assert [m.to for m in mail.outbox] == [["ada@example.com"]]  # the owner is told


def test_delink_works_after_the_provider_app_was_removed(client):
    user = user_with_google_link()
    client.force_login(user)
    link = f"social:{SocialAccount.objects.get().pk}"
    assert client.post(reverse("accounts:delink"), {"link": link}).status_code == 302
    assert not SocialAccount.objects.exists()
    assert events(Event.SOCIAL_DELINKED)


def test_removing_the_last_way_to_log_in_is_refused(client):
    user = user_with_google_link(password=None)
    client.force_login(user)
    link = f"social:{SocialAccount.objects.get().pk}"
    response = client.post(reverse("accounts:delink"), {"link": link})
    html = response.content.decode()
    assert response.status_code == 409
    assert "Set a password first" in html
    assert f'href="{reverse("account_set_password")}"' in html
    assert SocialAccount.objects.exists()
    refused = events(Event.DELINK_REFUSED)[0]
    assert refused.outcome == "failure" and refused.reference in html


def test_without_password_one_of_two_links_can_go_but_not_the_second(client):
    user = user_with_google_link(password=None)
    identity = org_identity(user)
    client.force_login(user)
    client.post(reverse("accounts:delink"), {"link": f"org:{identity.pk}"})
    assert not OrgIdentity.objects.exists()
    assert events(Event.SSO_DELINKED)[0].organization == identity.connection.organization
    response = client.post(
        reverse("accounts:delink"), {"link": f"social:{SocialAccount.objects.get().pk}"}
    )
    assert response.status_code == 409
    assert SocialAccount.objects.exists()


def test_cannot_delink_someone_elses_link(client):
    victim = user_with_google_link()
    client.force_login(make_user("mallory@example.com"))
    client.post(reverse("accounts:delink"), {"link": f"social:{SocialAccount.objects.get().pk}"})
    assert SocialAccount.objects.filter(user=victim).exists()


def test_delink_requires_post_and_csrf():
    user = user_with_google_link()
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    link = f"social:{SocialAccount.objects.get().pk}"
    assert client.get(reverse("accounts:delink"), {"link": link}).status_code == 405
    assert client.post(reverse("accounts:delink"), {"link": link}).status_code == 403
    assert SocialAccount.objects.exists()


# --- Dashboard and admin ------------------------------------------------------------------


def test_dashboard_empty_state(ada_client):
    html = ada_client.get(reverse("dashboard")).content.decode()
    assert "not in a learning program yet" in html and "No certificates yet" in html


def test_dashboard_lists_programs_and_certificates(ada_client):
    user = User.objects.get()
    org = Organization.objects.create(slug="acme", name="Acme Corp")
    program = Program.objects.create(organization=org, slug="data", name="Data Science")
    ProgramMembership.objects.create(program=program, user=user)
    Certificate.objects.create(
        user=user, course_name="Statistics 101", issued_at=date(2025, 1, 2), verification_code="V1"
    )
    other = make_user("other@example.com")
    Certificate.objects.create(
        user=other, course_name="Not mine", issued_at=date(2025, 1, 2), verification_code="V2"
    )
    html = ada_client.get(reverse("dashboard")).content.decode()
    assert "Data Science" in html and "Acme Corp" in html and "Statistics 101" in html
    assert "Not mine" not in html


def test_admin_registrations_work(client):
    for model in (User, Program, ProgramMembership, Certificate):
        assert model in admin.site._registry
    admin_user = User.objects.create_superuser(email="root@example.com", password=PASSWORD)
    client.force_login(admin_user)
    for name in ("accounts_user", "programs_program", "programs_certificate"):
        assert client.get(reverse(f"admin:{name}_changelist")).status_code == 200
    assert client.get(reverse("admin:accounts_user_add")).status_code == 200
    response = client.post(
        reverse("admin:accounts_user_add"),
        {"email": "new@example.com", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302
    assert User.objects.get(email="new@example.com").check_password(PASSWORD)
