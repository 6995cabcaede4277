"""Every write through the Django admin is in the audit log (spec 6: "admin change").

A superuser posts to the real admin pages (change forms with their inlines, delete pages,
the changelist's actions). Each write gives one event with the admin as actor, the org, the
IP and a detail naming model, object, action and changed field names; secret values (the SP
private key, the OIDC client secret, password hashes, invitation tokens) never appear in it,
nor on the Connection page.
"""

from __future__ import annotations

import json

import pytest
from django import forms
from django.urls import reverse

from orglogin.accounts.models import User
from orglogin.audit import Event
from orglogin.audit.models import AuditEvent
from orglogin.organizations.models import Domain, Membership, Organization
from orglogin.programs.invite import create_invitations
from orglogin.programs.models import Invitation, Program
from orglogin.sso.models import Connection, OrgIdentity
from tests.flows.sso_support import make_org, make_saml_connection

pytestmark = pytest.mark.django_db

PASSWORD = "correct horse battery staple"
CLIENT_SECRET = "oidc-client-secret-4f9a1c0e-never-logged"


@pytest.fixture
def root():
    return User.objects.create_superuser("root@example.test", PASSWORD)


@pytest.fixture
def admin_client(client, root):
    client.force_login(root)
    return client


def form_data(response) -> dict:
    """The POST data of an admin change form as rendered (main form and every inline)."""
    data: dict = {}

    def put(name, widget, value):
        if isinstance(widget, forms.CheckboxInput):
            if value:
                data[name] = "on"
        elif isinstance(widget, forms.MultiWidget):
            for i, part in enumerate(widget.decompress(value)):
                if part is not None:
                    data[f"{name}_{i}"] = str(part)
        elif isinstance(value, list | tuple):
            data[name] = [str(v) for v in value]
        elif value is not None:
            data[name] = str(value)

    def add(form):
        for bound in form:
            if bound.field.disabled:
                continue
            value = bound.value()  # already prepared for the widget
            put(bound.html_name, bound.field.widget, value)
            if bound.field.show_hidden_initial:  # fields with a callable default
                put(bound.html_initial_name, bound.field.hidden_widget(), value)

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        add(inline.formset.management_form)
        for form in inline.formset.forms:
            add(form)
    return data


def change_url(obj) -> str:
    return reverse(f"admin:{obj._meta.app_label}_{obj._meta.model_name}_change", args=[obj.pk])


def post_change(admin_client, obj, **changes):
    url = change_url(obj)
    data = form_data(admin_client.get(url))
    for key, value in changes.items():
        if value is None:
            data.pop(key, None)
        else:
            data[key] = value
    response = admin_client.post(url, data)
    if response.status_code != 302:
        pytest.fail(f"not saved: {response.context['adminform'].form.errors}")
    return response


def admin_events(event=None, model=None) -> list[AuditEvent]:
    rows = AuditEvent.objects.filter(detail__via="admin").order_by("pk")
    if event is not None:
        rows = rows.filter(event=event)
    if model is not None:
        rows = rows.filter(detail__model=model)
    return list(rows)


def assert_no_secrets(*secrets: str) -> None:
    dumped = json.dumps([e.detail for e in AuditEvent.objects.all()])
    for secret in secrets:
        assert secret and secret not in dumped


def assert_admin_event(event: AuditEvent, root, org, *, action, model, object_id):
    assert event.actor_id == root.pk and event.actor_label == "root@example.test"
    assert event.organization_id == (org.pk if org is not None else None)
    assert event.ip_address == "127.0.0.1"
    assert event.reference and event.outcome == "success"
    assert event.detail["action"] == action
    assert event.detail["model"] == model
    assert event.detail["object_id"] == object_id


# --- organizations, domains, memberships ------------------------------------------------------


def test_organization_change_with_domain_and_membership_inlines(admin_client, root):
    org = make_org(domains=("acme.test", "old.acme.test"))
    jane = User.objects.create_user("jane@acme.test", PASSWORD)
    membership = Membership.objects.create(organization=org, user=jane)
    old = Domain.objects.get(name="old.acme.test")
    forms_in_page = form_data(admin_client.get(change_url(org)))
    d_index = next(
        k
        for k, v in forms_in_page.items()
        if k.startswith("domains-") and k.endswith("-id") and v == str(old.pk)
    )
    m_index = next(
        k
        for k, v in forms_in_page.items()
        if k.startswith("memberships-") and k.endswith("-id") and v == str(membership.pk)
    )
    total = int(forms_in_page["domains-TOTAL_FORMS"])

    post_change(
        admin_client,
        org,
        name="Acme Worldwide",
        jit_signup_enabled=None,  # unchecked
        **{
            d_index.replace("-id", "-DELETE"): "on",
            m_index.replace("-id", "-role"): "admin",
            "domains-TOTAL_FORMS": str(total + 1),
            f"domains-{total}-name": "New.Acme.TEST",
            f"domains-{total}-organization": str(org.pk),
        },
    )

    org.refresh_from_db()
    assert org.name == "Acme Worldwide" and not org.jit_signup_enabled
    membership.refresh_from_db()
    assert membership.role == "admin"
    assert Domain.objects.filter(organization=org, name="new.acme.test").exists()  # normalized
    assert not Domain.objects.filter(pk=old.pk).exists()

    events = admin_events(Event.ORG_CHANGED)
    assert len(events) == 4
    (org_event,) = admin_events(model="organizations.organization")
    assert_admin_event(
        org_event, root, org, action="change", model="organizations.organization", object_id=org.pk
    )
    assert org_event.detail["fields"] == ["jit_signup_enabled", "name"]
    assert org_event.detail["changes"] == {
        "name": ["Acme Corp", "Acme Worldwide"],
        "jit_signup_enabled": [True, False],
    }

    (role_event,) = admin_events(model="organizations.membership")
    assert_admin_event(
        role_event,
        root,
        org,
        action="change",
        model="organizations.membership",
        object_id=membership.pk,
    )
    assert role_event.detail["fields"] == ["role"]
    assert role_event.detail["changes"] == {"role": ["learner", "admin"]}
    assert role_event.detail["user_id"] == jane.pk

    added, deleted = admin_events(model="organizations.domain")
    new = Domain.objects.get(name="new.acme.test")
    assert_admin_event(
        added, root, org, action="add", model="organizations.domain", object_id=new.pk
    )
    assert added.detail["changes"]["name"] == [None, "new.acme.test"]
    assert_admin_event(
        deleted, root, org, action="delete", model="organizations.domain", object_id=old.pk
    )
    assert deleted.detail["object"] == "old.acme.test"


def test_membership_admin_role_change_and_bulk_delete(admin_client, root):
    org = make_org()
    jane = User.objects.create_user("jane@acme.test", PASSWORD)
    joe = User.objects.create_user("joe@acme.test", PASSWORD)
    jane_m = Membership.objects.create(organization=org, user=jane, role="admin")
    joe_m = Membership.objects.create(organization=org, user=joe)

    post_change(admin_client, jane_m, role="learner")
    (event,) = admin_events(Event.ORG_CHANGED)
    assert event.detail["changes"] == {"role": ["admin", "learner"]}

    response = admin_client.post(
        reverse("admin:organizations_membership_changelist"),
        {"action": "delete_selected", "_selected_action": [jane_m.pk, joe_m.pk], "post": "yes"},
    )
    assert response.status_code == 302
    assert not Membership.objects.exists()
    deletes = admin_events(Event.ORG_CHANGED)[1:]
    assert sorted(e.detail["object_id"] for e in deletes) == sorted([jane_m.pk, joe_m.pk])
    for e in deletes:
        assert e.detail["action"] == "delete" and e.organization_id == org.pk


def test_organization_delete_names_what_went_with_it(admin_client, root):
    org = make_org()
    connection = make_saml_connection(org)
    jane = User.objects.create_user("jane@acme.test", PASSWORD)
    OrgIdentity.objects.create(connection=connection, subject="s-1", user=jane)
    org_pk = org.pk

    response = admin_client.post(
        reverse("admin:organizations_organization_delete", args=[org.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    assert not Organization.objects.exists()
    (event,) = admin_events(Event.ORG_CHANGED)
    assert_admin_event(
        event, root, None, action="delete", model="organizations.organization", object_id=org_pk
    )
    assert event.detail["object"] == "Acme Corp"
    assert event.detail["cascade"]["sso.orgidentity"] == 1
    assert event.detail["cascade"]["sso.connection"] == 1
    assert_no_secrets(connection.sp_private_key)


# --- connections and certificates ---------------------------------------------------------


def test_connection_page_never_shows_the_private_key_or_the_client_secret(admin_client):
    org = make_org()
    saml = make_saml_connection(org)
    oidc = Connection.objects.create(
        organization=org,
        protocol="oidc",
        name="Entra",
        oidc_issuer="https://login.example.test/tenant/v2.0",
        oidc_client_id="client-1",
        oidc_client_secret=CLIENT_SECRET,
    )
    for connection in (saml, oidc):
        html = admin_client.get(change_url(connection)).content.decode()
        assert "PRIVATE KEY" not in html
        assert CLIENT_SECRET not in html
        assert saml.sp_private_key.splitlines()[1] not in html
    html = admin_client.get(change_url(oidc)).content.decode()
    assert 'name="oidc_client_secret"' in html and "A secret is stored" in html
    assert 'type="password"' in html


def test_connection_change_is_audited_and_the_secret_stays_write_only(admin_client, root):
    org = make_org()
    oidc = Connection.objects.create(
        organization=org,
        protocol="oidc",
        name="Entra",
        oidc_issuer="https://login.example.test/tenant/v2.0",
        oidc_client_id="client-1",
        oidc_client_secret=CLIENT_SECRET,
    )

    # Saved without typing a secret: the stored one stays, and isn't reported as changed.
    post_change(admin_client, oidc, enabled=None)
    oidc.refresh_from_db()
    assert oidc.oidc_client_secret == CLIENT_SECRET and not oidc.enabled
    (event,) = admin_events(Event.CONNECTION_CHANGED)
    assert_admin_event(
        event, root, org, action="change", model="sso.connection", object_id=oidc.pk
    )
    assert event.detail["fields"] == ["enabled"]
    assert event.detail["changes"] == {"enabled": [True, False]}
    assert event.detail["connection"] == str(oidc.public_id)

    # A new secret: stored, its *name* audited, its value nowhere.
    new_secret = "rotated-secret-9d8c7b6a-never-logged"
    post_change(admin_client, oidc, oidc_client_secret=new_secret)
    oidc.refresh_from_db()
    assert oidc.oidc_client_secret == new_secret
    event = admin_events(Event.CONNECTION_CHANGED)[-1]
    assert event.detail["fields"] == ["oidc_client_secret"]
    assert "changes" not in event.detail
    assert_no_secrets(CLIENT_SECRET, new_secret)


def test_saml_connection_change_and_certificate_delete(admin_client, root):
    org = make_org()
    saml = make_saml_connection(org)
    key = saml.sp_private_key
    cert = saml.certificates.get()
    data = form_data(admin_client.get(change_url(saml)))
    prefix = next(k for k, v in data.items() if v == str(cert.pk) and k.endswith("-id"))

    post_change(
        admin_client,
        saml,
        allow_sha1="on",
        **{prefix.replace("-id", "-DELETE"): "on"},
    )

    saml.refresh_from_db()
    assert saml.allow_sha1 and saml.sp_private_key == key  # the key is untouched
    assert not saml.certificates.exists()
    conn_event, cert_event = admin_events(Event.CONNECTION_CHANGED)
    assert conn_event.detail["fields"] == ["allow_sha1"]
    assert conn_event.detail["changes"] == {"allow_sha1": [False, True]}
    assert_admin_event(
        cert_event, root, org, action="delete", model="sso.idpcertificate", object_id=cert.pk
    )
    assert cert_event.detail["object"] == cert.sha256_fingerprint
    assert cert_event.detail["connection"] == str(saml.public_id)
    assert_no_secrets(key, key.splitlines()[1])


# --- org identities: an operator's delink ---------------------------------------------------


def test_deleting_an_org_identity_is_an_audited_delink(admin_client, root):
    org = make_org()
    connection = make_saml_connection(org)
    jane = User.objects.create_user("jane@acme.test", PASSWORD)
    identity = OrgIdentity.objects.create(connection=connection, subject="s-1", user=jane)
    pk = identity.pk

    assert admin_client.get(reverse("admin:sso_orgidentity_add")).status_code == 403
    response = admin_client.post(
        reverse("admin:sso_orgidentity_delete", args=[pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    assert not OrgIdentity.objects.exists()
    (event,) = admin_events(Event.SSO_DELINKED)
    assert_admin_event(event, root, org, action="delete", model="sso.orgidentity", object_id=pk)
    assert event.detail["user_id"] == jane.pk
    assert event.detail["subject"] == "s-1"
    assert event.detail["connection"] == connection.pk


def test_org_identity_cannot_be_repointed_in_the_admin(admin_client):
    org = make_org()
    connection = make_saml_connection(org)
    jane = User.objects.create_user("jane@acme.test", PASSWORD)
    mallory = User.objects.create_user("mallory@example.test", PASSWORD)
    identity = OrgIdentity.objects.create(connection=connection, subject="s-1", user=jane)

    response = admin_client.post(
        change_url(identity),
        {"connection": connection.pk, "subject": "s-1", "user": mallory.pk, "email": ""},
    )

    assert response.status_code == 403
    identity.refresh_from_db()
    assert identity.user == jane


# --- users ----------------------------------------------------------------------------------


def test_user_flags_and_admin_password_set_are_audited_without_the_hash(admin_client, root):
    jane = User.objects.create_user("jane@acme.test", PASSWORD)

    post_change(admin_client, jane, is_staff="on", is_superuser="on", is_active=None)
    jane.refresh_from_db()
    assert jane.is_staff and jane.is_superuser and not jane.is_active
    (event,) = admin_events(Event.ADMIN_CHANGED)
    assert_admin_event(event, root, None, action="change", model="accounts.user", object_id=jane.pk)
    assert event.detail["fields"] == ["is_active", "is_staff", "is_superuser"]
    assert event.detail["changes"] == {
        "is_active": [True, False],
        "is_staff": [False, True],
        "is_superuser": [False, True],
    }

    old_hash = jane.password
    new_password = "a brand new passphrase 42"
    response = admin_client.post(
        reverse("admin:auth_user_password_change", args=[jane.pk]),
        {"password1": new_password, "password2": new_password, "usable_password": "true"},
    )
    assert response.status_code == 302
    jane.refresh_from_db()
    assert jane.check_password(new_password)
    password_event = admin_events(Event.ADMIN_CHANGED)[-1]
    assert_admin_event(
        password_event, root, None, action="change", model="accounts.user", object_id=jane.pk
    )
    assert password_event.detail["fields"] == ["password"]
    assert password_event.detail["password_usable"] is True
    assert_no_secrets(old_hash, jane.password, new_password, PASSWORD, "argon2")


def test_user_added_in_the_admin_is_audited(admin_client, root):
    response = admin_client.post(
        reverse("admin:accounts_user_add"),
        {"email": "new@example.test", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302
    user = User.objects.get(email="new@example.test")
    (event,) = admin_events(Event.ADMIN_CHANGED)
    assert_admin_event(event, root, None, action="add", model="accounts.user", object_id=user.pk)
    assert "password" in event.detail["fields"]
    assert "password1" not in event.detail["fields"]
    assert_no_secrets(user.password, PASSWORD)


def test_a_failed_admin_password_set_writes_nothing(admin_client):
    jane = User.objects.create_user("jane@acme.test", PASSWORD)
    response = admin_client.post(
        reverse("admin:auth_user_password_change", args=[jane.pk]),
        {"password1": "one thing", "password2": "another", "usable_password": "true"},
    )
    assert response.status_code == 200
    assert admin_events() == []


# --- programs and invitations ------------------------------------------------------------


def test_program_change_and_invitation_revoke_and_delete(admin_client, root):
    org = make_org()
    program = Program.objects.create(organization=org, slug="ds", name="Data Science")

    post_change(admin_client, program, name="Data Science II")
    (event,) = admin_events(Event.ORG_CHANGED)
    assert_admin_event(
        event, root, org, action="change", model="programs.program", object_id=program.pk
    )
    assert event.detail["changes"] == {"name": ["Data Science", "Data Science II"]}

    create_invitations(program, ["a@acme.test", "b@acme.test"], send=False)
    first, second = Invitation.objects.order_by("email")
    page = admin_client.get(change_url(first)).content.decode()
    assert first.token_hash not in page and first.token_salt not in page

    response = admin_client.post(
        reverse("admin:programs_invitation_changelist"),
        {"action": "revoke", "_selected_action": [first.pk]},
    )
    assert response.status_code == 302
    first.refresh_from_db()
    assert first.status == Invitation.Status.REVOKED
    revoked = AuditEvent.objects.get(event=Event.INVITATION_REVOKED)
    assert revoked.actor_id == root.pk and revoked.organization_id == org.pk

    second_pk = second.pk
    response = admin_client.post(
        reverse("admin:programs_invitation_delete", args=[second_pk]), {"post": "yes"}
    )
    assert response.status_code == 302
    deleted = admin_events(Event.ORG_CHANGED, model="programs.invitation")[0]
    assert_admin_event(
        deleted, root, org, action="delete", model="programs.invitation", object_id=second_pk
    )
    assert_no_secrets(second.token_hash, second.token_salt)



def test_refused_admin_input_writes_nothing(admin_client):
    """A domain verified by another org can't be claimed as verified here: the form says so,
    and neither the org nor the audit log changes (no event for a write that didn't happen)."""
    make_org("globex", domains=("globex.test",))
    org = make_org()
    url = change_url(org)
    data = form_data(admin_client.get(url))
    total = int(data["domains-TOTAL_FORMS"])
    data.update(
        {
            "name": "Acme Renamed",
            "domains-TOTAL_FORMS": str(total + 1),
            f"domains-{total}-name": "GLOBEX.test",
            f"domains-{total}-verified": "on",
            f"domains-{total}-organization": str(org.pk),
        }
    )

    response = admin_client.post(url, data)

    assert response.status_code == 200
    org.refresh_from_db()
    assert org.name == "Acme Corp"
    assert not Domain.objects.filter(organization=org, name="globex.test").exists()
    assert admin_events() == []
