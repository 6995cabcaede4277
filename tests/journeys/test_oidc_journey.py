"""Issue 5: SSO through a real OpenID Provider (node oidc-provider 9), end to end in headless
Chromium.

The provider knows our client and its redirect URI (registered at its start, as an admin
pastes what `orglogin sso add-oidc` prints); Acme Corp's OIDC connection is made with the
same action that command uses (the provider's discovery document is fetched and checked).
On the provider's development pages the account id is the login, any password passes, then
consent.

* first login: Log in with your organization -> email -> Continue -> provider log-in and
  consent -> I'm a new user -> Sign Up -> dashboard; returning: straight to the dashboard;
* linking: a personal account with a password -> SSO -> I'm an existing OrgLogin Learning
  user -> email + password -> Continue -> dashboard; then SSO and password reach it both;
* an org with a SAML and an OIDC connection shows the chooser.

Each screen is saved under test-output/screenshots/<test name>/.
"""

from __future__ import annotations

import uuid

import pytest

from tests.journeys.journey_support import (
    EXISTING_USER,
    PASSWORD,
    PLATFORM,
    Navigations,
    add_oidc_connection,
    add_org,
    browser_user_id,
    choose_new_user,
    dashboard_heading,
    dashboard_url,
    existing_user_continue,
    label,
    log_in_with_password,
    log_out,
    make_personal_account,
    open_login,
    org_login,
    sign_in_at_oidc_provider,
    through_oidc_provider,
    wait_for_unlinked_choice,
)
from tests.support.oidc_provider import OidcProviderPeer, PeerUnavailable, node_missing_reason
from tests.support.peers import require_peer

pytestmark = [pytest.mark.browser, pytest.mark.peer_oidc, pytest.mark.django_db(transaction=True)]

# The provider registers its clients when it starts, so the connection's public id (part of
# the redirect URI) is chosen first, as in tests/peers/test_oidc_peer.py.
PUBLIC_ID = uuid.uuid4()
CALLBACK_PATH = f"/sso/oidc/{PUBLIC_ID}/callback/"


@pytest.fixture(scope="module")
def provider(live_server, tmp_path_factory):
    reason = node_missing_reason()
    if reason:
        require_peer(reason)
    try:
        peer = OidcProviderPeer(
            tmp_path_factory.mktemp("oidc-journey"),
            redirect_uris=[live_server.url.rstrip("/") + CALLBACK_PATH],
        ).start()
    except PeerUnavailable as exc:
        require_peer(str(exc))
    yield peer
    peer.stop()


@pytest.fixture
def acme(live_app, provider):
    """Acme Corp (acme.test) with its OIDC connection, after BASE_URL follows the server."""
    from orglogin.sso.models import Connection
    from orglogin.sso.protocols.oidc import redirect_uri

    org = add_org("acme", "Acme Corp", ["acme.test"])
    connection = add_oidc_connection(
        org, provider.issuer, provider.client_id, provider.client_secret, name="Acme OpenID"
    )
    # The id the provider was told about (its redirect URI), as if registered afterwards.
    Connection.objects.filter(pk=connection.pk).update(public_id=PUBLIC_ID)
    connection.refresh_from_db()
    assert redirect_uri(connection) == live_app + CALLBACK_PATH
    return org, connection


def test_first_login_signs_up_then_returns_straight_in(live_app, provider, acme, page, screenshots):
    from django.contrib.auth import get_user_model
    from playwright.sync_api import expect

    from orglogin.organizations.models import Membership
    from orglogin.sso.models import OrgIdentity

    org, connection = acme
    jane = provider.accounts["jane"]

    open_login(page, live_app)
    screenshots(page, "login")
    org_login(page, jane["email"])
    page.locator("input[name=login]").wait_for()
    screenshots(page, "provider-login")
    sign_in_at_oidc_provider(page, provider.issuer, "jane")

    wait_for_unlinked_choice(page)
    screenshots(page, "unlinked-identity")
    choose_new_user(page)
    expect(page.get_by_label("Organization email")).to_have_value(jane["email"])
    expect(page.get_by_label("Organization email")).not_to_be_editable()
    expect(page.get_by_label(label("First name"))).to_have_value(jane["given_name"])
    expect(page.get_by_label(label("Last name"))).to_have_value(jane["family_name"])
    page.get_by_label(label("Alternative email")).fill("jane.doe@home.example")
    page.get_by_label(label(f"Create a {PLATFORM} account password")).fill(PASSWORD)
    screenshots(page, "sign-up")
    page.get_by_role("button", name="Sign Up").click()
    page.wait_for_url(dashboard_url())
    screenshots(page, "dashboard")

    user = get_user_model().objects.get()
    assert (user.email, user.alternative_email) == (jane["email"], "jane.doe@home.example")
    link = OrgIdentity.objects.get()
    assert (link.user_id, link.connection_id, link.subject) == (user.pk, connection.pk, "jane")
    assert Membership.objects.filter(organization=org, user=user).exists()

    # Returning: the provider keeps its session and the grant -> straight to the dashboard.
    log_out(page)
    navigations = Navigations(page)
    open_login(page, live_app)
    org_login(page, "acme.test")
    through_oidc_provider(page, provider.issuer, "jane", dashboard_heading(page))
    page.wait_for_url(dashboard_url())
    screenshots(page, "returning")
    assert not [u for u in navigations.urls if "/sso/welcome" in u], navigations.urls
    assert browser_user_id(page, live_app) == user.pk
    assert get_user_model().objects.count() == 1 and OrgIdentity.objects.count() == 1


def test_existing_personal_account_is_linked_then_both_ways_reach_it(
    live_app, provider, acme, page, screenshots
):
    from django.contrib.auth import get_user_model

    from orglogin.sso.models import OrgIdentity

    org, connection = acme
    # Sam's personal account uses another address than the one his org asserts.
    personal = make_personal_account("sam.lee@home.example", first_name="Sam")

    open_login(page, live_app)
    org_login(page, "acme.test")
    sign_in_at_oidc_provider(page, provider.issuer, "sam")
    wait_for_unlinked_choice(page)
    screenshots(page, "unlinked-identity")
    page.get_by_role("link", name=EXISTING_USER).click()
    page.get_by_label(label("Password")).wait_for()
    screenshots(page, "existing-user")
    page.get_by_label(label("Email")).fill(personal.email)
    page.get_by_label(label("Password")).fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(dashboard_url())
    screenshots(page, "linked-dashboard")

    assert get_user_model().objects.count() == 1  # no second account
    link = OrgIdentity.objects.get()
    assert (link.user_id, link.connection_id, link.subject) == (personal.pk, connection.pk, "sam")
    assert browser_user_id(page, live_app) == personal.pk

    log_out(page)
    open_login(page, live_app)
    org_login(page, "sam@acme.test")
    through_oidc_provider(page, provider.issuer, "sam", dashboard_heading(page))
    page.wait_for_url(dashboard_url())
    screenshots(page, "returning-sso")
    assert browser_user_id(page, live_app) == personal.pk

    log_out(page)
    log_in_with_password(page, live_app, personal.email, PASSWORD)
    screenshots(page, "returning-password")
    assert browser_user_id(page, live_app) == personal.pk
    assert get_user_model().objects.count() == 1 and OrgIdentity.objects.count() == 1


def test_wrong_password_when_linking_keeps_the_pending_login(
    live_app, provider, acme, page, screenshots
):
    from allauth.account.adapter import DefaultAccountAdapter
    from playwright.sync_api import expect

    from orglogin.sso.models import OrgIdentity

    LOGIN_MISMATCH = DefaultAccountAdapter.error_messages["email_password_mismatch"]  # noqa: N806
    personal = make_personal_account("sam.lee@home.example")
    open_login(page, live_app)
    org_login(page, "acme.test")
    sign_in_at_oidc_provider(page, provider.issuer, "sam")
    wait_for_unlinked_choice(page)
    existing_user_continue(page, personal.email, "not the password")
    # The same generic error as on the log-in screen (spec 2.2.5).
    expect(page.get_by_role("alert")).to_have_text(str(LOGIN_MISMATCH))
    screenshots(page, "wrong-password")
    assert OrgIdentity.objects.count() == 0
    # 2.2.5: the pending SSO login stays valid; the right password then links.
    page.get_by_label(label("Email")).fill(personal.email)
    page.get_by_label(label("Password")).fill(PASSWORD)
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(dashboard_url())
    screenshots(page, "linked")
    assert OrgIdentity.objects.get().user_id == personal.pk


def test_org_with_saml_and_oidc_connections_shows_the_chooser(
    live_app, provider, acme, page, screenshots
):
    from playwright.sync_api import expect

    from tests.flows.sso_support import make_saml_connection

    org, connection = acme
    # A second connection; its IdP need not run to show the chooser.
    make_saml_connection(org, name="Acme SAML")

    open_login(page, live_app)
    org_login(page, "Jane@Acme.test ")
    expect(page.get_by_role("heading", name="Log in with Acme Corp")).to_be_visible()
    expect(page.get_by_role("button", name="Acme SAML")).to_be_visible()
    screenshots(page, "chooser")
    page.get_by_role("button", name="Acme OpenID").click()
    sign_in_at_oidc_provider(page, provider.issuer, "jane")
    wait_for_unlinked_choice(page)
    screenshots(page, "unlinked-identity")
