"""The audit log in the Django admin (read only), and `AuditedAdminMixin`, which makes every
other admin write an audit event (spec 6: "admin change").

The admin edits models directly, so it cannot call the `*, actor` actions for each field; the
mixin is the admin's equivalent: each save or delete of an object, inline rows included, writes
one event in the admin's own transaction, with the admin as actor. The detail names the model,
the object, the action and the changed field *names*. Values are recorded only for the
fields an admin lists in `audit_value_fields` (roles, flags), never for secrets.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import NestedObjects
from django.db import models, router, transaction

from orglogin.audit import Event, record
from orglogin.audit.models import AuditEvent

# Form fields that carry a secret or a credential: only their name is ever recorded (the
# form's password1/password2 as "password"), whatever an admin lists in `audit_value_fields`.
SECRET_FIELDS = frozenset(
    {
        "password",
        "password1",
        "password2",
        "sp_private_key",
        "oidc_client_secret",
        "token_hash",
        "token_salt",
        "verification_token",
    }
)
PASSWORD_FORM_FIELDS = {"password1": "password", "password2": "password"}


def organization_of(obj: Any):
    """The organization an object belongs to (through connection, program...), or None."""
    from orglogin.organizations.models import Organization

    for _ in range(4):
        if obj is None or isinstance(obj, Organization):
            return obj
        for attr in ("organization", "connection", "program"):
            if hasattr(obj, f"{attr}_id"):
                obj = getattr(obj, attr) if getattr(obj, f"{attr}_id") is not None else None
                break
        else:
            return None
    return None


def _plain(value: Any) -> Any:
    """A JSON-safe form of a form value (model instances by primary key)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, list | tuple | set | models.QuerySet):
        return sorted((_plain(v) for v in value), key=str)
    return str(value)


def changed_fields(form) -> list[str]:
    names = (PASSWORD_FORM_FIELDS.get(name, name) for name in getattr(form, "changed_data", []))
    return sorted(set(names))


def value_changes(form, names: tuple[str, ...]) -> dict[str, list[Any]] | None:
    """{field: [before, after]} for the listed, changed, non-secret fields."""
    changes = {
        name: [_plain(form.initial.get(name)), _plain(form.cleaned_data.get(name))]
        for name in names
        if name in form.changed_data and name not in SECRET_FIELDS
    }
    return changes or None


def cascade_counts(obj: models.Model) -> dict[str, int] | None:
    """What else a delete takes with it (`{"sso.orgidentity": 3}`): a connection's delete
    delinks every identity of it."""
    collector = NestedObjects(using=router.db_for_write(obj.__class__))
    collector.collect([obj])
    counts = {
        model._meta.label_lower: len(instances)
        for model, instances in collector.model_objs.items()
        if instances and model is not obj.__class__
    }
    return counts or None


class AuditedAdminMixin:
    """Put first in a ModelAdmin's bases (or an inline's parent admin's). Subclasses set
    `audit_event`, optionally `audit_value_fields`, or override `audit_event_for`."""

    audit_event: Event = Event.ADMIN_CHANGED
    audit_value_fields: tuple[str, ...] = ()

    def audit_event_for(self, obj: models.Model, action: str) -> Event:
        return self.audit_event

    def audit_extra(self, obj: models.Model) -> dict[str, Any]:
        """More detail for this admin's events (ids that stay readable after a delete)."""
        return {}

    def audit(
        self,
        request,
        obj: models.Model,
        action: str,
        *,
        form=None,
        fields: list[str] | None = None,
        object_id: Any = None,
        organization: Any = None,
        value_fields: tuple[str, ...] | None = None,
        **extra: Any,
    ) -> AuditEvent:
        if organization is None and action != "delete":
            organization = organization_of(obj)
        if form is not None:
            fields = changed_fields(form)
        changes = None
        if form is not None and hasattr(form, "cleaned_data"):
            names = self.audit_value_fields if value_fields is None else value_fields
            changes = value_changes(form, names)
        return record(
            self.audit_event_for(obj, action),
            actor=request.user,
            organization=organization,
            request=request,
            via="admin",
            model=obj._meta.label_lower,
            object_id=object_id if object_id is not None else obj.pk,
            object=str(obj)[:200],
            action=action,
            fields=fields,
            changes=changes,
            **{**self.audit_extra(obj), **extra},
        )

    # --- the admin's hooks ----------------------------------------------------------------
    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        self.audit(request, obj, "change" if change else "add", form=form)

    def delete_model(self, request, obj):
        with transaction.atomic(using=router.db_for_write(obj.__class__)):
            before = self._before_delete(obj)
            super().delete_model(request, obj)
            self.audit(request, obj, "delete", **before)

    def delete_queryset(self, request, queryset):
        # The changelist's "delete selected" action: one event per object, all or nothing.
        with transaction.atomic(using=router.db_for_write(queryset.model)):
            for obj in queryset:
                before = self._before_delete(obj)
                obj.delete()
                self.audit(request, obj, "delete", **before)

    def save_formset(self, request, form, formset, change):
        value_fields = next(
            (
                getattr(inline, "audit_value_fields", ())
                for inline in self.get_inline_instances(request, form.instance)
                if inline.model is formset.model
            ),
            (),
        )
        deleted = [
            (f.instance, self._before_delete(f.instance))
            for f in formset.deleted_forms
            if f.instance.pk is not None
        ]
        super().save_formset(request, form, formset, change)
        forms_by_instance = {id(f.instance): f for f in formset.forms}
        for action, objs in (
            ("add", formset.new_objects),
            ("change", [obj for obj, _names in formset.changed_objects]),
        ):
            for obj in objs:
                self.audit(
                    request,
                    obj,
                    action,
                    form=forms_by_instance.get(id(obj)),
                    value_fields=value_fields,
                )
        for obj, before in deleted:
            self.audit(request, obj, "delete", **before)

    @staticmethod
    def _before_delete(obj: models.Model) -> dict[str, Any]:
        """What the delete event needs, read while the object still exists."""
        from orglogin.organizations.models import Organization

        return {
            "object_id": obj.pk,
            # A deleted org can't be the event's org (the link would be nulled at once).
            "organization": None if isinstance(obj, Organization) else organization_of(obj),
            "cascade": cascade_counts(obj),
        }


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
