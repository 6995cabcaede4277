"""Issue 4: an existing learner links a personal account to the org identity, starting from the
invitation mailed through a real SMTP server, against SimpleSAMLphp, in headless Chromium.

(a) A confirmed email + password account; an invitation to the org address -> the mail's link
    -> landing page (org, program) -> Log in with your organization -> SimpleSAMLphp -> I'm an
    existing OrgLogin Learning user -> email + password -> Continue -> the dashboard lists the
    program; then SSO (straight in) and password reach the same account (spec 2.2, 2.3).
(b) The conflict (spec 2.4): the org email belongs to an account that logs in with Google only
    -> the exact "Sorry there's a problem ..." text with a reference; as that learner: set a
    password, Delink my Google Account, follow the invitation again -> linked.
(c) A logged-in learner links from the invitation page itself (spec 2.2.1): a fresh SSO
    login, then the account's password again.

Each screen is saved under test-output/screenshots/<test name>/.
"""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from tests.journeys.journey_support import (
    CONFLICT_TEXT,
    PASSWORD,
    add_org,
    add_saml_connection,
    audit_event,
    browser_logged_in_as,
    browser_user_id,
    dashboard_heading,
    dashboard_url,
    existing_user_continue,
    invitation_link_from,
    label,
    log_in_with_password,
    log_out,
    make_google_only_account,
    make_personal_account,
    open_login,
    org_login,
    reference_on,
    reset_simplesamlphp,
    run_task_queue,
    sign_in_at_simplesamlphp,
    start_signing_simplesamlphp,
    through_saml_idp,
    unlinked_choice,
    wait_for_unlinked_choice,
)
from tests.support.simplesamlphp import AUTH_SOURCE

pytestmark = [
    pytest.mark.browser,
    pytest.mark.peer_saml,
    pytest.mark.django_db(transaction=True),
]

PROGRAM = "Data Literacy"


@pytest.fixture(scope="module")
def _ssp(tmp_path_factory):
    yield from start_signing_simplesamlphp(tmp_path_factory.mktemp("ssp-linking"))


@pytest.fixture
def idp(_ssp):
    reset_simplesamlphp(_ssp)
    return _ssp


@pytest.fixture
def program(live_app, idp):
    """Acme Corp, its SAML connection to SimpleSAMLphp, and a program (`orglogin program add`)."""
    from django.core.management import call_command

    from orglogin.programs.models import Program

    org = add_org("acme", "Acme Corp", ["acme.test"])
    add_saml_connection(org, idp)
    call_command("program", "add", "acme", "data", "--name", PROGRAM)
    return Program.objects.get(organization=org, slug="data")


def mail_invitation(program, email: str, smtp_mail) -> str:
    """Invite `email`; the background task delivers it over SMTP; return the mailed link."""
    from orglogin.programs.invite import create_invitations

    create_invitations(program, [email])
    run_task_queue()
    mail = smtp_mail.wait_for(to=email)
    assert "Acme Corp" in mail.subject and PROGRAM in mail.subject, mail.subject
    return invitation_link_from(mail)


def open_invitation(page, link: str) -> None:
    from playwright.sync_api import expect

    page.goto(link)
    # 2.2.2: the landing page names the org and the program.
    expect(page.get_by_role("heading", name=PROGRAM, exact=True)).to_be_visible()
    expect(page.get_by_text("Acme Corp invites you to")).to_be_visible()


def expect_program_on_dashboard(page) -> None:
    from playwright.sync_api import expect

    page.wait_for_url(dashboard_url())
    programs = page.get_by_role("region", name="My programs")
    expect(programs.get_by_text(PROGRAM, exact=True)).to_be_visible()


def test_existing_account_links_from_the_mailed_invitation(
    live_app, idp, program, page, smtp_mail, screenshots
):
    from django.contrib.auth import get_user_model

    from orglogin.organizations.models import Membership
    from orglogin.programs.models import Invitation, ProgramMembership
    from orglogin.sso.models import OrgIdentity

    jane = idp.users["jane"]
    personal = make_personal_account("jane.doe@home.example", first_name="Jane")
    link = mail_invitation(program, jane.email, smtp_mail)
    assert link.startswith(live_app + "/programs/invitation/")

    open_invitation(page, link)
    screenshots(page, "invitation")
    page.get_by_role("link", name="Log in with your organization").click()
    page.get_by_role("button", name="Continue").wait_for()
    screenshots(page, "company-prefilled")
    page.get_by_role("button", name="Continue").click()
    sign_in_at_simplesamlphp(page, idp, jane)
    wait_for_unlinked_choice(page)
    screenshots(page, "unlinked-identity")

    existing_user_continue(page, personal.email, PASSWORD)
    expect_program_on_dashboard(page)
    screenshots(page, "dashboard-with-program")

    assert get_user_model().objects.count() == 1
    org_link = OrgIdentity.objects.get()
    assert (org_link.user_id, org_link.subject) == (personal.pk, jane.uid)
    assert ProgramMembership.objects.filter(program=program, user=personal).exists()
    assert Membership.objects.filter(organization=program.organization, user=personal).exists()
    invitation = Invitation.objects.get()
    assert (invitation.status, invitation.used_by_id) == ("used", personal.pk)

    # Returning: SSO straight in, then the password; the same account both times.
    log_out(page)
    open_login(page, live_app)
    org_login(page, "acme.test")
    through_saml_idp(page, idp, jane, dashboard_heading(page))
    expect_program_on_dashboard(page)
    screenshots(page, "returning-sso")
    assert browser_user_id(page, live_app) == personal.pk

    log_out(page)
    log_in_with_password(page, live_app, personal.email, PASSWORD)
    expect_program_on_dashboard(page)
    screenshots(page, "returning-password")
    assert browser_user_id(page, live_app) == personal.pk
    assert get_user_model().objects.count() == 1 and OrgIdentity.objects.count() == 1


def test_google_only_account_conflict_then_set_password_delink_and_link(
    live_app, idp, program, page, smtp_mail, screenshots
):
    from allauth.socialaccount.models import SocialAccount
    from django.contrib.auth import get_user_model
    from playwright.sync_api import expect

    from orglogin.programs.models import ProgramMembership
    from orglogin.sso.models import OrgIdentity

    jane = idp.users["jane"]
    google_user = make_google_only_account(jane.email)
    link = mail_invitation(program, jane.email, smtp_mail)

    # 2.4.2: the conflict. Nothing created, nothing linked; the exact text and a reference.
    open_invitation(page, link)
    page.get_by_role("link", name="Log in with your organization").click()
    page.get_by_role("button", name="Continue").click()
    sign_in_at_simplesamlphp(page, idp, jane)
    expect(page.get_by_text(CONFLICT_TEXT, exact=True)).to_be_visible()
    reference = reference_on(page)
    expect(page.get_by_role("link", name=re.compile("delink", re.IGNORECASE))).to_be_visible()
    screenshots(page, "conflict")
    event = audit_event(reference)
    assert event.event == "sso.conflict" and event.outcome == "failure"
    assert get_user_model().objects.count() == 1 and OrgIdentity.objects.count() == 0
    assert browser_user_id(page, live_app) is None

    # As that learner (Google itself is not a peer we run): set a password, then delink.
    browser_logged_in_as(page, live_app, google_user)
    page.goto(live_app + reverse("accounts:settings"))
    expect(page.get_by_role("heading", name="Linked Accounts")).to_be_visible()
    screenshots(page, "settings-no-password")
    page.get_by_role("link", name="Set a password").first.click()
    page.get_by_label(label("Password")).fill(PASSWORD)
    page.get_by_label(label("Password (again)")).fill(PASSWORD)
    screenshots(page, "set-password")
    page.get_by_role("button", name=re.compile("set password", re.IGNORECASE)).click()
    page.wait_for_url(lambda url: reverse("account_set_password") not in url)
    google_user.refresh_from_db()
    assert google_user.has_usable_password()

    page.goto(live_app + reverse("accounts:settings"))
    page.get_by_role("button", name="Delink my Google Account").click()
    page.wait_for_load_state()
    expect(page.get_by_role("button", name="Delink my Google Account")).to_have_count(0)
    screenshots(page, "google-delinked")
    assert not SocialAccount.objects.filter(user=google_user).exists()

    # 2.4.4: follow the invitation again (logged in: log out first, as the page offers).
    open_invitation(page, link)
    screenshots(page, "invitation-logged-in")
    expect(page.get_by_text(f"You are logged in as {jane.email}.")).to_be_visible()
    page.get_by_role("button", name="Log Out").click()
    page.get_by_role("link", name="Log in with your organization").wait_for()
    screenshots(page, "invitation-logged-out")
    page.get_by_role("link", name="Log in with your organization").click()
    page.get_by_role("button", name="Continue").click()
    through_saml_idp(page, idp, jane, unlinked_choice(page))
    wait_for_unlinked_choice(page)
    screenshots(page, "unlinked-identity")
    existing_user_continue(page, jane.email, PASSWORD)
    expect_program_on_dashboard(page)
    screenshots(page, "linked-dashboard")

    assert get_user_model().objects.count() == 1
    assert OrgIdentity.objects.get().user_id == google_user.pk
    assert ProgramMembership.objects.filter(program=program, user=google_user).exists()
    assert browser_user_id(page, live_app) == google_user.pk


def test_logged_in_learner_links_from_the_invitation_page(
    live_app, idp, program, page, smtp_mail, screenshots
):
    from django.contrib.auth import get_user_model
    from playwright.sync_api import expect

    from orglogin.programs.models import ProgramMembership
    from orglogin.sso.models import OrgIdentity

    jane = idp.users["jane"]
    personal = make_personal_account("jane.doe@home.example", first_name="Jane")
    link = mail_invitation(program, jane.email, smtp_mail)
    log_in_with_password(page, live_app, personal.email, PASSWORD)
    # This browser already has a SimpleSAMLphp session (as after an earlier SSO login)...
    page.goto(idp.base_url + "module.php/core/authenticate.php?as=" + AUTH_SOURCE)
    sign_in_at_simplesamlphp(page, idp, jane)
    page.get_by_text(jane.email).first.wait_for()

    open_invitation(page, link)
    expect(page.get_by_text(f"You are logged in as {personal.email}.")).to_be_visible()
    expect(page.get_by_role("button", name="Log Out")).to_be_visible()  # the article's step 1
    screenshots(page, "invitation-logged-in")
    page.get_by_role("button", name="Link your Acme Corp account to this account").click()
    # ...yet linking asks the IdP for a fresh login (ForceAuthn): its form, not its session.
    password = page.get_by_label(label("Password"))
    idp_form = page.locator("input[name=username]")
    idp_form.or_(password).first.wait_for()
    assert idp_form.is_visible(), f"the IdP's session was reused for linking: {page.url}"
    screenshots(page, "fresh-idp-login")
    sign_in_at_simplesamlphp(page, idp, jane)
    password.wait_for()
    screenshots(page, "confirm-password")
    password.fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    expect_program_on_dashboard(page)
    screenshots(page, "linked-dashboard")

    assert get_user_model().objects.count() == 1
    assert OrgIdentity.objects.get().user_id == personal.pk
    assert ProgramMembership.objects.filter(program=program, user=personal).exists()
    assert browser_user_id(page, live_app) == personal.pk
