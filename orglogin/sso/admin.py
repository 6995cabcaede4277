from django import forms
from django.contrib import admin
from django.db import models
from django.utils.html import format_html_join

from orglogin.audit import Event
from orglogin.audit.admin import AuditedAdminMixin
from orglogin.sso.models import Connection, IdpCertificate, OrgIdentity


class IdpCertificateInline(admin.TabularInline):
    model = IdpCertificate
    extra = 0
    fields = ("sha256_fingerprint", "not_after", "source", "added_at")
    readonly_fields = fields
    can_delete = True

    def has_add_permission(self, request, obj=None):
        return False  # certificates come from metadata (sso.connections), with fingerprints


class ConnectionForm(forms.ModelForm):
    """The OIDC client secret is write-only: the page never carries it (not even in a
    password field's value); an empty field keeps the stored secret."""

    oidc_client_secret = forms.CharField(
        label="OIDC client secret",
        required=False,
        strip=False,
        max_length=Connection._meta.get_field("oidc_client_secret").max_length,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Write-only. Leave empty to keep the current secret; type a new one to "
        "replace it.",
    )

    class Meta:
        model = Connection
        # Every editable field but the SP private key, which never leaves the server.
        fields = tuple(
            f.name
            for f in Connection._meta.get_fields()
            if getattr(f, "editable", False)
            and f.concrete
            and f.name not in ("id", "sp_private_key")
        )

        @staticmethod
        def formfield_callback(db_field, **kwargs):
            if isinstance(db_field, models.URLField):
                kwargs.setdefault("assume_scheme", "https")
            return db_field.formfield(**kwargs)

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # Compared against an empty initial value, the field counts as changed only when a
        # new secret is typed (and only its name reaches the audit log).
        self.initial["oidc_client_secret"] = ""
        if self.instance.pk and self.instance.oidc_client_secret:
            self.fields["oidc_client_secret"].help_text = (
                "A secret is stored (not shown). " + self.fields["oidc_client_secret"].help_text
            )

    def clean_oidc_client_secret(self) -> str:
        return self.cleaned_data.get("oidc_client_secret") or self.instance.oidc_client_secret


@admin.register(Connection)
class ConnectionAdmin(AuditedAdminMixin, admin.ModelAdmin):
    form = ConnectionForm
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
    audit_event = Event.CONNECTION_CHANGED
    # Never a secret here (the mixin refuses sp_private_key and oidc_client_secret anyway).
    audit_value_fields = (
        "organization",
        "protocol",
        "name",
        "enabled",
        "allow_idp_initiated",
        "allow_sha1",
        "idp_entity_id",
        "idp_sso_url",
        "idp_slo_url",
        "idp_wants_signed_requests",
        "metadata_url",
        "oidc_issuer",
        "oidc_client_id",
        "oidc_scopes",
        "oidc_preset",
    )

    def audit_extra(self, obj):
        if isinstance(obj, Connection):
            return {"connection": str(obj.public_id)}
        return {"connection": str(obj.connection.public_id)}

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
class OrgIdentityAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """View and delete only. Deleting is an operator's delink (audited as one). Adding or
    re-pointing a link here would link without any of the proofs spec 6 requires (JIT
    sign-up, password re-authentication, fresh SSO login), so the admin can't."""

    list_display = ("subject", "connection", "user", "email", "created_at", "last_login_at")
    list_filter = ("connection__organization",)
    search_fields = ("subject", "email", "user__email")
    raw_id_fields = ("user",)
    readonly_fields = ("created_at", "last_login_at")
    audit_event = Event.SSO_DELINKED

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def audit_extra(self, obj):
        # As the learner's own delink records it (accounts.linked), plus whose link it was.
        return {"connection": obj.connection_id, "subject": obj.subject, "user_id": obj.user_id}
