"""ModelAdmin mixin that writes an audit entry, with a field-level diff, for every admin add, change and delete.

Hooks Django's own log_* calls, which the admin makes inside the transaction of the change.
"""

import hashlib
import json

from django import forms
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models

from . import services

# Values of these fields are never copied into the audit payload; only the fact that they changed.
SECRET_FIELDS = {"password"}


def _plain(value):
    if isinstance(value, models.Model):
        return value.pk
    if isinstance(value, models.QuerySet | list | tuple | set):
        return sorted((_plain(v) for v in value), key=str)
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder, default=str))


def form_diff(form) -> dict:
    """{field: [old, new]} for the fields the form changed; secrets as "<changed>"."""
    diff = {}
    for name in form.changed_data:
        field = form.fields.get(name)
        # A field typed into a password box is a secret whatever it is called (keys, tokens).
        masked_input = field is not None and isinstance(field.widget, forms.PasswordInput)
        if name in SECRET_FIELDS or "password" in name or name == "confirm_code" or masked_input:
            diff[name] = "<changed>" if "confirm" not in name else None
            continue
        old = form.initial.get(name)
        if callable(old):
            old = old()
        diff[name] = [_plain(old), _plain(form.cleaned_data.get(name))]
    return {k: v for k, v in diff.items() if v is not None}


class AuditedAdminMixin:
    def save_form(self, request, form, change):
        request._audit_diff = form_diff(form)
        return super().save_form(request, form, change)

    def log_addition(self, request, obj, message):
        services.record(request.user, "admin.add", obj, {"fields": getattr(request, "_audit_diff", {})})
        return super().log_addition(request, obj, message)

    def log_change(self, request, obj, message):
        diff = getattr(request, "_audit_diff", None)
        if diff is None:  # an action or a custom view; the message is all Django knows
            diff = {"message": str(message)}
        services.record(request.user, "admin.change", obj, {"fields": diff})
        return super().log_change(request, obj, message)

    def log_deletions(self, request, queryset):
        # Django passes the delete view's one object as a list, the bulk action's as a queryset.
        objects = list(queryset)
        for obj in objects:
            services.record(request.user, "admin.delete", obj, {"repr": str(obj)})
        if len(objects) > 1:
            services.record(
                request.user,
                "admin.bulk_delete",
                None,
                {"ids": [obj.pk for obj in objects]},
                object_type=self.model._meta.label_lower,
            )
        return super().log_deletions(request, queryset)


class AuditedImportExportMixin:
    """For django-import-export admins: audit each confirmed import and each export with the file's sha256."""

    def process_dataset(self, dataset, form, request, **kwargs):
        storage = self.get_tmp_storage_class()(
            name=form.cleaned_data["import_file_name"], encoding=None, read_mode="rb",
            **self.get_tmp_storage_class_kwargs(),
        )  # fmt: skip
        file_sha256 = hashlib.sha256(storage.read()).hexdigest()
        result = super().process_dataset(dataset, form, request, **kwargs)
        services.record(
            request.user,
            "admin.import",
            None,
            {
                "file": form.cleaned_data.get("original_file_name", ""),
                "sha256": file_sha256,
                "rows": result.total_rows,
                "totals": {k: v for k, v in result.totals.items() if v},
            },
            object_type=self.model._meta.label_lower,
        )
        return result

    def get_export_data(self, file_format, request, queryset, **kwargs):
        data = super().get_export_data(file_format, request, queryset, **kwargs)
        raw = data.encode() if isinstance(data, str) else data
        services.record(
            request.user,
            "admin.export",
            None,
            {"format": file_format.get_title(), "sha256": hashlib.sha256(raw).hexdigest(), "rows": queryset.count()},
            object_type=self.model._meta.label_lower,
        )
        return data
