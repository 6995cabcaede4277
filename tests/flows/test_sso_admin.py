"""The Django admin pages for organizations, connections and org identities render, show the
SP endpoints, and never show the SP private key."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from orglogin.sso.models import OrgIdentity
from tests.flows.sso_support import make_org, make_saml_connection

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_client(client):
    admin = get_user_model().objects.create_superuser("root@example.test", "x" * 20)
    client.force_login(admin)
    return client


def test_admin_pages(admin_client):
    org = make_org()
    connection = make_saml_connection(org)
    user = get_user_model().objects.create_user("jane@acme.test", "y" * 20)
    identity = OrgIdentity.objects.create(connection=connection, subject="s-1", user=user)

    page = admin_client.get(reverse("admin:organizations_organization_change", args=[org.pk]))
    assert page.status_code == 200 and b"acme.test" in page.content

    page = admin_client.get(reverse("admin:sso_connection_change", args=[connection.pk]))
    html = page.content.decode()
    assert page.status_code == 200
    assert f"/sso/saml/{connection.public_id}/acs/" in html
    assert "PRIVATE KEY" not in html
    assert connection.certificates.get().sha256_fingerprint in html

    for name in ("sso_connection", "sso_orgidentity", "organizations_organization"):
        assert admin_client.get(reverse(f"admin:{name}_changelist")).status_code == 200
    page = admin_client.get(reverse("admin:sso_orgidentity_change", args=[identity.pk]))
    assert page.status_code == 200
