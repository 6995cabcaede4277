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


class Invitation(models.Model):
    """Invites one email address to one program (spec 1).

    The link's token is never stored: only its SHA-256 (`token_hash`, for lookup) and a
    random `token_salt` from which `orglogin.programs.tokens` re-derives the token with the
    server's secret when the mail is sent. A leaked database therefore yields no usable link.
    """

    class Status(models.TextChoices):
        PENDING = "pending"
        USED = "used"
        REVOKED = "revoked"

    class Delivery(models.TextChoices):
        NOT_SENT = "not_sent", "not sent (link printed)"
        QUEUED = "queued"
        SENDING = "sending"
        RETRY = "retry", "waiting to retry"
        SENT = "sent"
        FAILED = "failed"

    program = models.ForeignKey(Program, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    token_salt = models.CharField(max_length=32)
    token_hash = models.CharField(max_length=64, unique=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
    )
    used_at = models.DateTimeField(null=True, blank=True)
    used_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="used_invitations",
    )
    revoked_at = models.DateTimeField(null=True, blank=True)
    delivery = models.CharField(max_length=8, choices=Delivery.choices, default=Delivery.QUEUED)
    send_attempts = models.PositiveSmallIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["program", "email"]),
            models.Index(fields=["delivery"]),
        ]

    def __str__(self) -> str:
        return f"{self.email} → {self.program}"
