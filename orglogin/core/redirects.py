from django.conf import settings
from django.http import HttpRequest
from django.utils.http import url_has_allowed_host_and_scheme


def safe_next_url(request: HttpRequest, candidate: str | None, default: str) -> str:
    """`candidate` if it stays on this site (spec 6: next and RelayState), else `default`."""
    if candidate and url_has_allowed_host_and_scheme(
        candidate,
        allowed_hosts={request.get_host()},
        require_https=request.is_secure() or settings.BASE_URL.startswith("https://"),
    ):
        return candidate
    return default
