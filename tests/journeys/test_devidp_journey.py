"""Issue 3: first SSO login through the development IdP, end to end in headless Chromium.

Log In -> Log in with your organization -> jane@acme.test -> Continue -> the development IdP
(pick Jane) -> real signed SAMLResponse, auto-posted to the ACS -> I'm a new user -> Sign Up
-> dashboard; log out; SSO again -> straight to the dashboard (spec 2.1, 2.3).

Elements are found by accessible labels, roles and the spec's texts, never by CSS classes.
Each screen is saved under test-output/screenshots/<test name>/.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery staple 42"


@pytest.fixture
def demo_org(live_app, settings, tmp_path):
    """Acme Corp on the development IdP, created after BASE_URL follows the live server."""
    from orglogin.sso.protocols.devidp import dev_idp_metadata_xml
    from tests.flows.sso_support import make_org, make_saml_connection

    settings.DEV_IDP_DIR = str(tmp_path / "dev-idp")
    org = make_org("acme", domains=["acme.test"], name="Acme Corp")
    make_saml_connection(org, metadata_xml=dev_idp_metadata_xml(), name="Acme Corp IdP")
    return org


def sso_at_dev_idp(page, company: str) -> None:
    page.get_by_role("link", name="Log in with your organization").click()
    page.get_by_label("Your company's URL").fill(company)
    page.get_by_role("button", name="Continue").click()
    page.get_by_role("heading", name=re.compile("Development IdP")).wait_for()


def pick_jane(page) -> None:
    page.get_by_role("button", name=re.compile(r"jane@acme\.test")).click()


def log_out(page) -> None:
    account_menu = page.get_by_role("navigation", name="Account")
    account_menu.locator("summary").click()
    account_menu.get_by_role("button", name="Log Out").click()
    account_menu.get_by_role("link", name="Log In").wait_for()


def test_first_sso_login_signs_up_then_returns_straight_in(live_app, demo_org, page, screenshots):
    from django.contrib.auth import get_user_model
    from playwright.sync_api import expect

    from orglogin.sso.models import OrgIdentity

    dashboard = re.compile(re.escape(reverse("dashboard")) + "$")

    page.goto(live_app + "/")
    page.get_by_role("navigation", name="Account").get_by_role("link", name="Log In").click()
    screenshots(page, "login")
    sso_at_dev_idp(page, "  Jane@ACME.test ")
    screenshots(page, "dev-idp")
    pick_jane(page)

    page.get_by_role("link", name="I'm a new user").wait_for()
    expect(page.get_by_role("link", name="I'm an existing OrgLogin Learning user")).to_be_visible()
    screenshots(page, "unlinked-identity")
    page.get_by_role("link", name="I'm a new user").click()

    expect(page.get_by_label("Organization email")).to_have_value("jane@acme.test")
    expect(page.get_by_label("First name")).to_have_value("Jane")
    expect(page.get_by_text("to keep all your Course Certificates in one account")).to_be_visible()
    page.get_by_label("Alternative email").fill("jane.doe@home.example")
    page.get_by_label("Create a OrgLogin Learning account password").fill(PASSWORD)
    screenshots(page, "sign-up")
    page.get_by_role("button", name="Sign Up").click()
    page.wait_for_url(dashboard)
    screenshots(page, "dashboard")

    user = get_user_model().objects.get()
    assert user.email == "jane@acme.test" and user.alternative_email == "jane.doe@home.example"
    assert OrgIdentity.objects.filter(user=user).count() == 1

    log_out(page)
    page.goto(live_app + reverse("account_login"))
    sso_at_dev_idp(page, "acme.test")
    pick_jane(page)
    page.wait_for_url(dashboard)
    screenshots(page, "returning")
    assert get_user_model().objects.count() == 1
