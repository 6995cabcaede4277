"""A fresh login (ForceAuthn) must be proven: `parse_response(require_authn_after=...)` checks
the verified Assertion's AuthnStatement@AuthnInstant (check "authn_instant").

The owner link of spec 2.2.1 asks the IdP for ForceAuthn="true"; an IdP may still answer from
its session. With `require_authn_after` set, the latest AuthnInstant of the signed Assertion
must be at or after it, less the 120 s skew; no AuthnStatement is refused. Without it,
AuthnInstant is not looked at (every other login).
"""

from __future__ import annotations

from copy import deepcopy
from datetime import UTC, timedelta

import pytest
from django.utils import timezone

from orglogin.core.errors import ErrorCode
from orglogin.sso.errors import SsoError
from orglogin.sso.protocols.saml import SamlConnector
from orglogin.sso.protocols.saml_verify import CHECK_CODES
from orglogin.sso.protocols.saml_xml import SAML, format_saml_time
from tests.support.db import row_counts
from tests.support.saml_idp import (
    assertion_of,
    decode,
    encode,
    sign,
)

pytestmark = pytest.mark.django_db

REQUEST_ID = "_request-fresh-0001"
AUTHN_STATEMENT = f"{{{SAML}}}AuthnStatement"




@pytest.fixture
def asked():
    """When the fresh login was asked for (the pending login's creation), a little ago."""
    return timezone.now() - timedelta(seconds=30)


def parse(connection, value, *, require_authn_after=None, now=None):
    return SamlConnector(connection).parse_response(
        value, expected_request_id=REQUEST_ID, now=now, require_authn_after=require_authn_after
    )


def refused(connection, value, code, check, **kwargs) -> SsoError:
    before = row_counts()
    with pytest.raises(SsoError) as info:
        parse(connection, value, **kwargs)
    assert (info.value.code, info.value.check) == (code, check), info.value
    assert row_counts() == before
    return info.value


# --- refused when required -------------------------------------------------------------------


def test_authn_instant_before_the_request_beyond_the_skew_is_refused(connection, factory, asked):
    value = factory.post_value(
        in_response_to=REQUEST_ID, authn_instant=asked - timedelta(seconds=121)
    )
    error = refused(
        connection,
        value,
        ErrorCode.SSO_REAUTH_REQUIRED,
        "authn_instant",
        require_authn_after=asked,
    )
    assert "earlier session" in error.detail
    # Refused before the replay cache: the same (otherwise good) response is still unused...
    # ...and a login that asked for no fresh authentication accepts it.
    assert parse(connection, value).subject == "id-jane-0001"


def test_an_hour_old_idp_session_is_refused(connection, factory, asked):
    value = factory.post_value(in_response_to=REQUEST_ID, authn_instant=asked - timedelta(hours=1))
    refused(
        connection, value, ErrorCode.SSO_REAUTH_REQUIRED, "authn_instant", require_authn_after=asked
    )


def test_no_authn_statement_is_refused_when_required(connection, factory, asked):
    value = factory.post_value(in_response_to=REQUEST_ID, authn_instant=None)
    assert assertion_of(decode(value)).find(AUTHN_STATEMENT) is None  # none was built
    error = refused(
        connection,
        value,
        ErrorCode.SSO_REAUTH_REQUIRED,
        "authn_instant",
        require_authn_after=asked,
    )
    assert "no AuthnStatement" in error.detail
    assert parse(connection, value).email == "jane@acme.test"  # not required: accepted


def test_authn_instant_far_in_the_future_is_refused(connection, factory, asked):
    now = timezone.now()
    value = factory.post_value(
        in_response_to=REQUEST_ID, authn_instant=now + timedelta(seconds=300)
    )
    refused(
        connection,
        value,
        ErrorCode.SSO_CLOCK_SKEW,
        "authn_instant",
        require_authn_after=asked,
        now=now,
    )


def test_a_fresh_instant_edited_into_a_signed_stale_assertion_breaks_the_signature(
    connection, factory, asked
):
    root = decode(
        factory.post_value(in_response_to=REQUEST_ID, authn_instant=asked - timedelta(hours=1))
    )
    statement = assertion_of(root).find(AUTHN_STATEMENT)
    statement.set("AuthnInstant", format_saml_time(timezone.now()))
    refused(
        connection,
        encode(root),
        ErrorCode.SSO_SIGNATURE,
        "signature",
        require_authn_after=asked,
    )


def _with_two_statements(factory, idp, first, second) -> str:
    root = factory.tree(in_response_to=REQUEST_ID, authn_instant=first)
    statement = assertion_of(root).find(AUTHN_STATEMENT)
    other = deepcopy(statement)
    other.set("AuthnInstant", format_saml_time(second))
    statement.addnext(other)
    sign(assertion_of(root), idp.key)
    return encode(root)


def test_several_statements_all_stale_are_refused(connection, factory, idp, asked):
    value = _with_two_statements(
        factory, idp, asked - timedelta(hours=2), asked - timedelta(minutes=10)
    )
    refused(
        connection, value, ErrorCode.SSO_REAUTH_REQUIRED, "authn_instant", require_authn_after=asked
    )


def test_check_name_maps_to_the_reauth_code():
    assert CHECK_CODES["authn_instant"] == ErrorCode.SSO_REAUTH_REQUIRED


# --- accepted ----------------------------------------------------------------------------------


def test_authn_instant_after_the_request_is_accepted(connection, factory, asked):
    value = factory.post_value(in_response_to=REQUEST_ID, authn_instant=timezone.now())
    identity = parse(connection, value, require_authn_after=asked)
    assert identity.subject == "id-jane-0001"


def test_authn_instant_within_the_skew_before_the_request_is_accepted(connection, factory, asked):
    value = factory.post_value(
        in_response_to=REQUEST_ID, authn_instant=asked - timedelta(seconds=119)
    )
    assert parse(connection, value, require_authn_after=asked).email == "jane@acme.test"


def test_the_latest_of_several_statements_counts(connection, factory, idp, asked):
    value = _with_two_statements(factory, idp, asked - timedelta(hours=2), timezone.now())
    assert parse(connection, value, require_authn_after=asked).subject == "id-jane-0001"


def test_a_naive_requirement_is_taken_as_utc(connection, factory, asked):
    value = factory.post_value(in_response_to=REQUEST_ID, authn_instant=timezone.now())
    naive = asked.astimezone(UTC).replace(tzinfo=None)
    assert parse(connection, value, require_authn_after=naive).subject == "id-jane-0001"


def test_a_stale_instant_is_fine_when_no_fresh_login_was_asked(connection, factory):
    value = factory.post_value(
        in_response_to=REQUEST_ID, authn_instant=timezone.now() - timedelta(days=1)
    )
    assert parse(connection, value).subject == "id-jane-0001"


def test_the_admin_report_is_unchanged_without_the_requirement(connection, factory):
    value = factory.post_value(in_response_to=REQUEST_ID, authn_instant=None)
    report = SamlConnector(connection).check_report(value, expected_request_id=REQUEST_ID)
    assert all(r.passed for r in report), report
    assert "authn_instant" not in {r.check for r in report}
