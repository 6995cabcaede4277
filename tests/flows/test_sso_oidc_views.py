"""The OIDC start and redirect URI endpoints over HTTP, against the tests' OpenID Provider."""

from urllib.parse import urlencode

import pytest
from django.contrib.auth import SESSION_KEY, get_user_model
from django.urls import reverse

from orglogin.sso import pending
from orglogin.sso.models import OrgIdentity
from tests.support.fake_op import FakeOP, make_oidc_connection

pytestmark = pytest.mark.django_db
User = get_user_model()


@pytest.fixture
def op():
    provider = FakeOP().start()
    yield provider
    provider.stop()


@pytest.fixture
def connection(op):
    return make_oidc_connection(op.issuer, op.client_id, op.client_secret)


def callback(client, connection, params):
    path = reverse("sso:oidc_callback", kwargs={"public_id": connection.public_id})
    return client.get(f"{path}?{urlencode(params)}")


def test_oidc_login_reaches_the_flows(client, op, connection):
    response = client.post("/sso/", {"company": "jane@acme.test", "next": "/programs/x/"})
    assert response.status_code == 302 and response["Location"].startswith(op.issuer)
    params = op.authorize(response["Location"])
    response = callback(client, connection, params)
    assert response.status_code == 302 and response["Location"] == reverse("sso:choose")
    waiting = pending.peek_identity(client.session)
    assert waiting.identity.subject == "user-1" and waiting.next_url == "/programs/x/"


def test_linked_oidc_identity_logs_in_and_a_replayed_callback_is_refused(client, op, connection):
    user = User.objects.create_user("jane@acme.test", "correct horse battery staple")
    OrgIdentity.objects.create(connection=connection, subject="user-1", user=user)
    params = op.authorize(client.post("/sso/", {"company": "acme.test"})["Location"])
    response = callback(client, connection, params)
    assert response.status_code == 302 and response["Location"] == reverse("dashboard")
    assert int(client.session[SESSION_KEY]) == user.pk

    replay = callback(client, connection, params)
    assert replay.status_code == 400
    assert "Your sign-in didn" in replay.content.decode()


def test_callback_from_another_browser_is_refused(client, django_user_model, op, connection):
    from django.test import Client

    params = op.authorize(client.post("/sso/", {"company": "acme.test"})["Location"])
    stranger = Client()
    response = callback(stranger, connection, params)
    assert response.status_code == 400 and SESSION_KEY not in stranger.session


@pytest.mark.parametrize("unverified", [False, "true"])
def test_jit_sign_up_is_refused_when_the_provider_does_not_verify_the_email(
    client, op, connection, unverified
):
    from orglogin.audit.models import AuditEvent

    op.account["email_verified"] = unverified  # false, or the string "true" (not JSON true)
    params = op.authorize(client.post("/sso/", {"company": "acme.test"})["Location"])
    assert callback(client, connection, params)["Location"] == reverse("sso:choose")
    users_before = User.objects.count()
    response = client.post(
        reverse("sso:signup"),
        {"first_name": "Jane", "last_name": "Doe", "password": "correct horse battery staple"},
    )
    assert response.status_code == 400
    assert User.objects.count() == users_before and not OrgIdentity.objects.exists()
    failure = AuditEvent.objects.filter(event="sso.failed").latest("created_at")
    assert failure.detail["check"] == "email_unverified"
    page = response.content.decode()
    assert failure.reference in page and "email_unverified" not in page
