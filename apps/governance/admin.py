"""The governance console: retention policies (edited here), runs, legal holds, data subject requests."""

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.utils.translation import gettext_lazy as _

from apps.accounts.selectors import sees_all_tenants

from . import registry, retention, selectors, services, subject_requests
from .models import DataSubjectRequest, HoldScope, LegalHold, RetentionPolicy, RetentionRun


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(admin.ModelAdmin):
    list_display = ("data_class", "retention_days", "archive_before_delete", "description", "updated_at")
    readonly_fields = ("data_class", "updated_at")
    actions = ["dry_run", "apply_now"]

    def has_add_permission(self, request):
        return False  # one row per data class, made by the migration

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        # A policy reaches every tenant's data: administrators of every tenant only.
        return super().has_change_permission(request, obj) and sees_all_tenants(request.user)

    @admin.action(description=_("Dry run: count what retention would delete now"))
    def dry_run(self, request, queryset):
        names = set(queryset.values_list("data_class", flat=True))
        for row in retention.dry_run():
            if row["data_class"] in names:
                state = row["skipped"] or (_("held by %(hold)s") % {"hold": row["held_by"]} if row["held_by"] else "")
                self.message_user(request, f"{row['data_class']}: {row['count']} {state}".strip())

    @admin.action(description=_("Apply retention now (in the background)"), permissions=["change"])
    def apply_now(self, request, queryset):
        from django.db import transaction

        from .tasks import apply_retention

        transaction.on_commit(apply_retention.delay)
        self.message_user(request, _("Retention was queued."), messages.SUCCESS)


@admin.register(RetentionRun)
class RetentionRunAdmin(admin.ModelAdmin):
    list_display = ("data_class", "state", "cutoff", "deleted", "archived", "started_at", "finished_at")
    list_filter = ("data_class", "state")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class LegalHoldForm(forms.ModelForm):
    class Meta:
        model = LegalHold
        fields = ("scope", "tenant", "subject_id", "object_type", "reason", "lift_reason")

    def __init__(self, *args, user=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.user = user
        if "object_type" in self.fields:
            self.fields["object_type"].widget = forms.Select(choices=[("", "-"), *((n, n) for n in registry.CLASSES)])

    def clean(self):
        data = super().clean()
        if self.instance.pk is None:
            if data.get("scope") != HoldScope.TENANT and not sees_all_tenants(self.user):
                raise ValidationError(_("Only an administrator of every tenant may place this hold."))
            if data.get("scope") == HoldScope.TENANT and data.get("tenant") is None:
                raise ValidationError(_("Name the tenant."))
        return data


@admin.register(LegalHold)
class LegalHoldAdmin(admin.ModelAdmin):
    form = LegalHoldForm
    list_display = ("pk", "scope", "tenant", "subject_id", "object_type", "reason", "placed_at", "lifted_at")
    list_filter = ("scope",)
    list_select_related = ("tenant",)
    raw_id_fields = ("tenant",)

    def get_queryset(self, request):
        return selectors.holds_visible_to(request.user)

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)

        class WithUser(form):
            def __init__(self, *args, **kw):
                super().__init__(*args, user=request.user, **kw)

        return WithUser

    def get_readonly_fields(self, request, obj=None):
        if obj is None:
            return ("lift_reason",)
        fixed = ("scope", "tenant", "subject_id", "object_type", "reason", "placed_by", "placed_at", "lifted_at")
        return (*fixed, "lifted_by", "lift_reason") if obj.lifted_at else fixed

    def has_delete_permission(self, request, obj=None):
        return False  # lifted, never deleted: the hold's history is evidence

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        if not change:
            placed = services.place_hold(
                request.user, scope=data["scope"], reason=data["reason"], tenant=data.get("tenant"),
                subject_id=data.get("subject_id", ""), object_type=data.get("object_type", ""),
            )  # fmt: skip
            obj.pk = placed.pk
        elif data.get("lift_reason") and obj.lifted_at is None:
            services.lift_hold(LegalHold.objects.get(pk=obj.pk), request.user, reason=data["lift_reason"])


class DataSubjectRequestForm(forms.ModelForm):
    class Meta:
        model = DataSubjectRequest
        fields = ("request_type", "subject_id", "subject_email", "changes")

    def clean(self):
        from django.contrib.auth import get_user_model

        data = super().clean()
        subject_id = data.get("subject_id") or ""
        if not subject_id.isdigit() or not get_user_model().objects.filter(pk=subject_id).exists():
            raise ValidationError({"subject_id": _("No such user.")})
        changes = data.get("changes") or {}
        if data.get("request_type") == "rectification" and (
            not isinstance(changes, dict) or not changes or set(changes) - set(subject_requests.RECTIFIABLE)
        ):
            raise ValidationError({"changes": _("Rectification changes first_name, last_name or email.")})
        return data


@admin.register(DataSubjectRequest)
class DataSubjectRequestAdmin(admin.ModelAdmin):
    form = DataSubjectRequestForm
    list_display = ("pk", "request_type", "subject_id", "status", "created_at", "due_at", "processed_at")
    list_filter = ("request_type", "status")
    fields = ("request_type", "subject_id", "subject_email", "changes", "status", "due_at", "processed_at", "result")
    readonly_fields = ("status", "due_at", "processed_at", "result")
    actions = ["dry_run", "process"]

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False if obj is not None else super().has_change_permission(request, obj)

    def save_model(self, request, obj, form, change):
        data = form.cleaned_data
        req = subject_requests.create_request(
            request.user, request_type=data["request_type"], subject_id=data["subject_id"],
            subject_email=data.get("subject_email", ""), changes=data.get("changes") or {},
        )  # fmt: skip
        obj.pk = req.pk

    @admin.action(description=_("Dry run: list the rows the request reaches"))
    def dry_run(self, request, queryset):
        for req in queryset:
            result = subject_requests.process(req, request.user, dry_run=True)
            self.message_user(request, f"#{req.pk}: {result.get('counts') or result}")

    @admin.action(description=_("Process the request"), permissions=["process"])
    def process(self, request, queryset):
        for req in queryset.filter(status="pending"):
            result = subject_requests.process(req, request.user)
            level = messages.WARNING if result.get("refused") else messages.SUCCESS
            self.message_user(request, f"#{req.pk}: {result.get('refused') or _('done')}", level)

    def has_process_permission(self, request):
        return request.user.has_perm("governance.process_datasubjectrequest") and sees_all_tenants(request.user)
