"""Home realm discovery (spec 2.1.2) and the organization actions it relies on."""

import pytest

from orglogin.audit.models import AuditEvent
from orglogin.organizations.actions import (
    OrganizationError,
    add_domain,
    create_organization,
    verify_domain,
)
from orglogin.organizations.domains import DomainError, normalize_domain
from orglogin.organizations.hrd import find_organization
from orglogin.organizations.models import Domain, Organization

pytestmark = pytest.mark.django_db


@pytest.fixture
def orgs():
    acme = create_organization("acme", "Acme Corp", ["acme.com"], actor=None)
    uni = create_organization(
        "uni", "Example University", ["uni.edu"], actor=None, match_subdomains=True
    )
    add_domain(acme, "acme-unverified.com", actor=None)  # claimed, not verified
    return {"acme": acme, "uni": uni}


@pytest.mark.parametrize(
    "text, expected",
    [
        ("acme.com", "acme"),
        ("ACME.COM", "acme"),
        ("  acme.com  ", "acme"),
        ("acme .com", "acme"),
        ("acme.com.", "acme"),
        ("www.acme.com", "acme"),
        ("https://www.acme.com/careers?x=1", "acme"),
        ("HTTP://Acme.com:8443/", "acme"),
        ("acme.com/about", "acme"),
        ("jane@acme.com", "acme"),
        (" Jane.Doe@ACME.com ", "acme"),
        ("acme", "acme"),
        (" ACME ", "acme"),
        ("uni", "uni"),
        ("uni.edu", "uni"),
        ("cs.uni.edu", "uni"),  # subdomains allowed for uni
        ("ada@mail.cs.uni.edu", "uni"),
        ("https://www.cs.uni.edu/people", "uni"),
        ("mail.acme.com", None),  # acme did not allow subdomains
        ("jane@mail.acme.com", None),
        ("acme-unverified.com", None),  # unverified domains never route
        ("jane@acme-unverified.com", None),
        ("unknown.com", None),
        ("nobody", None),
        ("com", None),
        ("", None),
        ("   ", None),
        ("@", None),
        ("jane@", None),
        ("http://", None),
        ("acme.com.evil.test", None),
        ("notacme.com", None),
        ("-bad-", None),
        ("x" * 400 + ".com", None),
    ],
)
def test_find_organization(orgs, text, expected):
    org = find_organization(text)
    assert (org.slug if org else None) == expected


def test_idn_domains_match_in_either_spelling():
    create_organization("buecher", "Bücher GmbH", ["bücher.example"], actor=None)
    assert Domain.objects.get().name == "xn--bcher-kva.example"
    assert find_organization("info@BÜCHER.example").slug == "buecher"
    assert find_organization("xn--bcher-kva.example").slug == "buecher"


def test_hrd_runs_a_bounded_number_of_queries(orgs, django_assert_max_num_queries):
    for i in range(30):  # more data must not mean more queries
        create_organization(f"org{i}", f"Org {i}", [f"org{i}.com"], actor=None)
    with django_assert_max_num_queries(1):
        assert find_organization("a@x.y.z.w.cs.uni.edu").slug == "uni"
    with django_assert_max_num_queries(1):
        assert find_organization("acme").slug == "acme"
    with django_assert_max_num_queries(1):
        assert find_organization("https://www.nowhere.example/") is None


def test_hrd_filters_by_exact_names_not_a_scan(orgs):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as ctx:
        find_organization("a.b.acme.com")
    sql = ctx.captured_queries[0]["sql"]
    assert " IN (" in sql and "LIKE" not in sql.upper()


@pytest.mark.parametrize(
    "raw, normal",
    [
        ("Acme.COM", "acme.com"),
        (" acme.com. ", "acme.com"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("a-b.c-d.io", "a-b.c-d.io"),
    ],
)
def test_normalize_domain(raw, normal):
    assert normalize_domain(raw) == normal


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "localhost",
        "acme com",
        "jane@acme.com",
        "acme.com/x",
        "-acme.com",
        "10.0.0.1",
        "acme..com",
        "acme.com:80",
        "a" * 64 + ".com",
    ],
)
def test_normalize_domain_refuses(raw):
    with pytest.raises(DomainError):
        normalize_domain(raw)


def test_create_organization_writes_org_domains_and_one_audit_event():
    org = create_organization(
        "acme", "Acme Corp", ["Acme.com", "acme.com.", "acme.org"], actor=None
    )
    assert sorted(org.domains.values_list("name", "verified")) == [
        ("acme.com", True),
        ("acme.org", True),
    ]
    event = AuditEvent.objects.get()
    assert event.event == "org.changed" and event.organization == org


@pytest.mark.parametrize(
    "slug, domains, message",
    [
        ("Bad Slug", [], "invalid slug"),
        ("acme", [], "already exists"),
        ("new", ["not a domain"], "not a domain"),
        ("new", ["acme.com"], "already verified for another organization"),
    ],
)
def test_create_organization_refuses_bad_input_and_writes_nothing(orgs, slug, domains, message):
    before = (Organization.objects.count(), Domain.objects.count(), AuditEvent.objects.count())
    with pytest.raises(OrganizationError, match=message):
        create_organization(slug, "Name", domains, actor=None)
    after = (Organization.objects.count(), Domain.objects.count(), AuditEvent.objects.count())
    assert before == after


def test_a_verified_domain_belongs_to_one_org_only(orgs):
    other = create_organization("other", "Other", [], actor=None)
    claim = add_domain(other, "ACME.com", actor=None)  # an unverified claim may overlap
    assert not claim.verified
    with pytest.raises(OrganizationError, match="another organization"):
        verify_domain(claim, actor=None)
    claim.refresh_from_db()
    assert not claim.verified
    assert find_organization("acme.com").slug == "acme"


def test_verify_domain_makes_it_route(orgs):
    domain = Domain.objects.get(name="acme-unverified.com")
    verify_domain(domain, actor=None, method="dns")
    assert find_organization("acme-unverified.com").slug == "acme"
    assert AuditEvent.objects.filter(detail__action="verify_domain").count() == 1
