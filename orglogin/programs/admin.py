from django.contrib import admin

from orglogin.programs.models import Certificate, Program, ProgramMembership


@admin.register(Program)
class ProgramAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "organization", "created_at")
    list_filter = ("organization",)
    search_fields = ("name", "slug", "organization__name")
    list_select_related = ("organization",)


@admin.register(ProgramMembership)
class ProgramMembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "program", "joined_at")
    list_filter = ("program__organization", "program")
    search_fields = ("user__email", "program__name")
    list_select_related = ("user", "program")
    raw_id_fields = ("user",)


@admin.register(Certificate)
class CertificateAdmin(admin.ModelAdmin):
    list_display = ("course_name", "user", "issued_at", "verification_code")
    search_fields = ("course_name", "user__email", "verification_code")
    date_hierarchy = "issued_at"
    raw_id_fields = ("user",)
