"""Linking an org identity to an existing account (spec 2.2): "I'm an existing user" with
password (+ second factor), and a logged-in owner's fresh SSO login + password."""

import base64
import time
import zlib
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import pytest
from allauth.mfa.models import Authenticator
from allauth.mfa.totp.internal.auth import TOTP, format_hotp_value, generate_totp_secret, hotp_value
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import SESSION_KEY
from django.contrib.auth.hashers import Argon2PasswordHasher
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from orglogin.audit.models import AuditEvent
from orglogin.core.errors import ErrorCode
from orglogin.organizations.models import Membership
from orglogin.programs.invite import create_invitations
from orglogin.programs.models import Certificate, Invitation, Program, ProgramMembership
from orglogin.sso import flows, pending
from orglogin.sso.models import OrgIdentity
from tests.flows.sso_support import asserted, session_request
from tests.flows.test_sso_linking_support import (
    LOCKED_OUT,
    PASSWORD,
    PERSONAL,
    WRONG_CREDENTIALS,
    User,
    allauth_login,
    existing_login,
    idp_round_trip,
    logged_in_user_id,
    page,
    personal_user,
    reference_in,
    sso_login,
    stash,
    user_with_google_link,
)

pytestmark = pytest.mark.django_db


def totp_for(user) -> str:
    secret = generate_totp_secret()
    TOTP.activate(user, secret)
    return secret


def code_now(secret: str) -> str:
    return format_hotp_value(hotp_value(secret, int(time.time()) // 30))


def invite(connection, email="jane@acme.test"):
    program = Program.objects.create(
        organization=connection.organization, slug="data-literacy", name="Data Literacy"
    )
    (issued,) = create_invitations(program, [email], send=False)
    return program, issued.link.removeprefix("http://testserver")


# --- the screen --------------------------------------------------------------------------------


def test_existing_user_screen_asks_email_and_password_with_continue(client, connection):
    stash(client, connection)
    response = client.get(reverse("sso:existing"))
    text = page(response)
    assert response.status_code == 200
    assert "I'm an existing OrgLogin Learning user" in text
    assert '<label for="id_email">Email</label>' in text
    assert '<label for="id_password">Password</label>' in text
    assert ">Continue</button>" in text
    assert 'name="csrfmiddlewaretoken"' in text


def test_choice_screen_leads_to_the_existing_user_screen(client, connection):
    stash(client, connection)
    assert reverse("sso:existing") in page(client.get(reverse("sso:choose")))


# --- success -----------------------------------------------------------------------------------


def test_password_links_joins_uses_the_invitation_and_logs_in(client, connection):
    user = personal_user()
    program, link = invite(connection)
    client.get(link)  # the invitation landing keeps the invitation for the SSO round trip
    stash(client, connection)
    session_before = client.session.session_key
    AuditEvent.objects.all().delete()

    response = existing_login(client)

    assert response.status_code == 302 and response["Location"] == reverse("dashboard")
    identity = OrgIdentity.objects.get()
    assert (identity.user, identity.connection, identity.subject) == (user, connection, "jane-0001")
    assert Membership.objects.filter(user=user, organization=connection.organization).exists()
    assert ProgramMembership.objects.filter(user=user, program=program).exists()
    invitation = Invitation.objects.get()
    assert (invitation.status, invitation.used_by) == ("used", user)
    linked = AuditEvent.objects.get(event="sso.linked")
    assert (linked.actor, linked.organization) == (user, connection.organization)
    assert linked.detail["method"] == "password" and linked.detail["program"] == program.slug
    assert len(linked.reference) == 10
    assert logged_in_user_id(client) == user.pk
    assert client.session.session_key != session_before  # rotated (spec 6)
    assert pending.peek_identity(client.session) is None  # single use
    # the org login now reaches the same account, no extra screen (spec 2.3)
    client.post(reverse("account_logout"))
    outcome = flows.handle_asserted_identity(session_request(), asserted(connection))
    assert isinstance(outcome, flows.LoggedIn) and outcome.user == user


def test_certificates_history_and_social_links_are_untouched(client, connection, org):
    user = personal_user()
    SocialAccount.objects.create(user=user, provider="google", uid="g-1")
    other = Program.objects.create(organization=org, slug="earlier", name="Earlier")
    ProgramMembership.objects.create(program=other, user=user)
    Certificate.objects.create(
        user=user,
        course_name="Machine Learning",
        issued_at=timezone.now(),
        verification_code="ML-1",
    )
    stash(client, connection)
    assert existing_login(client).status_code == 302
    assert list(Certificate.objects.filter(user=user).values_list("course_name", flat=True)) == [
        "Machine Learning"
    ]
    assert SocialAccount.objects.filter(user=user, provider="google").exists()
    assert ProgramMembership.objects.filter(user=user, program=other).exists()
    user.refresh_from_db()
    assert user.email == PERSONAL and user.check_password(PASSWORD)


def test_a_failing_step_writes_nothing_and_the_learner_can_retry(client, connection, monkeypatch):
    import orglogin.programs.invite as invite_module

    personal_user()
    _, link = invite(connection)
    client.get(link)
    stash(client, connection)

    def boom(*args, **kwargs):
        raise RuntimeError("program table on fire")

    monkeypatch.setattr(invite_module, "accept_invitation", boom)
    with pytest.raises(RuntimeError):
        existing_login(client)
    assert not OrgIdentity.objects.exists() and not Membership.objects.exists()
    assert not AuditEvent.objects.filter(event="sso.linked").exists()
    assert pending.peek_identity(client.session) is not None
    monkeypatch.undo()
    assert existing_login(client).status_code == 302
    assert OrgIdentity.objects.count() == 1


# --- wrong password, unknown email, rate limits ---------------------------------------------------


def test_wrong_password_gets_the_login_screens_generic_error(client, connection):
    personal_user()
    stash(client, connection)
    response = existing_login(client, password="not my password")
    assert response.status_code == 200
    assert WRONG_CREDENTIALS in page(response)
    assert WRONG_CREDENTIALS in page(allauth_login(Client(), password="not my password"))
    assert not OrgIdentity.objects.exists() and logged_in_user_id(client) is None
    assert pending.peek_identity(client.session) is not None  # still valid for a while
    failed = AuditEvent.objects.filter(event="account.login_failed").first()
    assert failed.detail["login"] == PERSONAL and "not my password" not in str(failed.detail)


def _normalized(response, typed_email):
    import re

    text = response.content.decode().replace(typed_email, "EMAIL")
    return re.sub(r'name="csrfmiddlewaretoken" value="[^"]+"', "CSRF", text)


def test_unknown_email_and_wrong_password_look_the_same(client, connection):
    personal_user()
    stash(client, connection)
    wrong = existing_login(client, password="not my password")
    unknown = existing_login(client, email="nobody@example.net", password="not my password")
    assert wrong.status_code == unknown.status_code == 200
    assert _normalized(wrong, PERSONAL) == _normalized(unknown, "nobody@example.net")


def test_unknown_email_and_wrong_password_both_run_the_hasher(connection, monkeypatch):
    personal_user()
    calls = []
    for name in ("encode", "verify"):
        # The project's hasher subclasses Django's; verify() may run on either instance.
        original = getattr(Argon2PasswordHasher, name)

        def counting(self, *args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(Argon2PasswordHasher, name, counting)

    def attempt(email):
        request = session_request("post")
        flows.handle_asserted_identity(request, asserted(connection))
        waiting = pending.peek_identity(request.session)
        calls.clear()
        outcome = flows.verify_existing_account(
            request, waiting, email=email, password="not my password"
        )
        assert isinstance(outcome, flows.Challenge) and outcome.message == WRONG_CREDENTIALS
        return len(calls)

    wrong, unknown = attempt(PERSONAL), attempt("nobody@example.net")
    assert wrong >= 1 and unknown >= 1 and wrong == unknown


def test_lockout_after_the_limit_even_with_the_right_password(client, connection):
    user = personal_user()
    stash(client, connection)
    for _ in range(5):
        assert WRONG_CREDENTIALS in page(existing_login(client, password="guess guess"))
    response = existing_login(client)  # the right password
    assert LOCKED_OUT in page(response)
    assert not OrgIdentity.objects.exists() and logged_in_user_id(client) is None
    assert AuditEvent.objects.filter(
        event="account.login_failed", detail__reason="rate_limited"
    ).exists()
    # ... and the normal log-in screen is locked for that account too
    assert LOCKED_OUT in page(allauth_login(Client()))
    assert user.pk is not None


def test_failures_on_the_login_screen_count_here(client, connection):
    personal_user()
    for _ in range(3):
        allauth_login(Client(), password="guess guess")
    stash(client, connection)
    for _ in range(2):
        existing_login(client, password="guess guess")
    assert LOCKED_OUT in page(existing_login(client))
    assert not OrgIdentity.objects.exists()


def test_failures_here_count_on_the_login_screen(client, connection):
    personal_user()
    stash(client, connection)
    for _ in range(5):
        existing_login(client, password="guess guess")
    other = Client()
    assert LOCKED_OUT in page(allauth_login(other))
    assert logged_in_user_id(other) is None


def test_failures_from_one_ip_are_limited_across_accounts(client, connection):
    stash(client, connection)
    for n in range(10):
        existing_login(client, email=f"user{n}@example.net", password="guess guess")
    personal_user()
    assert LOCKED_OUT in page(existing_login(client))


# --- second factor -----------------------------------------------------------------------------


def test_mfa_is_asked_and_a_wrong_code_refused(client, connection):
    user = personal_user()
    secret = totp_for(user)
    stash(client, connection)

    response = existing_login(client)
    assert response.status_code == 302 and response["Location"] == reverse("sso:link_mfa")
    assert not OrgIdentity.objects.exists() and logged_in_user_id(client) is None
    form = page(client.get(reverse("sso:link_mfa")))
    assert 'name="code"' in form and ">Continue</button>" in form

    wrong = client.post(reverse("sso:link_mfa"), {"code": "000000"})
    assert wrong.status_code == 200 and "Incorrect code." in page(wrong)
    assert not OrgIdentity.objects.exists() and logged_in_user_id(client) is None

    response = client.post(reverse("sso:link_mfa"), {"code": code_now(secret)})
    assert response.status_code == 302 and response["Location"] == reverse("dashboard")
    assert OrgIdentity.objects.get().user == user
    assert logged_in_user_id(client) == user.pk
    linked = AuditEvent.objects.get(event="sso.linked")
    assert linked.detail["method"] == "password+mfa"


def test_a_recovery_code_works_as_second_factor(client, connection):
    from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes

    user = personal_user()
    totp_for(user)
    codes = RecoveryCodes.activate(user).get_unused_codes()
    stash(client, connection)
    existing_login(client)
    response = client.post(reverse("sso:link_mfa"), {"code": codes[0]})
    assert response.status_code == 302 and OrgIdentity.objects.get().user == user


def test_the_code_step_needs_the_password_step_first(client, connection):
    user = personal_user()
    totp_for(user)
    stash(client, connection)
    response = client.post(reverse("sso:link_mfa"), {"code": "123456"})
    assert response.status_code == 400 and "Your sign-in took too long" in page(response)
    assert not OrgIdentity.objects.exists()


def test_a_password_change_between_the_steps_voids_the_code_step(client, connection):
    user = personal_user()
    secret = totp_for(user)
    stash(client, connection)
    existing_login(client)
    user.set_password("another long passphrase")
    user.save()
    response = client.post(reverse("sso:link_mfa"), {"code": code_now(secret)})
    assert response.status_code == 400 and not OrgIdentity.objects.exists()


def test_wrong_codes_are_rate_limited(client, connection):
    user = personal_user()
    secret = totp_for(user)
    stash(client, connection)
    existing_login(client)
    for _ in range(5):
        client.post(reverse("sso:link_mfa"), {"code": "000000"})
    response = client.post(reverse("sso:link_mfa"), {"code": code_now(secret)})
    assert LOCKED_OUT in page(response)
    assert not OrgIdentity.objects.exists()
    assert Authenticator.objects.filter(user=user).exists()


# --- refusals ------------------------------------------------------------------------------------


def test_identity_already_linked_to_another_account_is_refused(client, connection):
    owner = personal_user("owner@example.net")
    OrgIdentity.objects.create(connection=connection, subject="jane-0001", user=owner)
    personal_user()
    stash(client, connection)
    response = existing_login(client)
    assert response.status_code == 409
    text = page(response)
    assert "Your organization account is already connected" in text
    event = AuditEvent.objects.get(reference=reference_in(text))
    assert event.detail["check"] == "identity_linked_to_another_account"
    assert OrgIdentity.objects.get().user == owner
    assert logged_in_user_id(client) is None


def test_the_unique_constraint_backs_the_check_under_a_race(connection, monkeypatch):
    import orglogin.sso.flows.link_existing as module

    owner = personal_user("owner@example.net")
    user = personal_user()
    request = session_request("post")
    flows.handle_asserted_identity(request, asserted(connection))
    waiting = pending.peek_identity(request.session)
    OrgIdentity.objects.create(connection=connection, subject="jane-0001", user=owner)
    monkeypatch.setattr(module, "_refuse_link", lambda *a, **k: None)  # the check "missed" it
    outcome = module.link_and_log_in(request, waiting, user, connection, method="password")
    assert isinstance(outcome, flows.Failure) and outcome.code == ErrorCode.SSO_IDENTITY_TAKEN
    assert OrgIdentity.objects.get().user == owner
    assert SESSION_KEY not in request.session


def test_an_account_holding_another_identity_of_the_connection_is_refused(client, connection):
    user = personal_user()
    OrgIdentity.objects.create(connection=connection, subject="someone-else", user=user)
    stash(client, connection)
    response = existing_login(client)
    assert response.status_code == 409
    assert OrgIdentity.objects.count() == 1


def test_inactive_account_is_refused(client, connection):
    personal_user(is_active=False)
    stash(client, connection)
    response = existing_login(client)
    assert response.status_code == 403 and "This account is not active" in page(response)
    assert not OrgIdentity.objects.exists() and logged_in_user_id(client) is None


def test_account_with_an_unconfirmed_email_is_not_linked(client, connection, mailoutbox):
    personal_user(verified=False)
    stash(client, connection)
    response = existing_login(client)
    assert response.status_code == 200 and "Confirm this account" in page(response)
    assert not OrgIdentity.objects.exists() and logged_in_user_id(client) is None
    assert [m.to for m in mailoutbox] == [[PERSONAL]]


def test_post_without_csrf_token_is_refused(connection):
    personal_user()
    client = Client(enforce_csrf_checks=True)
    stash(client, connection)
    assert existing_login(client).status_code == 403
    assert client.post(reverse("sso:link_mfa"), {"code": "1"}).status_code == 403
    assert not OrgIdentity.objects.exists() and logged_in_user_id(client) is None


def test_an_expired_pending_login_must_be_redone(client, connection, monkeypatch):
    personal_user()
    stash(client, connection)
    later = time.time() + pending.PENDING_IDENTITY_MAX_AGE + 1
    monkeypatch.setattr(pending.time, "time", lambda: later)
    response = existing_login(client)
    assert response.status_code == 400 and "Your sign-in took too long" in page(response)
    assert not OrgIdentity.objects.exists() and logged_in_user_id(client) is None


def test_later_steps_do_not_extend_the_time_limit(client, connection, monkeypatch):
    user = personal_user()
    totp_for(user)
    stash(client, connection)
    created = pending.peek_identity(client.session).created_at
    existing_login(client)
    assert pending.peek_identity(client.session).created_at == created


def test_the_pending_identity_links_once(client, connection):
    personal_user()
    stash(client, connection)
    assert existing_login(client).status_code == 302
    client.post(reverse("account_logout"))
    again = existing_login(client)
    assert again.status_code == 400 and OrgIdentity.objects.count() == 1


def test_an_email_match_alone_links_nothing(client, connection):
    personal_user("jane@acme.test")  # same email as asserted
    stash(client, connection)
    client.get(reverse("sso:existing"))
    assert not OrgIdentity.objects.exists()
    # the signup attempt doesn't link it either: it shows the existing-user way
    response = client.post(reverse("sso:signup"), {"first_name": "Jane", "password": PASSWORD})
    assert response.status_code == 409 and not OrgIdentity.objects.exists()


# --- a logged-in owner links (spec 2.2.1) -----------------------------------------------------


def test_invitation_landing_offers_the_link_to_a_logged_in_learner(client, dev_connection):
    user = personal_user()
    _, link = invite(dev_connection)
    client.force_login(user)
    text = page(client.get(link))
    assert f"You are logged in as <strong>{PERSONAL}</strong>" in text
    assert ">Log Out</button>" in text
    assert "Link your Acme Corp account to this account" in text
    assert reverse("sso:link_start", kwargs={"public_id": dev_connection.public_id}) in text


def test_logged_in_learner_links_after_fresh_sso_and_password(client, dev_connection):
    user = personal_user()
    program, link = invite(dev_connection)
    client.force_login(user)
    client.get(link)
    start = client.post(reverse("sso:link_start", kwargs={"public_id": dev_connection.public_id}))
    # The IdP is told to authenticate again, not to answer from its own session.
    saml_request = parse_qs(urlsplit(start["Location"]).query)["SAMLRequest"][0]
    assert b'ForceAuthn="true"' in zlib.decompress(base64.b64decode(saml_request), -15)
    response = client.get(idp_round_trip(client, start))
    assert response.status_code == 302 and response["Location"] == reverse("sso:link_confirm")
    assert not OrgIdentity.objects.exists()
    text = page(client.get(reverse("sso:link_confirm")))
    assert PERSONAL in text and "jane@acme.test" in text and ">Continue</button>" in text

    wrong = client.post(reverse("sso:link_confirm"), {"password": "not my password"})
    assert wrong.status_code == 200 and "Incorrect password." in page(wrong)
    assert not OrgIdentity.objects.exists()

    session_before = client.session.session_key
    response = client.post(reverse("sso:link_confirm"), {"password": PASSWORD})
    assert response.status_code == 302
    assert OrgIdentity.objects.get().user == user
    assert ProgramMembership.objects.filter(user=user, program=program).exists()
    assert Invitation.objects.get().status == "used"
    assert logged_in_user_id(client) == user.pk
    assert client.session.session_key != session_before
    assert AuditEvent.objects.get(event="sso.linked").detail["method"] == "current_password"


def test_logged_in_link_asks_the_second_factor_too(client, dev_connection):
    user = personal_user()
    secret = totp_for(user)
    client.force_login(user)
    start = client.post(reverse("sso:link_start", kwargs={"public_id": dev_connection.public_id}))
    client.get(idp_round_trip(client, start))
    response = client.post(reverse("sso:link_confirm"), {"password": PASSWORD})
    assert response["Location"] == reverse("sso:link_mfa")
    assert not OrgIdentity.objects.exists()
    client.post(reverse("sso:link_mfa"), {"code": code_now(secret)})
    assert OrgIdentity.objects.get().user == user
    assert AuditEvent.objects.get(event="sso.linked").detail["method"] == "current_password+mfa"


def test_logged_in_link_refuses_an_identity_linked_to_another_account(client, dev_connection):
    from orglogin.sso.protocols.devidp import persistent_name_id

    owner = personal_user("owner@example.net")
    OrgIdentity.objects.create(
        connection=dev_connection, subject=persistent_name_id("jane@acme.test"), user=owner
    )
    user = personal_user()
    client.force_login(user)
    start = client.post(reverse("sso:link_start", kwargs={"public_id": dev_connection.public_id}))
    response = client.get(idp_round_trip(client, start))
    assert response.status_code == 409
    assert "Your organization account is already connected" in page(response)
    assert logged_in_user_id(client) == user.pk  # not switched to the identity's owner
    assert OrgIdentity.objects.get().user == owner


def test_social_only_account_is_told_to_set_a_password_first(client, dev_connection):
    user = user_with_google_link(PERSONAL)
    _, link = invite(dev_connection)
    client.force_login(user)
    text = page(client.get(link))
    assert "set a password" in text and reverse("account_set_password") in text
    assert reverse("sso:link_start", kwargs={"public_id": dev_connection.public_id}) not in text
    response = client.post(
        reverse("sso:link_start", kwargs={"public_id": dev_connection.public_id})
    )
    assert response.status_code == 409 and "Set a password first" in page(response)


def test_link_intent_for_another_account_than_the_logged_in_one_is_refused(connection):
    intended = personal_user()
    other = personal_user("other@example.net")
    request = session_request(user=other)
    outcome = flows.handle_asserted_identity(
        request, asserted(connection), intent={pending.LINK_TO: intended.pk}
    )
    assert isinstance(outcome, flows.Failure)
    assert outcome.code == ErrorCode.SSO_SESSION_MISMATCH
    assert not OrgIdentity.objects.exists()


def test_link_start_and_confirm_need_csrf_and_login(dev_connection):
    user = personal_user()
    client = Client(enforce_csrf_checks=True)
    client.force_login(user)
    url = reverse("sso:link_start", kwargs={"public_id": dev_connection.public_id})
    assert client.post(url).status_code == 403
    assert client.post(reverse("sso:link_confirm"), {"password": PASSWORD}).status_code == 403
    anonymous = Client()
    assert anonymous.post(url)["Location"].startswith(reverse("account_login"))


# --- the fresh login must be proven: AuthnInstant / auth_time (spec 2.2.1) ----------------------

REAUTH_TITLE = "Your organization didn't ask for your password again"


def link_start_url(connection) -> str:
    return reverse("sso:link_start", kwargs={"public_id": connection.public_id})


def assert_refused_for_a_stale_login(client, response, user, check):
    """Refused with a reference that leads to the audit event; nothing linked or stashed."""
    text = page(response)
    assert response.status_code == 400
    assert REAUTH_TITLE in text and check not in text
    failure = AuditEvent.objects.filter(event="sso.failed").latest("created_at")
    assert failure.reference == reference_in(text)
    assert (failure.detail["code"], failure.detail["check"]) == ("sso_reauth_required", check)
    assert failure.actor == user
    assert not OrgIdentity.objects.exists()
    assert pending.peek_identity(client.session) is None
    assert client.get(reverse("sso:link_confirm")).status_code == 400  # nothing to confirm
    assert logged_in_user_id(client) == user.pk


def test_logged_in_link_refuses_an_idp_answer_from_an_earlier_session(client, dev_connection):
    user = personal_user()
    program, link = invite(dev_connection)
    client.force_login(user)
    client.get(link)
    start = client.post(link_start_url(dev_connection))
    # The IdP ignored ForceAuthn: its answer says the learner authenticated half an hour ago.
    stale = timezone.now() - timedelta(minutes=30)
    response = client.get(idp_round_trip(client, start, authn_instant=stale))

    assert_refused_for_a_stale_login(client, response, user, "authn_instant")
    assert Invitation.objects.get().status == "pending"
    assert not ProgramMembership.objects.filter(user=user, program=program).exists()
    # Trying again with a fresh login works.
    start = client.post(link_start_url(dev_connection))
    response = client.get(idp_round_trip(client, start))
    assert response["Location"] == reverse("sso:link_confirm")


def test_logged_in_link_refuses_an_answer_without_authn_statement(
    client, dev_connection, monkeypatch
):
    from orglogin.sso.protocols import saml_build

    user = personal_user()
    client.force_login(user)
    start = client.post(link_start_url(dev_connection))
    build = saml_build.build_response

    def without_statement(spec):
        spec.authn_instant = None
        return build(spec)

    monkeypatch.setattr("orglogin.sso.protocols.devidp.build_response", without_statement)
    response = client.get(idp_round_trip(client, start))
    assert_refused_for_a_stale_login(client, response, user, "authn_instant")


def test_a_pending_link_from_before_the_fresh_flag_is_still_checked(client, dev_connection):
    user = personal_user()
    client.force_login(user)
    start = client.post(link_start_url(dev_connection))
    session = client.session
    logins = session["orglogin.sso.pending_logins"]
    for entry in logins.values():
        del entry["fresh"]  # as written before the flag existed; the link intent remains
    session["orglogin.sso.pending_logins"] = logins
    session.save()
    stale = timezone.now() - timedelta(minutes=30)
    response = client.get(idp_round_trip(client, start, authn_instant=stale))
    assert_refused_for_a_stale_login(client, response, user, "authn_instant")


def test_an_ordinary_sso_login_does_not_need_a_fresh_idp_login(client, dev_connection):
    # Only the owner link asks for ForceAuthn; a returning learner may use the IdP's session.
    start = client.post(reverse("sso:discover"), {"company": "acme.test"})
    stale = timezone.now() - timedelta(hours=3)
    response = client.get(idp_round_trip(client, start, authn_instant=stale))
    assert response.status_code == 302 and response["Location"] == reverse("sso:choose")


@pytest.fixture
def op():
    from tests.support.fake_op import FakeOP

    provider = FakeOP().start()
    yield provider
    provider.stop()


@pytest.fixture
def oidc_connection(op):
    from tests.support.fake_op import make_oidc_connection

    return make_oidc_connection(op.issuer, op.client_id, op.client_secret)


def oidc_link_round_trip(client, op, connection, *, auth_time):
    start = client.post(link_start_url(connection))
    assert start.status_code == 302
    query = parse_qs(urlsplit(start["Location"]).query)
    assert (query["prompt"], query["max_age"]) == (["login"], ["0"])
    op.claims_override = {"auth_time": auth_time}
    params = op.authorize(start["Location"])
    path = reverse("sso:oidc_callback", kwargs={"public_id": connection.public_id})
    return client.get(path, params)


@pytest.mark.parametrize("auth_time", [None, "old"], ids=["missing", "old"])
def test_oidc_link_refuses_a_token_without_a_fresh_auth_time(
    client, op, oidc_connection, auth_time
):
    user = personal_user()
    client.force_login(user)
    if auth_time == "old":
        auth_time = int(time.time()) - 3600
    response = oidc_link_round_trip(client, op, oidc_connection, auth_time=auth_time)
    assert_refused_for_a_stale_login(client, response, user, "auth_time")


def test_oidc_link_with_a_fresh_auth_time_asks_the_password(client, op, oidc_connection):
    user = personal_user()
    client.force_login(user)
    response = oidc_link_round_trip(client, op, oidc_connection, auth_time=int(time.time()))
    assert response.status_code == 302 and response["Location"] == reverse("sso:link_confirm")
    client.post(reverse("sso:link_confirm"), {"password": PASSWORD})
    assert OrgIdentity.objects.get().user == user


def test_an_oidc_pending_link_from_before_the_field_is_still_checked(client, op, oidc_connection):
    user = personal_user()
    client.force_login(user)
    start = client.post(link_start_url(oidc_connection))
    session = client.session
    entries = session["orglogin.sso.pending_oidc"]
    for entry in entries.values():
        del entry["authorization"]["require_auth_after"]  # an older session's dict
    session["orglogin.sso.pending_oidc"] = entries
    session.save()
    op.claims_override = {"auth_time": int(time.time()) - 3600}
    params = op.authorize(start["Location"])
    path = reverse("sso:oidc_callback", kwargs={"public_id": oidc_connection.public_id})
    response = client.get(path, params)
    assert_refused_for_a_stale_login(client, response, user, "auth_time")


# --- org links in Linked Accounts (spec 2.4.3) ------------------------------------------------


def test_an_org_link_is_listed_and_delinked_with_an_audit(client, connection):
    user = personal_user()
    identity = OrgIdentity.objects.create(connection=connection, subject="jane-0001", user=user)
    client.force_login(user)
    assert ">Delink my Acme Corp Account</button>" in page(client.get(reverse("accounts:settings")))
    client.post(reverse("accounts:delink"), {"link": f"org:{identity.pk}"})
    assert not OrgIdentity.objects.exists()
    event = AuditEvent.objects.get(event="sso.delinked")
    assert (event.actor, event.organization) == (user, connection.organization)


def test_the_last_org_link_of_an_account_without_password_stays(client, connection):
    user = personal_user(password=None)
    identity = OrgIdentity.objects.create(connection=connection, subject="jane-0001", user=user)
    client.force_login(user)
    response = client.post(reverse("accounts:delink"), {"link": f"org:{identity.pk}"})
    assert response.status_code == 409 and OrgIdentity.objects.exists()
    assert AuditEvent.objects.filter(event="account.delink_refused").exists()


def test_sso_login_still_works_end_to_end_after_linking(client, dev_connection):
    user = personal_user()
    response = sso_login(client)
    assert response["Location"] == reverse("sso:choose")
    assert existing_login(client).status_code == 302
    client.post(reverse("account_logout"))
    response = sso_login(client)
    assert response.status_code == 302 and response["Location"] == reverse("dashboard")
    assert logged_in_user_id(client) == user.pk
    assert User.objects.count() == 1
