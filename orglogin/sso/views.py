from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


def discover(request: HttpRequest) -> HttpResponse:
    """Log in with your organization (spec 2.1.2). Placeholder until the SAML issue lands."""
    return render(request, "sso/not_configured.html")
