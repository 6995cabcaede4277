from allauth.account.decorators import secure_admin_login
from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import BaseUserCreationForm, UserChangeForm
from django.db import router, transaction

from orglogin.accounts.models import User
from orglogin.audit import Event
from orglogin.audit.admin import AuditedAdminMixin

# The admin's own login form would bypass allauth's login rate limits and MFA: send it
# through allauth's log-in screen instead.
admin.site.login = secure_admin_login(admin.site.login)


class UserCreationForm(BaseUserCreationForm):
    class Meta:
        model = User
        fields = ("email",)


class UserChangeAdminForm(UserChangeForm):
    class Meta:
        model = User
        fields = "__all__"


@admin.register(User)
class UserAdmin(AuditedAdminMixin, DjangoUserAdmin):
    """Django's UserAdmin for an email-only user (no username). Every write is audited
    (`admin.changed`): the flags with their values, a password only as "changed"."""

    form = UserChangeAdminForm
    add_form = UserCreationForm
    ordering = ("email",)
    list_display = ("email", "first_name", "last_name", "is_staff", "is_active", "date_joined")
    search_fields = ("email", "first_name", "last_name", "alternative_email")
    fieldsets = (
        (None, {"fields": ("email", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name", "alternative_email")}),
        (
            "Permissions",
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = (
        (None, {"classes": ("wide",), "fields": ("email", "password1", "password2")}),
    )
    audit_event = Event.ADMIN_CHANGED
    audit_value_fields = (
        "email",
        "is_active",
        "is_staff",
        "is_superuser",
        "groups",
        "user_permissions",
    )

    def user_change_password(self, request, id, form_url=""):
        """Django's "set password" page writes without save_model: audited here, by whether
        the stored hash changed (the hash itself is never recorded)."""
        with transaction.atomic(using=router.db_for_write(self.model)):
            user = self.get_object(request, unquote(id))
            before = user.password if user is not None else None
            response = super().user_change_password(request, id, form_url)
            if user is not None and request.method == "POST":
                user.refresh_from_db(fields=["password"])
                if user.password != before:
                    self.audit(
                        request,
                        user,
                        "change",
                        fields=["password"],
                        password_usable=user.has_usable_password(),
                    )
            return response
