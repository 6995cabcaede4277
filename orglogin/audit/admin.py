from django.contrib import admin

from orglogin.audit.models import AuditEvent


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = (
        "created_at",
        "reference",
        "event",
        "outcome",
        "actor_label",
        "organization",
        "ip_address",
    )
    list_filter = ("outcome", "event", "organization")
    search_fields = ("reference", "actor_label", "event")
    date_hierarchy = "created_at"

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]
