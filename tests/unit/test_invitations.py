"""Invitations: hashed single-use tokens, expiry, revocation, background mail exactly once."""

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from orglogin.audit.models import AuditEvent
from orglogin.core.errors import ErrorCode
from orglogin.organizations.models import Membership, Organization
from orglogin.programs import tokens
from orglogin.programs.invite import (
    InvitationInputError,
    InvitationProblem,
    accept_invitation,
    create_invitations,
    find_invitation,
    normalize_emails,
    revoke_invitation,
)
from orglogin.programs.models import Invitation, Program, ProgramMembership
from orglogin.programs.tasks import MAX_ATTEMPTS, send_invitations
from tests.support.tasks import run_task_queue

pytestmark = pytest.mark.django_db


@pytest.fixture
def program():
    org = Organization.objects.create(slug="acme", name="Acme Corp")
    return Program.objects.create(organization=org, slug="data", name="Data Literacy")


def token_of(issued) -> str:
    return issued.link.rstrip("/").rsplit("/", 1)[1]




def test_token_is_stored_only_as_a_hash(program):
    [issued] = create_invitations(program, ["jane@acme.test"], send=False)
    token = token_of(issued)
    row = Invitation.objects.get()
    assert len(token) >= 43  # 256 bits
    assert token not in {row.token_hash, row.token_salt}
    assert row.token_hash == tokens.token_hash(token)
    assert find_invitation(token).pk == row.pk


def test_forged_and_truncated_tokens_are_refused(program):
    [issued] = create_invitations(program, ["jane@acme.test"], send=False)
    token = token_of(issued)
    for forged in (token[:-1], token[:-1] + ("A" if token[-1] != "A" else "B"), "x" * 43, ""):
        with pytest.raises(InvitationProblem) as problem:
            find_invitation(forged)
        assert problem.value.code == ErrorCode.INVITATION_INVALID


def test_expired_invitation_is_refused(program):
    [issued] = create_invitations(program, ["jane@acme.test"], send=False)
    Invitation.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    with pytest.raises(InvitationProblem) as problem:
        find_invitation(token_of(issued))
    assert problem.value.code == ErrorCode.INVITATION_EXPIRED


def test_default_lifetime_is_fourteen_days(program):
    create_invitations(program, ["jane@acme.test"], send=False)
    lifetime = Invitation.objects.get().expires_at - timezone.now()
    assert timedelta(days=13, hours=23) < lifetime <= timedelta(days=14)


def test_revoked_invitation_is_refused_and_audited(program):
    [issued] = create_invitations(program, ["jane@acme.test"], send=False)
    revoke_invitation(issued.invitation)
    with pytest.raises(InvitationProblem) as problem:
        find_invitation(token_of(issued))
    assert problem.value.code == ErrorCode.INVITATION_REVOKED
    assert AuditEvent.objects.filter(event="program.invitation_revoked").count() == 1


def test_reinviting_revokes_the_earlier_link(program):
    [first] = create_invitations(program, ["jane@acme.test"], send=False)
    [second] = create_invitations(program, ["Jane@ACME.test"], send=False)
    with pytest.raises(InvitationProblem):
        find_invitation(token_of(first))
    assert find_invitation(token_of(second)).email == "Jane@acme.test"


def test_accepting_uses_the_invitation_once(program, django_user_model):
    user = django_user_model.objects.create_user("jane@acme.test", "a long passphrase")
    [issued] = create_invitations(program, ["jane@acme.test"], send=False)
    org_id = program.organization_id
    accept_invitation(
        issued.invitation.pk, user, organization_id=org_id, asserted_email="jane@acme.test"
    )
    assert ProgramMembership.objects.filter(program=program, user=user).exists()
    assert Membership.objects.filter(organization=program.organization, user=user).exists()
    with pytest.raises(InvitationProblem) as problem:
        accept_invitation(
            issued.invitation.pk, user, organization_id=org_id, asserted_email="jane@acme.test"
        )
    assert problem.value.code == ErrorCode.INVITATION_USED
    with pytest.raises(InvitationProblem):
        find_invitation(token_of(issued))


def test_an_identity_of_another_org_cannot_redeem(program, django_user_model):
    other = Organization.objects.create(slug="globex", name="Globex")
    user = django_user_model.objects.create_user("eve@globex.test", "a long passphrase")
    [issued] = create_invitations(program, ["jane@acme.test"], send=False)
    with pytest.raises(InvitationProblem):
        accept_invitation(
            issued.invitation.pk, user, organization_id=other.pk, asserted_email="eve@globex.test"
        )
    assert not ProgramMembership.objects.exists()
    assert Invitation.objects.get().status == Invitation.Status.PENDING


def test_alias_mismatch_is_accepted_and_recorded(program, django_user_model):
    user = django_user_model.objects.create_user("j.doe@acme.test", "a long passphrase")
    [issued] = create_invitations(program, ["jane@acme.test"], send=False)
    accept_invitation(
        issued.invitation.pk,
        user,
        organization_id=program.organization_id,
        asserted_email="j.doe@acme.test",
    )
    event = AuditEvent.objects.get(event="program.invitation_used")
    assert event.detail["email_mismatch"] is True
    assert event.detail["invited_email"] == "jane@acme.test"


def test_bad_address_writes_nothing(program):
    with pytest.raises(InvitationInputError, match="entry 2"):
        create_invitations(program, ["ok@acme.test", "not-an-email", "x@acme.test"])
    assert not Invitation.objects.exists()
    assert not AuditEvent.objects.exists()


def test_normalize_dedupes_case_insensitively_and_lowercases_domain():
    assert normalize_emails([" A@X.test", "a@x.TEST", "b@x.test "]) == ["A@x.test", "b@x.test"]


def test_mail_names_org_and_program_and_is_sent_exactly_once(program):
    create_invitations(program, ["jane@acme.test", "sam@acme.test"])
    assert mail.outbox == []  # nothing is sent in the caller's request
    run_task_queue()
    run_task_queue()  # a second worker pass finds nothing left to send
    assert sorted(m.to[0] for m in mail.outbox) == ["jane@acme.test", "sam@acme.test"]
    message = mail.outbox[0]
    assert "Acme Corp" in message.subject and "Data Literacy" in message.subject
    html = message.alternatives[0][0]
    assert "/programs/invitation/" in message.body and "/programs/invitation/" in html
    assert set(Invitation.objects.values_list("delivery", flat=True)) == {"sent"}


def test_the_same_batch_run_twice_mails_once(program):
    issued = create_invitations(program, ["jane@acme.test"], send=False)
    Invitation.objects.update(delivery=Invitation.Delivery.QUEUED)
    ids = [i.invitation.pk for i in issued]
    send_invitations.call(ids)
    send_invitations.call(ids)
    assert len(mail.outbox) == 1


def test_mailed_link_opens_the_landing_page(client, program):
    create_invitations(program, ["jane@acme.test"])
    run_task_queue()
    link = next(line for line in mail.outbox[0].body.splitlines() if "/invitation/" in line)
    response = client.get(link.replace("http://testserver", ""))
    assert response.status_code == 200
    assert b"Acme Corp" in response.content and b"Data Literacy" in response.content
    assert b"Log in with your organization" in response.content


def test_failed_send_is_retried_then_reported(program, settings):
    settings.EMAIL_BACKEND = "tests.unit.test_invitations.FailingBackend"
    create_invitations(program, ["jane@acme.test"], send=False)
    Invitation.objects.update(delivery=Invitation.Delivery.QUEUED)
    pk = Invitation.objects.get().pk
    for attempt in range(1, MAX_ATTEMPTS + 1):
        result = send_invitations.call([pk])
        row = Invitation.objects.get()
        assert row.send_attempts == attempt
        if attempt < MAX_ATTEMPTS:
            assert result["retry"] == 1 and row.delivery == "retry"
    assert row.delivery == "failed"
    assert "SMTP down" in row.last_error
    failure = AuditEvent.objects.get(event="program.invitation_delivery_failed")
    assert failure.outcome == "failure" and failure.detail["email"] == "jane@acme.test"


class FailingBackend:
    def __init__(self, *args, **kwargs):
        pass

    def open(self):
        raise ConnectionRefusedError("SMTP down")

    def close(self):
        pass

    def send_messages(self, messages):
        raise ConnectionRefusedError("SMTP down")


@pytest.mark.parametrize(
    ("mutate", "status"),
    [
        ({"status": "used"}, 410),
        ({"status": "revoked"}, 410),
        ({"expires_at": timezone.now() - timedelta(days=1)}, 410),
    ],
)
def test_landing_page_explains_unusable_links(client, program, mutate, status):
    [issued] = create_invitations(program, ["jane@acme.test"], send=False)
    Invitation.objects.update(**mutate)
    response = client.get(issued.link.replace("http://testserver", ""))
    assert response.status_code == status
    assert b"/sso/?org=" not in response.content


def test_landing_page_for_unknown_token_is_404(client):
    response = client.get("/programs/invitation/not-a-real-token/")
    assert response.status_code == 404
    assert b"doesn&#x27;t work" in response.content or b"doesn't work" in response.content


def test_a_link_replaced_before_its_mail_went_out_is_never_mailed(program):
    create_invitations(program, ["jane@acme.test"])
    create_invitations(program, ["jane@acme.test"])  # re-invite before any worker ran
    run_task_queue()
    assert len(mail.outbox) == 1
    live = Invitation.objects.get(status=Invitation.Status.PENDING)
    assert live.delivery == Invitation.Delivery.SENT
    replaced = Invitation.objects.get(status=Invitation.Status.REVOKED)
    assert replaced.delivery == Invitation.Delivery.NOT_SENT


def test_a_revoked_invitation_is_not_mailed(program):
    [issued] = create_invitations(program, ["jane@acme.test"])
    revoke_invitation(issued.invitation)
    run_task_queue()
    assert mail.outbox == []
    assert Invitation.objects.get().delivery == Invitation.Delivery.NOT_SENT
