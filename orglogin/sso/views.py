"""SSO screens and SAML SP endpoints. Thin: protocol work is the connector's, decisions are
the flows'; each view maps one outcome to one response.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import urlencode
from uuid import UUID

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from orglogin.core.errors import ErrorCode, error_text
from orglogin.core.redirects import safe_next_url
from orglogin.core.views import help_anchor
from orglogin.organizations.hrd import find_organization
from orglogin.sso import flows, pending
from orglogin.sso.errors import SsoError
from orglogin.sso.flows.common import fail, fail_from_error
from orglogin.sso.forms import (
    CurrentPasswordForm,
    DiscoverForm,
    ExistingAccountForm,
    SecondFactorForm,
    SignupForm,
)
from orglogin.sso.models import Connection

# A SAMLResponse is a few KB; anything far larger is not one and is not parked in the cache.
MAX_SAML_RESPONSE = 512 * 1024


class HttpResponseSeeOther(HttpResponseRedirect):
    status_code = 303


# --- rendering outcomes ---------------------------------------------------------------------


def render_failure(request: HttpRequest, failure: flows.Failure) -> HttpResponse:
    """The one SSO error page: the learner-level text and the reference, never the check."""
    text = error_text(failure.code, settings.PLATFORM_NAME)
    return render(
        request,
        "sso/error.html",
        {
            "error_title": text.title,
            "error_text": text.text,
            "error_code": str(failure.code),
            "help_anchor": help_anchor(failure.code),
            "reference": failure.reference,
            "organization": failure.organization,
            "show_delink_help": failure.code == ErrorCode.ACCOUNT_CONFLICT,
        },
        status=text.status,
    )


def respond(request: HttpRequest, outcome: flows.Outcome) -> HttpResponse:
    match outcome:
        case flows.LoggedIn(redirect_to=target):
            return redirect(target)
        case flows.NeedsChoice(screen=flows.Screen.CHOOSE):
            return redirect("sso:choose")
        case flows.NeedsChoice(screen=flows.Screen.EMAIL_IN_USE):
            return render(
                request,
                "sso/email_in_use.html",
                {"organization": outcome.organization, "reference": outcome.reference},
                status=409,
            )
        case flows.Challenge(screen=flows.Screen.LINK_MFA):
            return redirect("sso:link_mfa")
        case flows.Challenge(screen=flows.Screen.LINK_CONFIRM):
            return redirect("sso:link_confirm")
        case flows.Challenge(screen=flows.Screen.EXISTING_LOGIN):
            return redirect("sso:existing")
        case flows.Failure():
            return render_failure(request, outcome)
    raise TypeError(f"unexpected outcome {outcome!r}")  # pragma: no cover


def _expired(request: HttpRequest, check: str) -> HttpResponse:
    return render_failure(request, fail(request, ErrorCode.SSO_PENDING_EXPIRED, check=check))


# --- Log in with your organization ----------------------------------------------------------


@never_cache
@require_http_methods(["GET", "POST"])
def discover(request: HttpRequest) -> HttpResponse:
    """Company URL / email / slug -> the org's IdP (spec 2.1.2-3)."""
    if request.method == "POST":
        form = DiscoverForm(request.POST)
        if form.is_valid():
            next_url = safe_next_url(request, form.cleaned_data["next"], "")
            org = find_organization(form.cleaned_data["company"])
            if org is None:
                # Same screen, input kept; says nothing about which orgs exist.
                not_found = error_text(ErrorCode.ORG_NOT_FOUND, settings.PLATFORM_NAME)
                return render(request, "sso/discover.html", {"form": form, "not_found": not_found})
            connections = list(org.connections.filter(enabled=True).order_by("name"))
            if not connections:
                return render_failure(
                    request,
                    fail(
                        request,
                        ErrorCode.SSO_NOT_CONFIGURED,
                        check="no_enabled_connection",
                        organization=org,
                    ),
                )
            if len(connections) == 1:
                return start_login(request, connections[0], next_url)
            return render(
                request,
                "sso/choose_connection.html",
                {"organization": org, "connections": connections, "next": next_url},
            )
    else:
        initial = {
            "company": (request.GET.get("company") or request.GET.get("org") or "")[:320],
            "next": safe_next_url(request, request.GET.get("next"), ""),
        }
        form = DiscoverForm(initial=initial)
    return render(request, "sso/discover.html", {"form": form})


def _enabled_connection(request: HttpRequest, public_id: UUID) -> Connection | HttpResponse:
    """The connection to start a login on, or the failure page when it is switched off."""
    connection = get_object_or_404(
        Connection.objects.select_related("organization"), public_id=public_id
    )
    if not connection.enabled:
        return render_failure(
            request,
            fail(
                request,
                ErrorCode.SSO_NOT_CONFIGURED,
                check="connection_disabled",
                connection=connection,
            ),
        )
    return connection


@never_cache
@require_http_methods(["GET", "POST"])
def start(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """SP-initiated login on one connection (the chooser and invitations link here)."""
    connection = _enabled_connection(request, public_id)
    if isinstance(connection, HttpResponse):
        return connection
    raw_next = request.POST.get("next") if request.method == "POST" else request.GET.get("next")
    return start_login(request, connection, safe_next_url(request, raw_next, ""))


def start_login(
    request: HttpRequest,
    connection: Connection,
    next_url: str,
    *,
    intent: dict | None = None,
    fresh: bool = False,
) -> HttpResponse:
    """Keep a pending login in the session (keyed by a random RelayState / OIDC state that
    is all the provider sees) and send the browser to the IdP. `fresh` asks the IdP to
    authenticate again even if it has a session (SAML ForceAuthn, OIDC prompt=login +
    max_age=0), and the answer must then prove a login after this moment (SAML AuthnInstant,
    OIDC auth_time; see `_must_be_fresh`)."""
    try:
        if connection.protocol == Connection.Protocol.SAML:
            url = _start_saml(request, connection, next_url, intent=intent, fresh=fresh)
        elif connection.protocol == Connection.Protocol.OIDC:
            url = _start_oidc(request, connection, next_url, intent=intent, fresh=fresh)
        else:  # pragma: no cover - no other protocol exists yet
            raise SsoError(ErrorCode.SSO_NOT_CONFIGURED, "configuration", "unknown protocol")
    except SsoError as error:
        return render_failure(request, fail_from_error(request, error, connection=connection))
    return HttpResponseRedirect(url)


def _start_saml(
    request: HttpRequest, connection: Connection, next_url: str, *, intent, fresh: bool
) -> str:
    from orglogin.sso.protocols.saml import SamlConnector

    key = pending.new_key()
    url, request_id = SamlConnector(connection).authn_request_redirect(
        relay_state=key, force_authn=fresh
    )
    pending.remember_login(
        request.session,
        key=key,
        connection_id=connection.pk,
        request_id=request_id,
        next_url=next_url,
        intent=intent,
        fresh=fresh,
    )
    return url


def _must_be_fresh(fresh: bool, intent: dict | None) -> bool:
    """A login that asked for re-authentication, or carries a link intent (the owner link of
    spec 2.2.1 always starts fresh; this also covers pending logins from before the flag)."""
    return fresh or (intent or {}).get(pending.LINK_TO) is not None


def _start_oidc(
    request: HttpRequest, connection: Connection, next_url: str, *, intent, fresh: bool
) -> str:
    from orglogin.sso.protocols.oidc import OidcConnector

    url, authorization = OidcConnector(connection).authorization_redirect(force_login=fresh)
    pending.remember_oidc(
        request.session,
        state=authorization.state,
        connection_id=connection.pk,
        authorization=authorization.to_dict(),
        next_url=next_url,
        intent=intent,
    )
    return url


# --- SAML SP endpoints ----------------------------------------------------------------------


def _saml_connection(public_id: UUID) -> Connection:
    return get_object_or_404(
        Connection.objects.select_related("organization"),
        public_id=public_id,
        protocol=Connection.Protocol.SAML,
    )


@csrf_exempt  # the IdP's POST carries no CSRF token; the SAML checks bind it instead
@require_POST
def saml_acs(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """Assertion Consumer Service. The IdP's cross-site POST arrives without our SameSite=Lax
    session cookie, so park the raw (unverified) response and continue same-site with GET."""
    connection = _saml_connection(public_id)
    saml_response = request.POST.get("SAMLResponse", "")
    relay_state = request.POST.get("RelayState", "")
    if not saml_response or len(saml_response) > MAX_SAML_RESPONSE or len(relay_state) > 1024:
        return render_failure(
            request,
            fail(
                request,
                ErrorCode.SSO_RESPONSE_INVALID,
                check="acs_post_malformed",
                connection=connection,
            ),
        )
    key = pending.park_acs_post(
        connection_id=connection.pk, saml_response=saml_response, relay_state=relay_state
    )
    url = reverse("sso:saml_acs_continue", kwargs={"public_id": connection.public_id})
    return HttpResponseSeeOther(f"{url}?{urlencode({'k': key})}")


@never_cache
@require_GET
def saml_acs_continue(request: HttpRequest, public_id: UUID) -> HttpResponse:
    connection = _saml_connection(public_id)
    parked = pending.take_acs_post(request.GET.get("k"))
    if parked is None or parked.connection_id != connection.pk:
        return render_failure(
            request,
            fail(
                request,
                ErrorCode.SSO_PENDING_EXPIRED,
                check="acs_handoff_missing",
                connection=connection,
            ),
        )
    login = pending.pop_login(request.session, parked.relay_state)
    expected_request_id: str | None = None
    require_authn_after: datetime | None = None
    next_url = ""
    intent: dict = {}
    if login is not None:
        if login.connection_id != connection.pk:
            return render_failure(
                request,
                fail(
                    request,
                    ErrorCode.SSO_SESSION_MISMATCH,
                    check="relay_state_connection",
                    connection=connection,
                ),
            )
        if login.expired:
            return render_failure(
                request,
                fail(
                    request,
                    ErrorCode.SSO_PENDING_EXPIRED,
                    check="pending_login_expired",
                    connection=connection,
                ),
            )
        expected_request_id = login.request_id
        next_url = login.next_url
        intent = login.intent
        if _must_be_fresh(login.fresh, intent):
            # ForceAuthn was asked when this pending login was made: the IdP must have
            # authenticated the learner since (AuthnInstant), not answered from its session.
            require_authn_after = datetime.fromtimestamp(login.created_at, UTC)
    elif parked.relay_state.startswith("/"):
        # IdP-initiated: some IdPs put a target path in RelayState. Validated as `next`.
        next_url = parked.relay_state
    # expected_request_id=None means unsolicited; the connector refuses it unless the
    # connection allows IdP-initiated login.
    from orglogin.sso.protocols.saml import SamlConnector

    try:
        identity = SamlConnector(connection).parse_response(
            parked.unverified_saml_response,
            expected_request_id=expected_request_id,
            require_authn_after=require_authn_after,
        )
    except SsoError as error:
        return render_failure(request, fail_from_error(request, error, connection=connection))
    return respond(
        request,
        flows.handle_asserted_identity(request, identity, next_url=next_url, intent=intent),
    )


@require_GET
def saml_metadata(request: HttpRequest, public_id: UUID) -> HttpResponse:
    from orglogin.sso.protocols.saml import SamlConnector

    connection = _saml_connection(public_id)
    xml = SamlConnector(connection).sp_metadata_xml()
    return HttpResponse(xml, content_type="application/samlmetadata+xml; charset=utf-8")


# --- OIDC redirect URI --------------------------------------------------------------------


@never_cache
@require_GET
def oidc_callback(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """The provider's redirect back (a top-level GET: the Lax session cookie comes along)."""
    from orglogin.sso.protocols.oidc import OidcConnector, PendingAuthorization

    connection = get_object_or_404(
        Connection.objects.select_related("organization"),
        public_id=public_id,
        protocol=Connection.Protocol.OIDC,
    )
    # Removed on first use: a replayed callback reaches the connector with pending=None.
    waiting = pending.pop_oidc(request.session, request.GET.get("state"))
    authorization = None
    next_url = ""
    intent: dict = {}
    if waiting is not None and waiting.connection_id == connection.pk:
        try:
            authorization = PendingAuthorization.from_dict(waiting.authorization)
        except ValueError:
            authorization = None
        next_url = waiting.next_url
        intent = waiting.intent
        if (
            authorization is not None
            and authorization.require_auth_after is None
            and _must_be_fresh(False, intent)
        ):
            # A link intent from before `require_auth_after` existed: still a fresh login.
            authorization = replace(authorization, require_auth_after=authorization.created_at)
    try:
        identity = OidcConnector(connection).complete(
            params=request.GET.dict(), pending=authorization
        )
    except SsoError as error:
        return render_failure(request, fail_from_error(request, error, connection=connection))
    return respond(
        request,
        flows.handle_asserted_identity(request, identity, next_url=next_url, intent=intent),
    )


# --- After the IdP: unlinked identity ------------------------------------------------------


def _organization_of(waiting: pending.PendingIdentity):
    connection = (
        Connection.objects.select_related("organization")
        .filter(pk=waiting.identity.connection_id)
        .first()
    )
    return connection.organization if connection else None


@never_cache
@require_GET
def choose(request: HttpRequest) -> HttpResponse:
    """I'm a new user / I'm an existing {PLATFORM_NAME} user (spec 2.1.5)."""
    waiting = pending.peek_identity(request.session)
    if waiting is None:
        return _expired(request, "pending_identity_missing")
    return render(
        request,
        "sso/unlinked.html",
        {"organization": _organization_of(waiting), "org_email": waiting.identity.email},
    )


@never_cache
@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    """New user (spec 2.1.6)."""
    waiting = pending.peek_identity(request.session)
    if waiting is None:
        return _expired(request, "pending_identity_missing")
    allowed = flows.check_signup_allowed(request, waiting)
    if isinstance(allowed, flows.Failure):
        return render_failure(request, allowed)
    identity = waiting.identity
    if request.method == "POST":
        form = SignupForm(request.POST, org_email=identity.email)
        if form.is_valid():
            details = flows.SignupDetails(
                first_name=form.cleaned_data["first_name"],
                last_name=form.cleaned_data["last_name"],
                alternative_email=form.cleaned_data["alternative_email"],
                password=form.cleaned_data["password"],
            )
            return respond(request, flows.jit_signup(request, waiting, details))
    else:
        first, last = identity.given_name, identity.family_name
        if not first and not last:
            first = identity.display_name
        form = SignupForm(
            initial={"first_name": first, "last_name": last}, org_email=identity.email
        )
    return render(
        request,
        "sso/signup.html",
        {"form": form, "org_email": identity.email, "organization": allowed.organization},
    )


@never_cache
@require_http_methods(["GET", "POST"])
def existing(request: HttpRequest) -> HttpResponse:
    """I'm an existing {PLATFORM_NAME} user (spec 2.2.3): email + password, then Continue."""
    waiting = pending.peek_identity(request.session)
    if waiting is None:
        return _expired(request, "pending_identity_missing")
    message = ""
    if request.method == "POST":
        form = ExistingAccountForm(request.POST)
        if form.is_valid():
            outcome = flows.verify_existing_account(
                request,
                waiting,
                email=form.cleaned_data["email"],
                password=form.cleaned_data["password"],
            )
            if not (
                isinstance(outcome, flows.Challenge)
                and outcome.screen == flows.Screen.EXISTING_LOGIN
            ):
                return respond(request, outcome)
            message = outcome.message
            # Keep the email typed, never the password.
            form = ExistingAccountForm(initial={"email": form.cleaned_data["email"]})
    else:
        form = ExistingAccountForm()
    return render(
        request,
        "sso/existing.html",
        {
            "form": form,
            "message": message,
            "organization": _organization_of(waiting),
            "org_email": waiting.identity.email,
        },
    )


@never_cache
@require_http_methods(["GET", "POST"])
def link_mfa(request: HttpRequest) -> HttpResponse:
    """The second factor of the account being linked (spec 2.2.3)."""
    waiting = pending.peek_identity(request.session)
    if waiting is None:
        return _expired(request, "pending_identity_missing")
    user = flows.awaiting_second_factor(request, waiting)
    if isinstance(user, flows.Failure):
        return render_failure(request, user)
    message = ""
    form = SecondFactorForm()
    if request.method == "POST":
        posted = SecondFactorForm(request.POST)
        if posted.is_valid():
            outcome = flows.verify_second_factor(request, waiting, code=posted.cleaned_data["code"])
            if not (
                isinstance(outcome, flows.Challenge) and outcome.screen == flows.Screen.LINK_MFA
            ):
                return respond(request, outcome)
            message = outcome.message
        else:
            form = posted
    return render(
        request,
        "sso/link_mfa.html",
        {"form": form, "message": message, "organization": _organization_of(waiting)},
    )


@login_required
@require_POST
def link_start(request: HttpRequest, public_id: UUID) -> HttpResponse:
    """A logged-in learner links their org account to this account (spec 2.2.1): a fresh SSO
    login that carries the intent; the password is asked when it comes back."""
    connection = _enabled_connection(request, public_id)
    if isinstance(connection, HttpResponse):
        return connection
    if not request.user.has_usable_password():
        return render_failure(
            request,
            fail(
                request,
                ErrorCode.LINK_PASSWORD_REQUIRED,
                check="link_account_without_password",
                connection=connection,
            ),
        )
    next_url = safe_next_url(request, request.POST.get("next"), "")
    return start_login(
        request, connection, next_url, intent={pending.LINK_TO: request.user.pk}, fresh=True
    )


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def link_confirm(request: HttpRequest) -> HttpResponse:
    """Back from the fresh SSO login: the logged-in owner re-enters their password."""
    waiting = pending.peek_identity(request.session)
    if waiting is None or waiting.extra.get(pending.LINK_TO) is None:
        return _expired(request, "pending_link_missing")
    message = ""
    if request.method == "POST":
        form = CurrentPasswordForm(request.POST)
        if form.is_valid():
            outcome = flows.confirm_current_account(
                request, waiting, password=form.cleaned_data["password"]
            )
            if not (
                isinstance(outcome, flows.Challenge) and outcome.screen == flows.Screen.LINK_CONFIRM
            ):
                return respond(request, outcome)
            message = outcome.message
            form = CurrentPasswordForm()
    else:
        form = CurrentPasswordForm()
    return render(
        request,
        "sso/link_confirm.html",
        {
            "form": form,
            "message": message,
            "organization": _organization_of(waiting),
            "org_email": waiting.identity.email,
        },
    )
