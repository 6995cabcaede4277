"""Issue 2, item 8: a personal account end to end, in headless Chromium against the live app,
with every mail going through a real SMTP server.

Sign up -> confirm the email from the mailed link -> log in -> log out -> log in -> change the
email in Account Settings (the new address confirmed from its own mailed link) -> and, for an
account whose only way in is Google, the Linked Accounts section refuses to delink it.

Elements are found by accessible labels, roles and the spec's texts, never by CSS classes.
Each screen is saved under test-output/screenshots/<test name>/.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple 42"
CONFIRM_PATH = "/accounts/confirm-email/"


def label(text: str) -> re.Pattern[str]:
    """A field's label exactly, with or without Django's trailing colon or a required mark."""
    return re.compile(rf"^\s*{re.escape(text)}\s*:?\s*\*?\s*$", re.IGNORECASE)


def confirm_link(mail) -> str:
    links = [link for link in mail.links if CONFIRM_PATH in link]
    assert links, f"no confirmation link in the mail: {mail.text}"
    return links[0]


def log_in(page, live_app: str, email: str, password: str) -> None:
    page.goto(live_app + reverse("account_login"))
    page.get_by_label(label("Email")).fill(email)
    page.get_by_label(label("Password")).fill(password)
    page.get_by_role("button", name="Log In", exact=True).click()
    page.wait_for_url(re.compile(re.escape(reverse("dashboard")) + "$"))


def log_out(page) -> None:
    account_menu = page.get_by_role("navigation", name="Account")
    account_menu.locator("summary").click()  # the menu under the learner's name
    account_menu.get_by_role("button", name="Log Out").click()
    # Logged out: the header shows Log In again (spec 2.1.1).
    account_menu.get_by_role("link", name="Log In").wait_for()


def test_sign_up_confirm_log_in_out_and_change_email(live_app, page, smtp_mail, screenshots):
    from allauth.account.models import EmailAddress
    from django.contrib.auth import get_user_model
    from playwright.sync_api import expect

    email = "learner@example.test"
    new_email = "learner.new@example.test"

    # Sign up.
    page.goto(live_app + reverse("account_signup"))
    screenshots(page, "signup-form")
    page.get_by_label(label("Email")).fill(email)
    page.get_by_label(label("Password")).fill(PASSWORD)
    page.get_by_role("button", name="Sign Up").click()
    page.wait_for_load_state()
    screenshots(page, "verification-sent")

    # Confirm the address from the mail the real SMTP server received.
    mail = smtp_mail.wait_for(to=email)
    page.goto(confirm_link(mail))
    screenshots(page, "confirm-email")
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_load_state()
    screenshots(page, "email-confirmed")
    assert EmailAddress.objects.get(email=email).verified

    # Log in, log out, log in again.
    log_in(page, live_app, email, PASSWORD)
    screenshots(page, "logged-in")
    log_out(page)
    screenshots(page, "logged-out")
    log_in(page, live_app, email, PASSWORD)
    screenshots(page, "logged-in-again")

    # Change the email: Settings -> Save -> confirm the new address from its own mail.
    page.goto(live_app + reverse("accounts:settings"))
    expect(page.get_by_label(label("Email"))).to_have_value(email)
    screenshots(page, "settings")
    page.get_by_label(label("Email")).fill(new_email)
    page.get_by_role("button", name="Save").click()
    page.wait_for_load_state()
    screenshots(page, "email-change-pending")
    assert get_user_model().objects.get(email__iexact=email)  # not changed until confirmed

    change_mail = smtp_mail.wait_for(to=new_email)
    page.goto(confirm_link(change_mail))
    screenshots(page, "confirm-new-email")
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_load_state()
    screenshots(page, "new-email-confirmed")

    user = get_user_model().objects.get(email__iexact=new_email)
    assert EmailAddress.objects.get(user=user, email=new_email).verified
    page.goto(live_app + reverse("accounts:settings"))
    expect(page.get_by_label(label("Email"))).to_have_value(new_email)
    screenshots(page, "settings-new-email")
    # The old address is told of the change (spec 2.5).
    smtp_mail.wait_for(to=email, after=1)

    # The new address is now the login email.
    log_out(page)
    log_in(page, live_app, new_email, PASSWORD)
    screenshots(page, "logged-in-with-new-email")


def test_delinking_the_only_social_login_is_refused(live_app, page, screenshots):
    from allauth.account.models import EmailAddress
    from allauth.socialaccount.models import SocialAccount
    from django.contrib.auth import get_user_model
    from django.test import Client
    from playwright.sync_api import expect

    # An account whose only way in is Google: no usable password, one social link.
    user = get_user_model().objects.create_user("social.only@example.test", password=None)
    user.set_unusable_password()
    user.save()
    EmailAddress.objects.create(user=user, email=user.email, verified=True, primary=True)
    SocialAccount.objects.create(
        user=user, provider="google", uid="google-uid-123", extra_data={"email": user.email}
    )

    # Log the browser in as that user (Google itself is not a peer we run).
    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    session_cookie = client.cookies["sessionid"]
    page.context.add_cookies(
        [{"name": "sessionid", "value": session_cookie.value, "url": live_app}]
    )

    page.goto(live_app + reverse("accounts:settings"))
    expect(page.get_by_role("heading", name="Linked Accounts")).to_be_visible()
    screenshots(page, "linked-accounts")
    page.get_by_role("button", name="Delink my Google Account").click()
    page.wait_for_load_state()
    expect(page.get_by_text(re.compile(r"set a password", re.IGNORECASE)).first).to_be_visible()
    screenshots(page, "delink-refused")

    assert SocialAccount.objects.filter(user=user, provider="google").exists()
