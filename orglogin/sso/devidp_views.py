"""Views of the development IdP (DEVELOPMENT ONLY; mounted only when DEV_IDP_ENABLED).

The protocol work is in orglogin.sso.protocols.devidp; these views only render pages.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from orglogin.sso.protocols import devidp


def _enabled() -> None:
    # Belt and braces: the URLs are not even mounted when the setting is off.
    if not settings.DEV_IDP_ENABLED:
        raise Http404


@require_GET
def metadata(request: HttpRequest) -> HttpResponse:
    _enabled()
    return HttpResponse(
        devidp.dev_idp_metadata_xml(), content_type="application/samlmetadata+xml; charset=utf-8"
    )


@never_cache
@require_http_methods(["GET", "POST"])
def sso(request: HttpRequest) -> HttpResponse:
    """GET: the AuthnRequest (HTTP-Redirect) -> "pick a test user". POST: the pick -> an
    auto-posting form carrying the signed SAMLResponse to the connection's ACS URL."""
    _enabled()
    query = (
        request.META.get("QUERY_STRING", "")
        if request.method == "GET"
        else (request.POST.get("request", ""))
    )
    try:
        authn = devidp.parse_authn_request(query)
    except devidp.DevIdpError as exc:
        return render(request, "devidp/error.html", {"reason": str(exc)}, status=400)

    domain = devidp.default_domain(authn.connection)
    users = devidp.test_users(domain)
    context = {
        "users": users,
        "request_query": query,
        "connection": authn.connection,
        "domain": domain,
        "signed": authn.signed,
    }
    if request.method == "GET":
        return render(request, "devidp/pick_user.html", context)

    choice = request.POST.get("user", "")
    if choice == "custom":
        email = request.POST.get("email", "").strip()
        name = " ".join(request.POST.get("name", "").split())
        try:
            validate_email(email)
        except ValidationError:
            context.update(error="Type a valid email address.", email=email, name=name)
            return render(request, "devidp/pick_user.html", context, status=400)
        given, _, family = name.partition(" ")
        user = devidp.DevUser(email, given, family)
    else:
        user = next((u for u in users if u.email == choice), None)
        if user is None:
            context.update(error="Pick one of the test users.")
            return render(request, "devidp/pick_user.html", context, status=400)

    saml_response = devidp.build_signed_response(
        authn.connection,
        email=user.email,
        given_name=user.given_name,
        family_name=user.family_name,
        display_name=user.display_name,
        in_response_to=authn.request_id,
    )
    return render(
        request,
        "devidp/post.html",
        {
            "acs_url": authn.acs_url,
            "saml_response": saml_response,
            "relay_state": authn.relay_state,
            "user": user,
        },
    )
