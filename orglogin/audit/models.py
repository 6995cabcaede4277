from django.conf import settings
from django.db import models


class AuditEvent(models.Model):
    """One security-relevant event (spec 6). Written by `orglogin.audit.record`, never edited."""

    class Outcome(models.TextChoices):
        SUCCESS = "success"
        FAILURE = "failure"

    reference = models.CharField(max_length=16, unique=True)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    event = models.CharField(max_length=64, db_index=True)
    outcome = models.CharField(max_length=8, choices=Outcome.choices, default=Outcome.SUCCESS)
    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_events",
    )
    # Kept even when the account is deleted, so support can still read the trail.
    actor_label = models.CharField(max_length=254, blank=True)
    organization = models.ForeignKey(
        "organizations.Organization",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="audit_events",
    )
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=512, blank=True)
    # Machine-readable cause (which check failed, which link was made); never shown to learners.
    detail = models.JSONField(default=dict, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["organization", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.reference} {self.event} {self.outcome}"
