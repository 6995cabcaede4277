"""SSO flows without HTTP: an AssertedIdentity built directly, a request with a session."""

import importlib
import time

import pytest
from allauth.account.models import EmailAddress
from django.contrib.auth import SESSION_KEY, get_user_model

from orglogin.audit.models import AuditEvent
from orglogin.core.errors import ErrorCode
from orglogin.organizations.models import Membership
from orglogin.sso import flows, pending
from orglogin.sso.models import OrgIdentity
from tests.flows.sso_support import (
    asserted,
    make_org,
    make_saml_connection,
    session_request,
)

pytestmark = pytest.mark.django_db
User = get_user_model()
PASSWORD = "correct horse battery staple"


@pytest.fixture
def connection():
    return make_saml_connection(make_org())


def details(**overrides):
    values = {
        "first_name": "Jane",
        "last_name": "Doe",
        "password": PASSWORD,
        "alternative_email": "jane.personal@example.net",
    }
    values.update(overrides)
    return flows.SignupDetails(**values)


def counts():
    return (
        User.objects.count(),
        OrgIdentity.objects.count(),
        Membership.objects.count(),
        EmailAddress.objects.count(),
    )


def signup_through_flows(request, identity, **overrides):
    outcome = flows.handle_asserted_identity(request, identity)
    assert isinstance(outcome, flows.NeedsChoice)
    waiting = pending.peek_identity(request.session)
    return flows.jit_signup(request, waiting, details(**overrides))


# --- returning learner ---------------------------------------------------------------------


def test_linked_identity_logs_straight_in_and_updates_the_link(connection):
    user = User.objects.create_user("jane@acme.test", PASSWORD)
    link = OrgIdentity.objects.create(
        connection=connection, subject="jane-0001", user=user, email="old@acme.test"
    )
    request = session_request()
    key_before = request.session.session_key
    AuditEvent.objects.all().delete()

    outcome = flows.handle_asserted_identity(
        request, asserted(connection, email="jane@acme.test"), next_url="/dashboard/?tab=2"
    )

    assert outcome == flows.LoggedIn(user=user, redirect_to="/dashboard/?tab=2")
    assert int(request.session[SESSION_KEY]) == user.pk
    assert request.session.session_key != key_before  # the session rotated (spec 6)
    link.refresh_from_db()
    assert link.last_login_at is not None and link.email == "jane@acme.test"
    event = AuditEvent.objects.get()
    assert (event.event, event.actor, event.organization) == (
        "sso.login",
        user,
        connection.organization,
    )


def test_linked_identity_logs_in_its_owner_even_when_emails_differ(connection):
    owner = User.objects.create_user("owner@elsewhere.example", PASSWORD)
    User.objects.create_user("jane@acme.test", PASSWORD)  # same email as asserted: irrelevant
    OrgIdentity.objects.create(connection=connection, subject="jane-0001", user=owner)
    outcome = flows.handle_asserted_identity(session_request(), asserted(connection))
    assert isinstance(outcome, flows.LoggedIn) and outcome.user == owner


def test_inactive_owner_is_refused_with_a_reference(connection):
    user = User.objects.create_user("jane@acme.test", PASSWORD, is_active=False)
    OrgIdentity.objects.create(connection=connection, subject="jane-0001", user=user)
    request = session_request()
    outcome = flows.handle_asserted_identity(request, asserted(connection))
    assert isinstance(outcome, flows.Failure) and outcome.code == ErrorCode.ACCOUNT_INACTIVE
    assert AuditEvent.objects.get(reference=outcome.reference).detail["check"] == "account_inactive"
    assert SESSION_KEY not in request.session


@pytest.mark.parametrize(
    "target",
    [
        "https://evil.example/",
        "//evil.example/x",
        "javascript:alert(1)",
        "http://testserver.evil.example/",
    ],
)
def test_off_site_next_is_replaced_by_the_dashboard(connection, target):
    user = User.objects.create_user("jane@acme.test", PASSWORD)
    OrgIdentity.objects.create(connection=connection, subject="jane-0001", user=user)
    outcome = flows.handle_asserted_identity(
        session_request(), asserted(connection), next_url=target
    )
    assert outcome.redirect_to == "/dashboard/"


# --- unknown identity ----------------------------------------------------------------------


def test_unknown_identity_is_stashed_and_nothing_is_created(connection):
    User.objects.create_user("jane@acme.test", PASSWORD)  # same email: still never linked
    before = counts()
    request = session_request()
    outcome = flows.handle_asserted_identity(request, asserted(connection), next_url="/x/")
    assert outcome == flows.NeedsChoice(
        screen=flows.Screen.CHOOSE, organization=connection.organization
    )
    assert counts() == before
    waiting = pending.peek_identity(request.session)
    assert waiting.identity == asserted(connection) and waiting.next_url == "/x/"
    assert SESSION_KEY not in request.session


def test_pending_identity_expires(connection, monkeypatch):
    request = session_request()
    flows.handle_asserted_identity(request, asserted(connection))
    later = time.time() + pending.PENDING_IDENTITY_MAX_AGE + 1
    monkeypatch.setattr(pending.time, "time", lambda: later)
    assert pending.peek_identity(request.session) is None


# --- JIT sign-up ---------------------------------------------------------------------------


def test_jit_signup_creates_exactly_user_identity_membership_email_and_audit(connection):
    request = session_request()
    AuditEvent.objects.all().delete()
    key_before = request.session.session_key

    outcome = signup_through_flows(
        request, asserted(connection), alternative_email="Jane@Home.example"
    )

    assert isinstance(outcome, flows.LoggedIn) and outcome.created
    assert counts() == (1, 1, 1, 1)
    user = User.objects.get()
    assert (user.email, user.first_name, user.last_name) == ("jane@acme.test", "Jane", "Doe")
    assert user.alternative_email == "jane@home.example"
    assert user.check_password(PASSWORD)
    address = EmailAddress.objects.get()
    assert (address.user, address.email, address.verified, address.primary) == (
        user,
        "jane@acme.test",
        True,
        True,
    )
    link = OrgIdentity.objects.get()
    assert (link.connection, link.subject, link.user) == (connection, "jane-0001", user)
    assert Membership.objects.get().organization == connection.organization
    event = AuditEvent.objects.get()
    assert (event.event, event.actor, event.organization) == (
        "sso.jit_signup",
        user,
        connection.organization,
    )
    assert int(request.session[SESSION_KEY]) == user.pk
    assert request.session.session_key != key_before
    assert pending.peek_identity(request.session) is None  # single use


def test_email_outside_the_orgs_domains_is_not_marked_verified(connection):
    outcome = signup_through_flows(session_request(), asserted(connection, email="jane@gmail.test"))
    assert isinstance(outcome, flows.LoggedIn)
    assert not EmailAddress.objects.get().verified


def test_signup_with_an_email_already_used_creates_nothing(connection):
    User.objects.create_user("Jane@ACME.test", PASSWORD)
    before = counts()
    request = session_request()
    outcome = signup_through_flows(request, asserted(connection))
    assert isinstance(outcome, flows.NeedsChoice) and outcome.screen == flows.Screen.EMAIL_IN_USE
    assert counts() == before
    assert AuditEvent.objects.get(reference=outcome.reference).event == "sso.conflict"
    assert SESSION_KEY not in request.session
    assert pending.peek_identity(request.session) is not None  # can still choose "existing"


def test_signup_with_an_email_used_as_a_secondary_address_creates_nothing(connection):
    other = User.objects.create_user("someone@example.net", PASSWORD)
    # Verified: an unverified claim is dropped instead (tests/flows/test_preaccount_hijack.py).
    EmailAddress.objects.create(user=other, email="jane@acme.test", verified=True)
    before = counts()
    outcome = signup_through_flows(session_request(), asserted(connection))
    assert isinstance(outcome, flows.NeedsChoice) and counts() == before


def test_jit_disabled_is_refused(connection):
    org = connection.organization
    org.jit_signup_enabled = False
    org.save()
    before = counts()
    outcome = signup_through_flows(session_request(), asserted(connection))
    assert isinstance(outcome, flows.Failure) and outcome.code == ErrorCode.SSO_JIT_DISABLED
    assert counts() == before
    assert AuditEvent.objects.get(reference=outcome.reference).detail["check"] == "jit_disabled"


def test_identity_linked_meanwhile_logs_in_its_owner(connection):
    request = session_request()
    flows.handle_asserted_identity(request, asserted(connection))
    waiting = pending.peek_identity(request.session)
    owner = User.objects.create_user("first@acme.test", PASSWORD)
    OrgIdentity.objects.create(connection=connection, subject="jane-0001", user=owner)
    outcome = flows.jit_signup(request, waiting, details())
    assert isinstance(outcome, flows.LoggedIn) and outcome.user == owner and not outcome.created
    assert User.objects.count() == 1


def test_signup_keeps_the_pending_next_when_on_site(connection):
    request = session_request()
    flows.handle_asserted_identity(request, asserted(connection), next_url="/programs/x/")
    outcome = flows.jit_signup(request, pending.peek_identity(request.session), details())
    assert outcome.redirect_to == "/programs/x/"


def test_a_failed_signup_writes_nothing_partial(connection, monkeypatch):
    # Fail the last write of the sign-up transaction (the membership, via create_link).
    module = importlib.import_module("orglogin.organizations.actions")

    def boom(*args, **kwargs):
        raise RuntimeError("membership table on fire")

    monkeypatch.setattr(module, "ensure_membership", boom)
    request = session_request()
    with pytest.raises(RuntimeError):
        signup_through_flows(request, asserted(connection))
    assert counts() == (0, 0, 0, 0)
    assert pending.peek_identity(request.session) is not None  # can try again


# --- pending SP-initiated login ------------------------------------------------------------


def test_pending_login_is_single_use_and_expires(monkeypatch):
    request = session_request()
    key = pending.new_key()
    pending.remember_login(
        request.session, key=key, connection_id=7, request_id="ONELOGIN_1", next_url="/x/"
    )
    login = pending.pop_login(request.session, key)
    assert (login.connection_id, login.request_id, login.next_url, login.expired) == (
        7,
        "ONELOGIN_1",
        "/x/",
        False,
    )
    assert pending.pop_login(request.session, key) is None

    key = pending.new_key()
    pending.remember_login(request.session, key=key, connection_id=7, request_id="ONELOGIN_2")
    later = time.time() + pending.PENDING_LOGIN_MAX_AGE + 1
    monkeypatch.setattr(pending.time, "time", lambda: later)
    assert pending.pop_login(request.session, key).expired


def test_pending_logins_are_capped():
    request = session_request()
    keys = [pending.new_key() for _ in range(pending.MAX_PENDING_LOGINS + 2)]
    for key in keys:
        pending.remember_login(request.session, key=key, connection_id=1, request_id=key)
    assert pending.pop_login(request.session, keys[0]) is None
    assert pending.pop_login(request.session, keys[-1]) is not None


def test_acs_handoff_is_single_use():
    key = pending.park_acs_post(connection_id=3, saml_response="PHNhbWw+", relay_state="rs")
    parked = pending.take_acs_post(key)
    assert (parked.connection_id, parked.unverified_saml_response, parked.relay_state) == (
        3,
        "PHNhbWw+",
        "rs",
    )
    assert pending.take_acs_post(key) is None
    assert pending.take_acs_post("nonsense") is None


def test_unverified_email_claim_cannot_sign_up(connection):
    before = counts()
    outcome = signup_through_flows(session_request(), asserted(connection, email_verified=False))
    assert isinstance(outcome, flows.Failure) and outcome.code == ErrorCode.SSO_RESPONSE_INVALID
    assert AuditEvent.objects.get(reference=outcome.reference).detail["check"] == "email_unverified"
    assert counts() == before


def test_returning_login_does_not_need_a_verified_email(connection):
    user = User.objects.create_user("jane@acme.test", PASSWORD)
    OrgIdentity.objects.create(connection=connection, subject="jane-0001", user=user)
    outcome = flows.handle_asserted_identity(
        session_request(), asserted(connection, email_verified=False)
    )
    assert isinstance(outcome, flows.LoggedIn) and outcome.user == user
