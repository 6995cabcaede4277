import pytest
from django.test import RequestFactory

from orglogin.audit import REFERENCE_ALPHABET, Event, record

pytestmark = pytest.mark.django_db


def test_record_returns_a_readable_reference_and_keeps_request_facts():
    request = RequestFactory().get("/", REMOTE_ADDR="198.51.100.7", HTTP_USER_AGENT="Tester/1")
    event = record(Event.SSO_FAILED, request=request, outcome="failure", check="audience")
    assert len(event.reference) == 10 and set(event.reference) <= set(REFERENCE_ALPHABET)
    assert event.ip_address == "198.51.100.7"
    assert event.user_agent == "Tester/1"
    assert event.detail == {"check": "audience"}


def test_forwarded_for_is_ignored_without_trusted_proxies():
    request = RequestFactory().get(
        "/", REMOTE_ADDR="198.51.100.7", HTTP_X_FORWARDED_FOR="203.0.113.9"
    )
    assert record(Event.LOGIN, request=request).ip_address == "198.51.100.7"


def test_forwarded_for_is_read_behind_one_trusted_proxy(settings):
    settings.ALLAUTH_TRUSTED_PROXY_COUNT = 1
    request = RequestFactory().get(
        "/", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="203.0.113.66, 203.0.113.9"
    )
    # The client can prepend anything; only the entry the trusted proxy added counts.
    assert record(Event.LOGIN, request=request).ip_address == "203.0.113.9"


def test_every_error_code_has_a_help_section():
    from django.conf import settings

    from orglogin.core.errors import ERRORS, ErrorCode
    from orglogin.core.views import HELP_ANCHORS

    page = (settings.BASE_DIR / "orglogin/templates/core/troubleshooting.html").read_text()
    assert set(ERRORS) == set(ErrorCode)
    for code in ErrorCode:
        anchor = HELP_ANCHORS.get(code)
        assert anchor, f"{code} has no help anchor"
        assert f'id="{anchor}"' in page
