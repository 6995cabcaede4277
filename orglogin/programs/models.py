from django.conf import settings
from django.db import models

from orglogin.organizations.models import Organization, slug_validator


class Program(models.Model):
    organization = models.ForeignKey(
        Organization, on_delete=models.CASCADE, related_name="programs"
    )
    slug = models.CharField(max_length=64, validators=[slug_validator])
    name = models.CharField(max_length=200)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["organization", "slug"], name="programs_program_slug")
        ]

    def __str__(self) -> str:
        return self.name


class ProgramMembership(models.Model):
    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="members")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="program_memberships"
    )
    joined_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["program", "user"], name="programs_membership_once")
        ]

    def __str__(self) -> str:
        return f"{self.user} in {self.program}"


class Certificate(models.Model):
    """A course certificate; belongs to an account and survives every link and delink."""

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="certificates"
    )
    course_name = models.CharField(max_length=200)
    issued_at = models.DateField()
    verification_code = models.CharField(max_length=32, unique=True)

    class Meta:
        ordering = ["-issued_at"]

    def __str__(self) -> str:
        return f"{self.course_name} ({self.user})"
