from django.contrib import admin

from orglogin.organizations.models import Domain, Membership, Organization


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0
    fields = ("name", "verified", "verified_at", "dns_txt_record")
    readonly_fields = ("verified_at", "dns_txt_record")


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    fields = ("user", "role", "created_at")
    readonly_fields = ("created_at",)
    raw_id_fields = ("user",)


@admin.register(Organization)
class OrganizationAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "match_subdomains", "jit_signup_enabled", "created_at")
    search_fields = ("name", "slug", "domains__name")
    inlines = [DomainInline, MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "organization", "role", "created_at")
    list_filter = ("role", "organization")
    search_fields = ("user__email", "organization__name")
    raw_id_fields = ("user",)
