from django.contrib import admin, messages

from orglogin.audit import Event
from orglogin.audit.admin import AuditedAdminMixin
from orglogin.programs.invite import revoke_invitation
from orglogin.programs.models import Certificate, Invitation, Program, ProgramMembership


@admin.register(Program)
class ProgramAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("name", "slug", "organization", "created_at")
    list_filter = ("organization",)
    search_fields = ("name", "slug", "organization__name")
    list_select_related = ("organization",)
    # Programs are part of their org's setup (as programs.actions.create_program records).
    audit_event = Event.ORG_CHANGED
    audit_value_fields = ("organization", "slug", "name")


@admin.register(ProgramMembership)
class ProgramMembershipAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("user", "program", "joined_at")
    list_filter = ("program__organization", "program")
    search_fields = ("user__email", "program__name")
    list_select_related = ("user", "program")
    raw_id_fields = ("user",)
    audit_event = Event.ORG_CHANGED
    audit_value_fields = ("user", "program")


@admin.register(Certificate)
class CertificateAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("course_name", "user", "issued_at", "verification_code")
    search_fields = ("course_name", "user__email", "verification_code")
    date_hierarchy = "issued_at"
    raw_id_fields = ("user",)
    audit_event = Event.ADMIN_CHANGED
    audit_value_fields = ("user", "course_name", "issued_at")


@admin.register(Invitation)
class InvitationAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """View, revoke (through `invite.revoke_invitation`, which audits) and delete (audited
    by the mixin). Invitations are made by `invite.create_invitations` (the console and the
    CLI), which mails the link; the token's hash and salt are never shown."""

    list_display = ("email", "program", "status", "delivery", "created_at", "expires_at")
    list_filter = ("status", "delivery", "program__organization")
    search_fields = ("email", "program__name")
    list_select_related = ("program__organization",)
    exclude = ("token_hash", "token_salt")
    actions = ["revoke"]
    audit_event = Event.ORG_CHANGED

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    @admin.action(description="Revoke the selected invitations", permissions=["view"])
    def revoke(self, request, queryset):
        pending = queryset.filter(status=Invitation.Status.PENDING).select_related(
            "program__organization"
        )
        count = 0
        for invitation in pending:
            revoke_invitation(invitation, actor=request.user, request=request)
            count += 1
        self.message_user(request, f"{count} invitation(s) revoked.", messages.SUCCESS)
