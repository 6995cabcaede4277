from django import forms
from django.contrib import admin

from orglogin.audit import Event
from orglogin.audit.admin import AuditedAdminMixin
from orglogin.organizations.domains import DomainError, normalize_domain
from orglogin.organizations.models import Domain, Membership, Organization


class DomainForm(forms.ModelForm):
    class Meta:
        model = Domain
        fields = ("name", "verified")

    def clean_name(self) -> str:
        # Stored the way home realm discovery looks it up (lowercase, IDNA), as the CLI does.
        try:
            return normalize_domain(self.cleaned_data["name"])
        except DomainError as exc:
            raise forms.ValidationError(str(exc)) from exc


class DomainInline(admin.TabularInline):
    model = Domain
    form = DomainForm
    extra = 0
    fields = ("name", "verified", "verified_at", "dns_txt_record")
    readonly_fields = ("verified_at", "dns_txt_record")
    audit_value_fields = ("name", "verified")


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fields = ("user", "role", "created_at")
    readonly_fields = ("created_at",)
    raw_id_fields = ("user",)
    audit_value_fields = ("user", "role")


class MembershipAuditMixin(AuditedAdminMixin):
    def audit_extra(self, obj):
        if isinstance(obj, Membership):
            return {"user_id": obj.user_id, "role": obj.role}
        return {}


@admin.register(Organization)
class OrganizationAdmin(MembershipAuditMixin, admin.ModelAdmin):
    list_display = ("name", "slug", "match_subdomains", "jit_signup_enabled", "created_at")
    search_fields = ("name", "slug", "domains__name")
    inlines = [DomainInline, MembershipInline]
    audit_event = Event.ORG_CHANGED
    audit_value_fields = ("slug", "name", "match_subdomains", "jit_signup_enabled")


@admin.register(Membership)
class MembershipAdmin(MembershipAuditMixin, admin.ModelAdmin):
    list_display = ("user", "organization", "role", "created_at")
    list_filter = ("role", "organization")
    search_fields = ("user__email", "organization__name")
    raw_id_fields = ("user",)
    audit_event = Event.ORG_CHANGED
    audit_value_fields = ("user", "organization", "role")
