"""Shared steps for the SSO journeys against real peers (SimpleSAMLphp, node oidc-provider).

Every step drives the browser the way a learner would: by the accessible names and the
spec's quoted texts (PRODUCT.md 2.1-2.4), never by CSS classes, and waits for a URL or a
text instead of sleeping. Set-up goes through the same actions the operator's CLI uses.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from django.urls import reverse

from tests.support.peers import require_peer
from tests.support.simplesamlphp import IdPUser, RemoteSP, SimpleSAMLphpIdP
from tests.support.tasks import run_task_queue  # noqa: F401 (journeys import it from here)

PLATFORM = "OrgLogin Learning"
PASSWORD = "correct horse battery staple 42"
NEW_USER = "I'm a new user"
EXISTING_USER = f"I'm an existing {PLATFORM} user"
CONFLICT_TEXT = (
    f"Sorry there's a problem with your account. Please contact {PLATFORM} Support "
    "to resolve this issue."
)
ORG_LOGIN_LINK = "Log in with your organization"
COMPANY_FIELD = "Your company's URL"


# --- matching -------------------------------------------------------------------------------
def label(text: str) -> re.Pattern[str]:
    """A field's label exactly, with or without a trailing colon, required mark or
    "(optional)"."""
    return re.compile(rf"^\s*{re.escape(text)}\s*:?\s*\*?\s*(\(optional\))?\s*$", re.IGNORECASE)


def dashboard_url() -> re.Pattern[str]:
    return re.compile(re.escape(reverse("dashboard")) + r"(\?.*)?$")


def url_of(base: str) -> re.Pattern[str]:
    """Any URL under `base` (an IdP's or the app's origin)."""
    return re.compile("^" + re.escape(base.rstrip("/")) + "(/.*)?$")


# --- SimpleSAMLphp --------------------------------------------------------------------------
def start_signing_simplesamlphp(workdir: Path) -> Iterator[SimpleSAMLphpIdP]:
    """Body of a (module-scoped) fixture: a private SimpleSAMLphp, skipped when missing."""
    from tests.support import system

    if not system.simplesamlphp_ok():
        require_peer(system.missing_reason(system.SIMPLESAMLPHP_NEED))
    idp = SimpleSAMLphpIdP(workdir, want_signed_requests=True).start()
    try:
        yield idp
    finally:
        idp.stop()


def reset_simplesamlphp(idp: SimpleSAMLphpIdP, users: list[IdPUser] | None = None) -> None:
    from tests.support.simplesamlphp import default_users

    idp.set_users(users or default_users())
    idp.set_remote_sps([])


def remote_sp_for(connection, *, signed_requests: bool = True) -> RemoteSP:
    """Our SP as SimpleSAMLphp's `saml20-sp-remote` entry: entity ID, ACS, certificate."""
    from orglogin.sso.protocols.saml import sp_endpoints
    from tests.support.certs import KeyPair

    endpoints = sp_endpoints(connection)
    cert_b64 = KeyPair("", connection.sp_certificate).certificate_b64
    return RemoteSP(
        entity_id=endpoints.entity_id,
        acs_url=endpoints.acs_url,
        certificate_b64=cert_b64,
        validate_authnrequest=signed_requests,
        sign_assertion=True,
        sign_response=True,
    )


def add_org(slug: str = "acme", name: str = "Acme Corp", domains=("acme.test",)):
    """`orglogin org add SLUG --name NAME --domain D` (domains count as verified)."""
    from django.core.management import call_command

    from orglogin.organizations.models import Organization

    args = ["org", "add", slug, "--name", name]
    for domain in domains:
        args += ["--domain", domain]
    call_command(*args)
    return Organization.objects.get(slug=slug)


def add_saml_connection(
    org, idp: SimpleSAMLphpIdP, *, name: str = "Acme SimpleSAMLphp", idp_initiated=False
):
    """`orglogin sso add-saml SLUG --metadata-url U` against the running SimpleSAMLphp, then
    register our SP with it (as an admin pastes the SP details into the IdP)."""
    from django.core.management import call_command
    from django.test import override_settings

    args = ["sso", "add-saml", org.slug, "--metadata-url", idp.metadata_url, "--name", name]
    if idp_initiated:
        args.append("--allow-idp-initiated")
    # The peer listens on 127.0.0.1: the metadata fetcher refuses private hosts unless the
    # operator allows them (as in development). Only for this command, not later tests.
    with override_settings(SAML_METADATA_ALLOW_PRIVATE=True):
        call_command(*args)
    connection = org.connections.get(name=name)
    assert connection.idp_entity_id == idp.entity_id
    assert connection.idp_wants_signed_requests, "SimpleSAMLphp's metadata asks for signed requests"
    idp.add_remote_sp(remote_sp_for(connection))
    return connection


def sign_in_at_simplesamlphp(page, idp: SimpleSAMLphpIdP, user: IdPUser, *, password=None):
    """On SimpleSAMLphp's username/password form: type and submit (not waiting for more)."""
    page.wait_for_url(url_of(idp.base_url))
    page.locator("input[name=username]").fill(user.username)
    page.locator("input[name=password]").fill(password or user.password)
    page.locator("form[name=f]").get_by_role("button").first.click()


# --- OIDC -----------------------------------------------------------------------------------
def add_oidc_connection(org, issuer: str, client_id: str, client_secret: str, *, name: str):
    """`orglogin sso add-oidc SLUG --issuer URL --client-id ID --client-secret S --name NAME`
    (the provider's discovery document is fetched and must name this issuer)."""
    from django.core.management import call_command

    call_command(
        "sso",
        "add-oidc",
        org.slug,
        "--issuer",
        issuer,
        "--client-id",
        client_id,
        "--client-secret",
        client_secret,
        "--name",
        name,
    )
    connection = org.connections.get(name=name)
    assert (connection.protocol, connection.oidc_issuer) == ("oidc", issuer)
    return connection


def sign_in_at_oidc_provider(page, issuer: str, account: str) -> None:
    """oidc-provider's development pages: log-in (`login` = account id, any password), then
    consent when asked. Returns once the browser has left the provider."""
    page.wait_for_url(url_of(issuer))
    page.locator("input[name=login]").fill(account)
    page.locator("input[name=password]").fill("any-password")
    with page.expect_navigation():  # the whole redirect chain: consent, or back to us
        page.locator("button[type=submit]").first.click()
    if page.url.startswith(issuer) and page.locator("input[name=prompt][value=consent]").count():
        with page.expect_navigation():
            page.locator("button[type=submit]").first.click()
    assert not page.url.startswith(issuer), f"still at the provider: {page.url}"


# --- either way through the IdP ------------------------------------------------------------
def through_saml_idp(page, idp: SimpleSAMLphpIdP, user: IdPUser, arrived) -> None:
    """After Continue: SimpleSAMLphp either asks again (its form) or answers from its own
    session; either way wait until `arrived` (a locator on our next screen) shows."""
    form = page.locator("input[name=username]")
    form.or_(arrived).first.wait_for(timeout=15_000)
    if form.is_visible():
        sign_in_at_simplesamlphp(page, idp, user)
    arrived.first.wait_for(timeout=15_000)


def through_oidc_provider(page, issuer: str, account: str, arrived) -> None:
    """The same for oidc-provider: its log-in form, or straight back with its session."""
    form = page.locator("input[name=login]")
    form.or_(arrived).first.wait_for(timeout=15_000)
    if form.is_visible():
        sign_in_at_oidc_provider(page, issuer, account)
    arrived.first.wait_for(timeout=15_000)


def dashboard_heading(page):
    return page.get_by_role("heading", name="My learning", exact=True)


def unlinked_choice(page):
    return page.get_by_role("link", name=NEW_USER)


# --- our screens ----------------------------------------------------------------------------
def open_login(page, live_app: str) -> None:
    """Home -> Log In (top right)."""
    page.goto(live_app + "/")
    page.get_by_role("navigation", name="Account").get_by_role("link", name="Log In").click()
    page.wait_for_url(re.compile(re.escape(reverse("account_login"))))


def org_login(page, company: str | None) -> None:
    """Log in with your organization -> the company's URL (unless pre-filled) -> Continue."""
    page.get_by_role("link", name=ORG_LOGIN_LINK).click()
    field = page.get_by_label(COMPANY_FIELD)
    field.wait_for()
    if company is not None:
        field.fill(company)
    page.get_by_role("button", name="Continue").click()


def choose_new_user(page) -> None:
    page.get_by_role("link", name=NEW_USER).wait_for()
    page.get_by_role("link", name=NEW_USER).click()


def wait_for_unlinked_choice(page) -> None:
    from playwright.sync_api import expect

    page.get_by_role("link", name=NEW_USER).wait_for(timeout=15_000)
    expect(page.get_by_role("link", name=EXISTING_USER)).to_be_visible()


def existing_user_continue(page, email: str, password: str) -> None:
    """I'm an existing {PLATFORM} user -> the account's email + password -> Continue."""
    page.get_by_role("link", name=EXISTING_USER).click()
    page.get_by_label(label("Email")).wait_for()
    page.get_by_label(label("Email")).fill(email)
    page.get_by_label(label("Password")).fill(password)
    page.get_by_role("button", name="Continue").click()


def log_out(page) -> None:
    account_menu = page.get_by_role("navigation", name="Account")
    account_menu.locator("summary").click()  # the menu under the learner's name
    account_menu.get_by_role("button", name="Log Out").click()
    account_menu.get_by_role("link", name="Log In").wait_for()


def log_in_with_password(page, live_app: str, email: str, password: str) -> None:
    page.goto(live_app + reverse("account_login"))
    page.get_by_label(label("Email")).fill(email)
    page.get_by_label(label("Password")).fill(password)
    page.get_by_role("button", name="Log In", exact=True).click()
    page.wait_for_url(dashboard_url())


def browser_logged_in_as(page, live_app: str, user) -> None:
    """A test-only way in for an account whose own way in (Google) is not a peer we run."""
    from django.test import Client

    client = Client()
    client.force_login(user, backend="django.contrib.auth.backends.ModelBackend")
    page.context.add_cookies(
        [{"name": "sessionid", "value": client.cookies["sessionid"].value, "url": live_app}]
    )


def reference_on(page) -> str:
    """The reference code shown on an error page (non-empty)."""
    reference = page.get_by_test_id("reference")
    reference.wait_for()
    text = reference.inner_text().strip()
    assert re.fullmatch(r"[A-Za-z0-9-]{4,}", text), f"odd reference code {text!r}"
    return text


def audit_event(reference: str):
    from orglogin.audit.models import AuditEvent

    return AuditEvent.objects.get(reference=reference)


# --- accounts made directly (their own journeys are tested elsewhere) -----------------------
def make_personal_account(email: str, password: str = PASSWORD, **fields):
    """A confirmed email + password account."""
    from allauth.account.models import EmailAddress
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(email=email, password=password, **fields)
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    return user


def make_google_only_account(email: str, uid: str = "google-uid-1001"):
    """An account whose only way in is Google: no usable password, one social link."""
    from allauth.account.models import EmailAddress
    from allauth.socialaccount.models import SocialAccount
    from django.contrib.auth import get_user_model

    user = get_user_model().objects.create_user(email=email, password=None)
    user.set_unusable_password()
    user.save()
    EmailAddress.objects.create(user=user, email=email, verified=True, primary=True)
    SocialAccount.objects.create(user=user, provider="google", uid=uid, extra_data={"email": email})
    return user


# --- background work ------------------------------------------------------------------------


def invitation_link_from(mail) -> str:
    links = [link for link in mail.links if "/programs/invitation/" in link]
    assert links, f"no invitation link in the mail: {mail.text}"
    return links[0]


def browser_user_id(page, live_app: str) -> int | None:
    """The account this browser's session is logged in as (read from the session store)."""
    from importlib import import_module

    from django.conf import settings

    cookies = {c["name"]: c["value"] for c in page.context.cookies(live_app)}
    key = cookies.get(settings.SESSION_COOKIE_NAME)
    if not key:
        return None
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key=key)
    value = store.get("_auth_user_id")
    return int(value) if value is not None else None


class Navigations:
    """Every main-frame URL the browser loads while recording (to prove "no extra screen")."""

    def __init__(self, page) -> None:
        self.page = page
        self.urls: list[str] = []
        page.on("framenavigated", self._seen)

    def _seen(self, frame) -> None:
        if frame == self.page.main_frame:
            self.urls.append(frame.url)

    def clear(self) -> None:
        self.urls.clear()
