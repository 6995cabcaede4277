"""Writes to programs: actions with `*, actor` that write their audit event in the same
transaction (invitations have their own module, `invite.py`)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import transaction

from orglogin.audit import Event, record
from orglogin.organizations.models import Organization, slug_validator
from orglogin.programs.models import Program


class ProgramError(ValueError):
    """Bad input for a program action; the message is safe to show an operator."""


@transaction.atomic
def create_program(
    organization: Organization, slug: str, name: str, *, actor: Any, request=None
) -> Program:
    """A program of `organization`; its slug is unique within the org (and in its URLs)."""
    try:
        slug_validator(slug)
    except ValidationError as exc:
        raise ProgramError(f"invalid program slug {slug!r}: {exc.messages[0]}") from exc
    name = (name or "").strip()
    if not name:
        raise ProgramError("the program needs a name")
    if len(name) > Program._meta.get_field("name").max_length:
        raise ProgramError("the program name is longer than 200 characters")
    if Program.objects.filter(organization=organization, slug=slug).exists():
        raise ProgramError(f"{organization.slug} already has a program {slug!r}")
    program = Program.objects.create(organization=organization, slug=slug, name=name)
    # Programs are part of their org's setup: recorded as a change to the org.
    record(
        Event.ORG_CHANGED,
        actor=actor,
        organization=organization,
        request=request,
        action="create_program",
        program=slug,
        name=name,
    )
    return program
