"""Issue 3: first and returning SSO login against a real SAML IdP (SimpleSAMLphp 1.19), end to
end in headless Chromium.

SimpleSAMLphp wants signed AuthnRequests (its metadata says so; it checks them with our SP
certificate) and signs both Response and Assertion; its users get a persistent NameID (their
uid). Acme Corp (verified domain acme.test) gets its SAML connection from SimpleSAMLphp's
metadata URL through the same command an operator runs (`orglogin sso add-saml`).

Home -> Log In -> Log in with your organization -> jane@acme.test -> Continue -> SimpleSAMLphp's
log-in form -> back -> I'm a new user -> pre-filled form -> Sign Up -> dashboard; log out;
SSO again -> straight to the dashboard (spec 2.3); log out; email + password -> the same
account. Also: a wrong password stays at the IdP; a captured SAMLResponse re-posted to our ACS
is refused with a reference code.

Elements are found by accessible labels, roles and the spec's texts, never by CSS classes.
Each screen is saved under test-output/screenshots/<test name>/.
"""

from __future__ import annotations

import html
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.urls import reverse

from tests.journeys.journey_support import (
    PASSWORD,
    PLATFORM,
    Navigations,
    add_org,
    add_saml_connection,
    audit_event,
    browser_user_id,
    choose_new_user,
    dashboard_heading,
    dashboard_url,
    label,
    log_in_with_password,
    log_out,
    open_login,
    org_login,
    reference_on,
    reset_simplesamlphp,
    sign_in_at_simplesamlphp,
    start_signing_simplesamlphp,
    through_saml_idp,
    url_of,
    wait_for_unlinked_choice,
)

pytestmark = [pytest.mark.browser, pytest.mark.peer_saml, pytest.mark.django_db(transaction=True)]


@pytest.fixture(scope="module")
def _ssp(tmp_path_factory):
    yield from start_signing_simplesamlphp(tmp_path_factory.mktemp("ssp-journey"))


@pytest.fixture
def idp(_ssp):
    reset_simplesamlphp(_ssp)
    return _ssp


@pytest.fixture
def acme(live_app, idp):
    """Acme Corp + its SAML connection, made after BASE_URL follows the live server."""
    org = add_org("acme", "Acme Corp", ["acme.test"])
    connection = add_saml_connection(org, idp)
    return org, connection


def test_first_login_signs_up_then_sso_and_password_reach_the_same_account(
    live_app, idp, acme, page, screenshots
):
    from django.contrib.auth import get_user_model
    from playwright.sync_api import expect

    from orglogin.organizations.models import Membership
    from orglogin.sso.models import OrgIdentity
    from orglogin.sso.protocols.saml import sp_endpoints
    from tests.support.simplesamlphp import authn_request_url, looks_like_error

    org, connection = acme
    jane = idp.users["jane"]

    authn_requests: list[str] = []
    page.on(
        "request",
        lambda request: (
            authn_requests.append(request.url) if request.url.startswith(idp.sso_url) else None
        ),
    )

    # 2.1.1-3: Log In -> Log in with your organization -> the email -> Continue -> the IdP.
    open_login(page, live_app)
    screenshots(page, "login")
    page.get_by_role("link", name="Log in with your organization").click()
    page.get_by_label("Your company's URL").wait_for()
    screenshots(page, "company-url")
    page.get_by_label("Your company's URL").fill(jane.email)
    page.get_by_role("button", name="Continue").click()

    # 2.1.4: SimpleSAMLphp's own log-in form (it accepted our signed AuthnRequest).
    page.wait_for_url(url_of(idp.base_url))
    page.locator("input[name=username]").wait_for()
    screenshots(page, "simplesamlphp-login")
    # Our AuthnRequest went out signed (HTTP-Redirect binding, RSA-SHA256), and SimpleSAMLphp,
    # told to validate it with our certificate, accepted it (its form, not its error page).
    [authn_request] = authn_requests
    query = parse_qs(urlsplit(authn_request).query)
    assert query["SigAlg"] == ["http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"]
    assert query["Signature"][0] and query["SAMLRequest"][0] and query["RelayState"][0]
    endpoints = sp_endpoints(connection)
    unsigned = requests.get(
        authn_request_url(idp.sso_url, sp_entity_id=endpoints.entity_id, acs_url=endpoints.acs_url),
        timeout=10,
    )
    assert looks_like_error(unsigned.text) and "no signature found on message" in unsigned.text
    sign_in_at_simplesamlphp(page, idp, jane)

    # 2.1.5: back from the IdP, an unlinked identity -> the two choices.
    wait_for_unlinked_choice(page)
    assert page.url.startswith(live_app)
    screenshots(page, "unlinked-identity")
    choose_new_user(page)

    # 2.1.6: pre-filled from the IdP; the org email shown, not editable.
    org_email = page.get_by_label("Organization email")
    expect(org_email).to_have_value(jane.email)
    expect(org_email).not_to_be_editable()
    expect(page.get_by_label(label("First name"))).to_have_value("Jane")
    expect(page.get_by_label(label("Last name"))).to_have_value("Doe")
    expect(page.get_by_text("to keep all your Course Certificates in one account")).to_be_visible()
    expect(page.get_by_label(label("Alternative email"))).to_have_value("")  # optional: left empty
    page.get_by_label(label(f"Create a {PLATFORM} account password")).fill(PASSWORD)
    screenshots(page, "sign-up")
    page.get_by_role("button", name="Sign Up").click()
    page.wait_for_url(dashboard_url())
    screenshots(page, "dashboard")

    User = get_user_model()
    user = User.objects.get()
    assert user.email == jane.email and (user.first_name, user.last_name) == ("Jane", "Doe")
    assert user.alternative_email == ""
    link = OrgIdentity.objects.get()
    # SimpleSAMLphp's persistent NameID is the user's uid.
    assert (link.user_id, link.connection_id, link.subject) == (user.pk, connection.pk, jane.uid)
    assert Membership.objects.filter(organization=org, user=user).exists()
    assert browser_user_id(page, live_app) == user.pk

    # 2.3: log out; Log in with your organization again -> (IdP session) -> straight in.
    log_out(page)
    screenshots(page, "logged-out")
    assert browser_user_id(page, live_app) is None
    navigations = Navigations(page)
    open_login(page, live_app)
    org_login(page, "acme.test")
    through_saml_idp(page, idp, jane, dashboard_heading(page))
    page.wait_for_url(dashboard_url())
    screenshots(page, "returning-sso")
    no_extra = [u for u in navigations.urls if "/sso/welcome" in u]
    assert not no_extra, f"a returning learner saw an extra screen: {navigations.urls}"
    assert browser_user_id(page, live_app) == user.pk

    # 2.3: the same account by email + password on the normal log-in screen.
    log_out(page)
    log_in_with_password(page, live_app, jane.email, PASSWORD)
    screenshots(page, "returning-password")
    assert browser_user_id(page, live_app) == user.pk
    assert User.objects.count() == 1
    assert OrgIdentity.objects.count() == 1
    assert Membership.objects.filter(organization=org).count() == 1


def test_wrong_password_stays_at_the_idp(live_app, idp, acme, page, screenshots):
    from django.contrib.auth import get_user_model

    from orglogin.sso.models import OrgIdentity

    john = idp.users["john"]
    open_login(page, live_app)
    org_login(page, john.email)
    sign_in_at_simplesamlphp(page, idp, john, password="not-" + john.password)
    # SimpleSAMLphp shows its own error on its own form (HTTP 200); nothing reaches us.
    page.get_by_text("Incorrect username or password").first.wait_for()
    screenshots(page, "idp-wrong-password")
    assert page.url.startswith(idp.base_url)
    assert page.locator("input[name=password]").is_visible()
    assert get_user_model().objects.count() == 0 and OrgIdentity.objects.count() == 0

    # The right password then goes through to our choice screen.
    sign_in_at_simplesamlphp(page, idp, john)
    wait_for_unlinked_choice(page)
    screenshots(page, "then-right-password")


def _capture_acs_posts(page, acs_url: str) -> list[dict[str, str]]:
    """Record each form the IdP posts to our ACS (and let it through)."""
    from urllib.parse import parse_qsl

    posts: list[dict[str, str]] = []

    def handle(route):
        if route.request.method == "POST":
            posts.append(dict(parse_qsl(route.request.post_data or "")))
        route.continue_()

    page.route(acs_url, handle)
    return posts


def _repost(page, acs_url: str, fields: dict[str, str]) -> None:
    """Submit a captured IdP form to our ACS again, from the browser (what an attacker who
    captured it, or a Back + resubmit, would do)."""
    inputs = "".join(
        f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
        for k, v in fields.items()
    )
    page.set_content(
        f'<form method="post" action="{html.escape(acs_url)}">{inputs}'
        '<button type="submit">Replay</button></form>'
    )
    with page.expect_navigation():
        page.get_by_role("button", name="Replay").click()


def test_a_replayed_saml_response_is_refused_with_a_reference(live_app, idp, page, screenshots):
    from django.contrib.auth import get_user_model
    from playwright.sync_api import expect

    from orglogin.sso.models import OrgIdentity
    from orglogin.sso.protocols.saml import sp_endpoints

    # IdP-initiated login allowed here, so the last line of defence is the assertion-ID
    # replay cache itself (an SP-initiated response is also bound to its request).
    org = add_org("acme", "Acme Corp", ["acme.test"])
    connection = add_saml_connection(org, idp, idp_initiated=True)
    acs_url = sp_endpoints(connection).acs_url
    entity_id = sp_endpoints(connection).entity_id
    jane = idp.users["jane"]
    posts = _capture_acs_posts(page, acs_url)

    # SP-initiated: log in, capture the SAMLResponse, then post it again.
    open_login(page, live_app)
    org_login(page, jane.email)
    sign_in_at_simplesamlphp(page, idp, jane)
    wait_for_unlinked_choice(page)
    assert len(posts) == 1 and posts[0].get("SAMLResponse")
    _repost(page, acs_url, posts[0])
    expect(page.get_by_role("alert")).to_be_visible()
    reference = reference_on(page)
    screenshots(page, "replayed-sp-initiated")
    event = audit_event(reference)
    assert event.outcome == "failure"
    # Its request was answered already: nothing in this browser waits for it any more.
    assert event.detail.get("check") == "in_response_to", event.detail

    # IdP-initiated (SimpleSAMLphp's unsolicited SSO): accepted once, refused as a replay.
    seen = len(posts)  # the replay above went through the same route
    page.goto(f"{idp.sso_url}?spentityid={entity_id}")
    if page.locator("input[name=username]").count():
        sign_in_at_simplesamlphp(page, idp, jane)
    wait_for_unlinked_choice(page)
    screenshots(page, "idp-initiated-accepted")
    assert len(posts) == seen + 1
    _repost(page, acs_url, posts[-1])
    expect(page.get_by_role("heading", name="This sign-in was already used")).to_be_visible()
    reference = reference_on(page)
    screenshots(page, "replayed-idp-initiated")
    event = audit_event(reference)
    assert (event.outcome, event.detail.get("check")) == ("failure", "replay"), event.detail
    # The learner sees a reason and the code, never which check failed.
    body = page.locator("main").inner_text()
    assert "replay" not in body.lower() and "assertion" not in body.lower()

    assert get_user_model().objects.count() == 0 and OrgIdentity.objects.count() == 0
    assert reverse("sso:choose") not in page.url
