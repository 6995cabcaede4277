from django.contrib import admin
from django.db import models
from django.utils.html import format_html_join

from orglogin.sso.models import Connection, IdpCertificate, OrgIdentity


class IdpCertificateInline(admin.TabularInline):
    model = IdpCertificate
    extra = 0
    fields = ("sha256_fingerprint", "not_after", "source", "added_at")
    readonly_fields = fields
    can_delete = True

    def has_add_permission(self, request, obj=None):
        return False  # certificates come from metadata (sso.connections), with fingerprints


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    list_display = ("name", "organization", "protocol", "enabled", "allow_idp_initiated")
    list_filter = ("protocol", "enabled")
    search_fields = ("name", "organization__name", "organization__slug", "idp_entity_id")
    inlines = [IdpCertificateInline]
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    # The SP private key never leaves the server, not even to the admin.
    exclude = ("sp_private_key",)
    readonly_fields = (
        "public_id",
        "sp_endpoints",
        "sp_certificate",
        "metadata_refreshed_at",
        "created_at",
        "updated_at",
    )

    @admin.display(description="What to paste into the IdP")
    def sp_endpoints(self, obj):
        if obj is None or obj.pk is None:
            return "-"
        from orglogin.sso.connections import describe_connection

        info = describe_connection(obj)
        keys = ("sp_entity_id", "acs_url", "metadata_url", "redirect_uri")
        rows = [(k, info[k]) for k in keys if k in info]
        return format_html_join("", "<div><strong>{}</strong>: <code>{}</code></div>", rows)


@admin.register(OrgIdentity)
class OrgIdentityAdmin(admin.ModelAdmin):
    list_display = ("subject", "connection", "user", "email", "created_at", "last_login_at")
    list_filter = ("connection__organization",)
    search_fields = ("subject", "email", "user__email")
    raw_id_fields = ("user",)
    readonly_fields = ("created_at", "last_login_at")
