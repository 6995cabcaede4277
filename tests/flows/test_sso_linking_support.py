"""Helpers (no tests) shared by the linking, conflict and pre-account hijacking tests."""

from __future__ import annotations

import html as htmllib
import re
from urllib.parse import urlsplit

from allauth.account.models import EmailAddress
from allauth.socialaccount.models import SocialAccount
from django.contrib.auth import SESSION_KEY, get_user_model
from django.test import Client
from django.urls import reverse

from orglogin.sso import pending
from tests.flows.sso_support import asserted

User = get_user_model()
PASSWORD = "correct horse battery staple"
PERSONAL = "jane.personal@example.net"
WRONG_CREDENTIALS = "The email address and/or password you specified are not correct."
LOCKED_OUT = "Too many failed login attempts. Try again later."


def personal_user(email: str = PERSONAL, password: str | None = PASSWORD, *, verified=True, **kw):
    """A personal account the way allauth makes one: login email recorded as an address."""
    user = User.objects.create_user(email, password, **kw)
    EmailAddress.objects.create(user=user, email=email, primary=True, verified=verified)
    return user


def user_with_google_link(email: str = "jane@acme.test", password: str | None = None):
    user = personal_user(email, password)
    SocialAccount.objects.create(
        user=user, provider="google", uid="google-uid-1", extra_data={"email": email}
    )
    return user


def stash(client, connection, **fields):
    session = client.session
    pending.stash_identity(session, asserted(connection, **fields))
    session.save()


def page(response) -> str:
    """The response as a learner reads it (entities decoded)."""
    return htmllib.unescape(response.content.decode())


def reference_in(text: str) -> str:
    return re.search(r'data-testid="reference">([A-Z0-9]+)<', text).group(1)


def logged_in_user_id(client):
    value = client.session.get(SESSION_KEY)
    return int(value) if value is not None else None


def existing_login(client, email=PERSONAL, password=PASSWORD):
    return client.post(reverse("sso:existing"), {"email": email, "password": password})


def allauth_login(client, email=PERSONAL, password=PASSWORD):
    return client.post(reverse("account_login"), {"login": email, "password": password})


# --- a SAML round trip through the development IdP's signed responses -----------------------


def idp_round_trip(client, start_response, *, email="jane@acme.test", authn_instant=None) -> str:
    """Follow a redirect to the dev IdP, answer it with a signed response for `email` through a
    cookie-less cross-site POST, and return the same-site continuation URL. `authn_instant`:
    when the IdP says the learner authenticated (default: now, a fresh login)."""
    from orglogin.sso.protocols.devidp import build_signed_response, parse_authn_request

    assert start_response.status_code == 302, start_response.content[:500]
    authn = parse_authn_request(urlsplit(start_response["Location"]).query)
    saml = build_signed_response(
        authn.connection,
        email=email,
        given_name="Jane",
        family_name="Doe",
        in_response_to=authn.request_id,
        authn_instant=authn_instant,
    )
    acs = reverse("sso:saml_acs", kwargs={"public_id": authn.connection.public_id})
    response = Client().post(acs, {"SAMLResponse": saml, "RelayState": authn.relay_state})
    assert response.status_code == 303
    return response["Location"]


def sso_login(client, *, company="acme.test", email="jane@acme.test"):
    """Log in with your organization -> IdP -> back; returns the response after the ACS."""
    start = client.post(reverse("sso:discover"), {"company": company})
    return client.get(idp_round_trip(client, start, email=email))
