"""The social-login conflict (spec 2.4.2) and the way out (2.4.4): delink, then SSO again."""

import pytest
from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.urls import reverse

from orglogin.audit.models import AuditEvent
from orglogin.core.errors import ErrorCode
from orglogin.organizations.models import Membership
from orglogin.programs.invite import create_invitations
from orglogin.programs.models import Invitation, Program, ProgramMembership
from orglogin.sso import flows, pending
from orglogin.sso.models import OrgIdentity
from tests.flows.sso_support import asserted, session_request
from tests.flows.test_sso_linking_support import (
    PASSWORD,
    User,
    existing_login,
    logged_in_user_id,
    page,
    personal_user,
    reference_in,
    sso_login,
    user_with_google_link,
)

pytestmark = pytest.mark.django_db
CONFLICT = (
    "Sorry there's a problem with your account. Please contact OrgLogin Learning Support to "
    "resolve this issue."
)


def counts():
    return (
        User.objects.count(),
        OrgIdentity.objects.count(),
        Membership.objects.count(),
        EmailAddress.objects.count(),
        SocialAccount.objects.count(),
    )


def test_social_only_account_with_the_org_email_is_a_conflict(connection):
    holder = user_with_google_link("Jane@Acme.test")
    before = counts()
    request = session_request()
    outcome = flows.handle_asserted_identity(request, asserted(connection))
    assert isinstance(outcome, flows.Failure) and outcome.code == ErrorCode.ACCOUNT_CONFLICT
    assert counts() == before
    assert pending.peek_identity(request.session) is None  # nothing to continue with
    event = AuditEvent.objects.get(reference=outcome.reference)
    assert (event.event, event.outcome, event.organization) == (
        "sso.conflict",
        "failure",
        connection.organization,
    )
    assert event.detail["existing_account"] == holder.pk
    assert event.detail["providers"] == ["google"]


def test_conflict_page_text_reference_and_delink_help(client, dev_connection, settings):
    settings.PLATFORM_NAME = "OrgLogin Learning"
    user_with_google_link()
    before = counts()
    response = sso_login(client)
    text = page(response)
    assert response.status_code == 409
    assert CONFLICT in text
    reference = reference_in(text)
    assert AuditEvent.objects.get(reference=reference).event == "sso.conflict"
    assert f'href="{reverse("troubleshooting")}#delink"' in text
    assert counts() == before
    assert logged_in_user_id(client) is None
    # nothing technical leaks to the learner
    assert "email_of_account_without_password" not in text and "google-uid" not in text


def test_conflict_text_follows_the_platform_name(client, connection, settings):
    settings.PLATFORM_NAME = "Acme Academy"
    user_with_google_link()
    outcome = flows.handle_asserted_identity(session_request(), asserted(connection))
    from orglogin.sso.views import render_failure

    text = page(render_failure(session_request(), outcome))
    assert (
        "Sorry there's a problem with your account. Please contact Acme Academy Support to "
        "resolve this issue." in text
    )


def test_conflict_also_stops_a_signup_started_before_the_social_account_appeared(connection):
    request = session_request()
    flows.handle_asserted_identity(request, asserted(connection))
    waiting = pending.peek_identity(request.session)
    user_with_google_link()
    before = counts()
    outcome = flows.jit_signup(
        request,
        waiting,
        flows.SignupDetails(first_name="Jane", last_name="Doe", password=PASSWORD),
    )
    assert isinstance(outcome, flows.Failure) and outcome.code == ErrorCode.ACCOUNT_CONFLICT
    assert counts() == before


def test_an_account_with_a_password_is_offered_the_existing_user_way(connection):
    personal_user("jane@acme.test")
    SocialAccount.objects.create(user=User.objects.get(), provider="google", uid="g")
    request = session_request()
    outcome = flows.handle_asserted_identity(request, asserted(connection))
    assert outcome == flows.NeedsChoice(
        screen=flows.Screen.CHOOSE, organization=connection.organization
    )
    assert not AuditEvent.objects.filter(event="sso.conflict").exists()


def test_an_unverified_email_claim_is_not_looked_up(connection):
    user_with_google_link()
    outcome = flows.handle_asserted_identity(
        session_request(), asserted(connection, email_verified=False)
    )
    assert isinstance(outcome, flows.NeedsChoice)


def test_delink_then_follow_the_invitation_again_links_by_password(client, dev_connection):
    """Spec 2.4.4, the help article's way out, at the view level."""
    user = user_with_google_link()
    program = Program.objects.create(
        organization=dev_connection.organization, slug="data-literacy", name="Data Literacy"
    )
    (issued,) = create_invitations(program, ["jane@acme.test"], send=False)
    link = issued.link.removeprefix("http://testserver")

    # 1. invitation -> SSO -> the conflict; nothing created
    client.get(link)
    response = sso_login(client)
    assert response.status_code == 409 and CONFLICT in page(response)
    assert OrgIdentity.objects.count() == 0 and User.objects.count() == 1

    # 2. log in with the existing (Google) account; delinking Google first needs a password
    client.force_login(user)
    google = f"social:{SocialAccount.objects.get().pk}"
    refused = client.post(reverse("accounts:delink"), {"link": google})
    assert refused.status_code == 409 and SocialAccount.objects.exists()
    new_password = "a passphrase of my own"
    client.post(
        reverse("account_set_password"), {"password1": new_password, "password2": new_password}
    )
    user.refresh_from_db()
    assert user.has_usable_password()
    client.force_login(user)  # setting a password may end the session; log in again
    assert client.post(reverse("accounts:delink"), {"link": google}).status_code == 302
    assert not SocialAccount.objects.exists()
    client.post(reverse("account_logout"))

    # 3. the invitation again -> SSO -> I'm an existing user -> email + password -> linked
    assert client.get(link).status_code == 200
    response = sso_login(client)
    assert response.status_code == 302 and response["Location"] == reverse("sso:choose")
    response = existing_login(client, "jane@acme.test", new_password)
    assert response.status_code == 302
    assert OrgIdentity.objects.get().user == user
    assert ProgramMembership.objects.filter(user=user, program=program).exists()
    assert Invitation.objects.get().status == "used"
    assert logged_in_user_id(client) == user.pk
    assert User.objects.count() == 1
