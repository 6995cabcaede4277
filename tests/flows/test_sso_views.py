"""The SSO screens and SAML SP endpoints over HTTP (Django test client), with real signed
responses from the development IdP's builder."""

import re
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.auth import SESSION_KEY, get_user_model
from django.test import Client
from django.urls import reverse

from orglogin.audit.models import AuditEvent
from orglogin.organizations.models import Membership
from orglogin.sso import pending
from orglogin.sso.models import Connection, OrgIdentity
from tests.flows.sso_support import IDP_SSO_URL, asserted, make_org, make_saml_connection

pytestmark = pytest.mark.django_db
User = get_user_model()
PASSWORD = "correct horse battery staple"


def html(response) -> str:
    return response.content.decode()


# --- discovery ------------------------------------------------------------------------------


def test_discover_screen(client):
    page = html(client.get("/sso/"))
    assert "<h1>Log in with your organization</h1>" in page
    assert "This is usually whatever is after the @ sign in your email address." in page
    assert re.search(r'<label for="id_company">[^<]+</label>', page)
    assert ">Continue</button>" in page


@pytest.mark.parametrize(
    "query, shown", [("?org=acme", "acme"), ("?company=acme.test", "acme.test")]
)
def test_discover_prefills_from_the_query(client, query, shown):
    assert f'value="{shown}"' in html(client.get("/sso/" + query))


def test_unknown_company_keeps_the_input_and_links_to_help(client, org):
    make_org("secretco", domains=["secret.test"], name="Secret Co")
    response = client.post("/sso/", {"company": "Nobody.example"})
    page = html(response)
    assert response.status_code == 200
    assert "We couldn&#x27;t find your organization" in page
    assert 'value="Nobody.example"' in page
    assert reverse("troubleshooting") in page
    for secret in ("Secret Co", "secretco", "secret.test", "Acme", "acme.test"):
        assert secret not in page


def test_one_connection_goes_straight_to_the_idp(client, org):
    connection = make_saml_connection(org)
    response = client.post("/sso/", {"company": "Jane@ACME.test", "next": "/programs/x/"})
    assert response.status_code == 302
    target = urlsplit(response["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == IDP_SSO_URL
    query = parse_qs(target.query)
    relay_state = query["RelayState"][0]
    assert "SAMLRequest" in query and len(relay_state) >= 32  # opaque, random
    login = pending.pop_login(client.session, relay_state)
    assert login.connection_id == connection.pk and login.request_id
    assert login.next_url == "/programs/x/"


def test_off_site_next_is_not_kept(client, org):
    make_saml_connection(org)
    response = client.post("/sso/", {"company": "acme.test", "next": "https://evil.example/"})
    relay_state = parse_qs(urlsplit(response["Location"]).query)["RelayState"][0]
    assert pending.pop_login(client.session, relay_state).next_url == ""


def test_several_connections_show_a_chooser(client, org):
    make_saml_connection(org, name="Okta")
    make_saml_connection(org, name="Entra ID")
    disabled = make_saml_connection(org, name="Old ADFS")
    Connection.objects.filter(pk=disabled.pk).update(enabled=False)
    page = html(client.post("/sso/", {"company": "acme.test"}))
    assert "Okta" in page and "Entra ID" in page and "Old ADFS" not in page
    assert page.count('action="/sso/start/') == 2


def test_org_without_connection_says_sso_is_not_set_up(client, org):
    response = client.post("/sso/", {"company": "acme.test"})
    assert response.status_code == 404
    page = html(response)
    assert "Single sign-on is not set up" in page
    reference = re.search(r'data-testid="reference">([A-Z0-9]+)<', page).group(1)
    event = AuditEvent.objects.get(reference=reference)
    assert event.detail["check"] == "no_enabled_connection"
    assert "no_enabled_connection" not in page


def test_start_by_public_id(client, org):
    connection = make_saml_connection(org)
    response = client.get(f"/sso/start/{connection.public_id}/?next=/dashboard/")
    assert response.status_code == 302 and response["Location"].startswith(IDP_SSO_URL)


# --- the SAML round trip through the development IdP's signed responses ---------------------


def start_at_idp(client, company="jane@acme.test"):
    from orglogin.sso.protocols.devidp import parse_authn_request

    response = client.post("/sso/", {"company": company})
    assert response.status_code == 302, html(response)
    return parse_authn_request(urlsplit(response["Location"]).query)


def idp_posts_back(authn, *, email="jane@acme.test", relay_state=None, in_response_to="same"):
    """The IdP's auto-submitted form: a cross-site POST, so WITHOUT our session cookie."""
    from orglogin.sso.protocols.devidp import build_signed_response

    saml = build_signed_response(
        authn.connection,
        email=email,
        given_name="Jane",
        family_name="Doe",
        in_response_to=authn.request_id if in_response_to == "same" else in_response_to,
    )
    cross_site = Client()  # no cookies: what SameSite=Lax does to a cross-site POST
    acs = reverse("sso:saml_acs", kwargs={"public_id": authn.connection.public_id})
    data = {"SAMLResponse": saml}
    data["RelayState"] = authn.relay_state if relay_state is None else relay_state
    response = cross_site.post(acs, data)
    assert response.status_code == 303
    assert "sessionid" not in response.cookies  # never clobbers the browser's real session
    assert SESSION_KEY not in cross_site.session
    return response["Location"]


def test_first_login_signup_and_returning_login(client, dev_connection):
    continuation = idp_posts_back(start_at_idp(client))
    assert "SAMLResponse" not in continuation and "k=" in continuation

    response = client.get(continuation)
    assert response.status_code == 302 and response["Location"] == reverse("sso:choose")
    page = html(client.get(response["Location"]))
    assert "I&#x27;m a new user" in page or "I'm a new user" in page
    assert "existing OrgLogin Learning user" in page

    page = html(client.get(reverse("sso:signup")))
    assert 'value="jane@acme.test" readonly' in page
    assert "Alternative email" in page
    assert "to keep all your Course Certificates in one account" in page
    assert "Create a OrgLogin Learning account password" in page
    assert ">Sign Up</button>" in page
    assert 'value="Jane"' in page and 'value="Doe"' in page

    response = client.post(
        reverse("sso:signup"),
        {
            "first_name": "Jane",
            "last_name": "Doe",
            "alternative_email": "jane@home.example",
            "password": PASSWORD,
            "email": "attacker@evil.example",  # tampered: must be ignored
            "org_email": "attacker@evil.example",
        },
    )
    assert response.status_code == 302 and response["Location"] == reverse("dashboard")
    user = User.objects.get()
    assert user.email == "jane@acme.test"
    assert int(client.session[SESSION_KEY]) == user.pk
    assert Membership.objects.filter(user=user, organization=dev_connection.organization).exists()

    client.post(reverse("account_logout"))
    assert SESSION_KEY not in client.session
    continuation = idp_posts_back(start_at_idp(client, "acme.test"))
    response = client.get(continuation)
    assert response.status_code == 302 and response["Location"] == reverse("dashboard")
    assert int(client.session[SESSION_KEY]) == user.pk
    assert User.objects.count() == 1 and OrgIdentity.objects.count() == 1


def test_the_acs_handoff_key_works_once(client, dev_connection):
    continuation = idp_posts_back(start_at_idp(client))
    assert client.get(continuation).status_code == 302
    again = client.get(continuation)
    assert again.status_code == 400 and "Your sign-in took too long" in html(again)


def test_a_response_for_another_browser_is_refused(client, dev_connection):
    authn = start_at_idp(client)
    continuation = idp_posts_back(authn)
    stranger = Client()  # has no pending login for this RelayState
    response = stranger.get(continuation)
    assert response.status_code in (400, 403)
    assert SESSION_KEY not in stranger.session
    page = html(response)
    assert re.search(r'data-testid="reference">[A-Z0-9]{10}<', page)
    assert "in_response_to" not in page.lower() and "InResponseTo" not in page


def test_unsolicited_response_is_refused_unless_allowed(client, dev_connection):
    from orglogin.sso.protocols.devidp import parse_authn_request

    authn = start_at_idp(client)
    continuation = idp_posts_back(authn, relay_state="", in_response_to=None)
    response = client.get(continuation)
    assert response.status_code == 400
    assert "Start your sign-in here" in html(response)

    Connection.objects.filter(pk=dev_connection.pk).update(allow_idp_initiated=True)
    authn = parse_authn_request(
        urlsplit(client.post("/sso/", {"company": "acme.test"})["Location"]).query
    )
    continuation = idp_posts_back(authn, relay_state="https://evil.example/", in_response_to=None)
    response = client.get(continuation)
    assert response.status_code == 302 and response["Location"] == reverse("sso:choose")
    assert pending.peek_identity(client.session).next_url == ""


def test_idp_initiated_relay_state_path_is_used_as_next(client, dev_connection):
    user = User.objects.create_user("jane@acme.test", PASSWORD)
    Connection.objects.filter(pk=dev_connection.pk).update(allow_idp_initiated=True)
    authn = start_at_idp(client)
    from orglogin.sso.protocols.devidp import persistent_name_id

    OrgIdentity.objects.create(
        connection=dev_connection, subject=persistent_name_id("jane@acme.test"), user=user
    )
    continuation = idp_posts_back(authn, relay_state="/programs/x/", in_response_to=None)
    response = client.get(continuation)
    assert response.status_code == 302 and response["Location"] == "/programs/x/"


def test_acs_refuses_get_and_empty_posts(client, org):
    connection = make_saml_connection(org)
    acs = reverse("sso:saml_acs", kwargs={"public_id": connection.public_id})
    assert client.get(acs).status_code == 405
    assert client.post(acs, {}).status_code == 400


def test_sp_metadata(client, org):
    connection = make_saml_connection(org)
    response = client.get(reverse("sso:saml_metadata", kwargs={"public_id": connection.public_id}))
    assert response.status_code == 200
    assert "xml" in response["Content-Type"]
    assert f"/sso/saml/{connection.public_id}/acs/" in html(response)


# --- after the IdP (identity stashed directly) ---------------------------------------------


def stash(client, connection, **fields):
    session = client.session
    pending.stash_identity(session, asserted(connection, **fields))
    session.save()


def test_jit_disabled_shows_the_refusal(client, org):
    connection = make_saml_connection(org)
    org.jit_signup_enabled = False
    org.save()
    stash(client, connection)
    response = client.get(reverse("sso:signup"))
    assert response.status_code == 403
    assert "Your organization creates accounts for you" in html(response)
    assert User.objects.count() == 0


def test_email_already_used_shows_the_existing_user_way(client, org):
    connection = make_saml_connection(org)
    User.objects.create_user("jane@acme.test", PASSWORD)
    stash(client, connection)
    response = client.post(reverse("sso:signup"), {"first_name": "Jane", "password": PASSWORD})
    assert response.status_code == 409
    page = html(response)
    assert "An account with this email already exists" in page
    assert reverse("sso:existing") in page
    assert User.objects.count() == 1 and OrgIdentity.objects.count() == 0


def test_weak_password_is_refused_and_nothing_created(client, org):
    connection = make_saml_connection(org)
    stash(client, connection)
    response = client.post(reverse("sso:signup"), {"first_name": "Jane", "password": "password"})
    assert response.status_code == 200 and "errorlist" in html(response)
    assert User.objects.count() == 0


def test_existing_user_page_is_not_a_dead_end(client, org):
    connection = make_saml_connection(org)
    stash(client, connection)
    page = html(client.get(reverse("sso:existing")))
    assert "invitation" in page
    assert reverse("sso:choose") in page and reverse("account_login") in page


def test_screens_without_a_pending_identity_say_start_again(client):
    for name in ("sso:choose", "sso:signup"):
        response = client.get(reverse(name))
        assert response.status_code == 400
        assert "Your sign-in took too long" in html(response)
        assert reverse("sso:discover") in html(response)


def test_troubleshooting_page_covers_the_spec(client):
    page = html(client.get(reverse("troubleshooting")))
    for anchor in (
        "unknown-company",
        "idp-errors",
        "clock-skew",
        "problem-with-account",
        "delink",
        "email-alias",
        "invitation",
        "cookies",
        "network",
        "account-removed",
        "support",
    ):
        assert f'id="{anchor}"' in page
    assert "Delink my Google Account" in page and "Linked Accounts" in page
    assert "support@" in page


def test_an_invitation_that_started_the_login_adds_the_program(client, dev_connection):
    from orglogin.programs.invite import create_invitations
    from orglogin.programs.models import Invitation, Program, ProgramMembership

    program = Program.objects.create(
        organization=dev_connection.organization, slug="data-literacy", name="Data Literacy"
    )
    (issued,) = create_invitations(program, ["jane@acme.test"], send=False)
    landing = client.get(issued.link.removeprefix("http://testserver"))
    assert landing.status_code == 200
    assert "?org=acme" in landing.content.decode()

    client.get(client.get(idp_posts_back(start_at_idp(client)))["Location"])
    response = client.post(reverse("sso:signup"), {"first_name": "Jane", "password": PASSWORD})
    assert response.status_code == 302
    user = User.objects.get()
    assert ProgramMembership.objects.filter(program=program, user=user).exists()
    assert Invitation.objects.get().status == "used"


@pytest.mark.parametrize("view", ["sso:start", "sso:link_start"])
def test_a_switched_off_connection_starts_no_login(client, dev_connection, view):
    user = get_user_model().objects.create_user("jane@example.org", "correct horse battery")
    client.force_login(user)  # link_start needs a logged-in owner; start doesn't mind
    Connection.objects.filter(pk=dev_connection.pk).update(enabled=False)
    response = client.post(reverse(view, kwargs={"public_id": dev_connection.public_id}))
    assert response.status_code == 404  # the SSO_NOT_CONFIGURED page, not a redirect
    event = AuditEvent.objects.get(event="sso.failed")
    assert event.detail["check"] == "connection_disabled"
    assert event.reference in html(response)
    assert not client.session.get("orglogin.sso.pending_logins")
