from django import forms
from django.contrib import admin, messages
from django.utils.formats import date_format
from django.utils.html import format_html
from django.utils.timezone import localtime
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from import_export.admin import ImportExportModelAdmin

from apps.accounts.admin_scoping import TenantListFilter, TenantScopedAdmin
from apps.audit.admin_mixins import AuditedImportExportMixin
from apps.core.admin_actions import confirmation_page
from apps.core.admin_paging import CappedCountPaginator

from . import services
from .constants import TERMINAL_STATUSES
from .exceptions import JobStatusError
from .models import Job, JobStatus, JobStatusChange, StatusSource
from .resources import JobResource


class JobStatusChangeInline(admin.TabularInline):
    model = JobStatusChange
    extra = 0
    can_delete = False
    fields = ("changed_at", "from_status", "to_status", "progress", "source", "actor", "reason")
    readonly_fields = fields
    ordering = ("-changed_at", "-id")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


REFERENCE_FIELDS = list(services.REFERENCE_FIELDS)
# The bulk cancel confirmation lists at most this many of the selected jobs.
PREVIEW_ROWS = 200


class JobAdminForm(forms.ModelForm):
    """References are edited directly; a status change is a request the job service validates."""

    new_status = forms.ChoiceField(label=_("Change status to"), required=False, choices=[("", "—"), *JobStatus.choices])
    new_progress = forms.IntegerField(label=_("New progress"), required=False, min_value=0, max_value=100)
    status_reason = forms.CharField(label=_("Reason"), required=False, max_length=500)

    class Meta:
        model = Job
        fields = REFERENCE_FIELDS

    def clean(self):
        cleaned = super().clean()
        job = self.instance
        for name, message in services.validate_job_references(self._candidate(cleaned)).items():
            if name in self.fields:
                self.add_error(name, message)
        if job.pk and cleaned.get("new_status"):
            error = services.transition_error(job, cleaned["new_status"], cleaned.get("new_progress"))
            if error:
                self.add_error("new_status", error)
        return cleaned

    def _candidate(self, cleaned):
        candidate = Job(tenant=cleaned.get("tenant") or getattr(self.instance, "tenant", None))
        for name in ("model_type", "machine", "post", "material", "template"):
            setattr(candidate, name, cleaned.get(name))
        return candidate


class CancelJobsForm(forms.Form):
    reason = forms.CharField(label=_("Reason"), max_length=500, required=False)


@admin.register(Job)
class JobAdmin(AuditedImportExportMixin, TenantScopedAdmin, ImportExportModelAdmin):
    form = JobAdminForm
    resource_classes = [JobResource]
    paginator = CappedCountPaginator
    show_full_result_count = False
    # Facet counts would run a COUNT per filter option over the whole table.
    show_facets = admin.ShowFacets.NEVER
    list_per_page = 50
    list_display = (
        "short_id",
        "erp_id",
        "tenant_name",
        "status_and_progress",
        "model_type_name",
        "post_name",
        "created",
        "duration_ms",
    )
    list_filter = (TenantListFilter, "status", ("created_at", admin.DateFieldListFilter))
    list_select_related = ("tenant", "model_type", "post")
    # Exact matches keep search on the unique indexes instead of a LIKE over a million rows.
    search_fields = ("=public_id", "=external_id")
    search_help_text = _("Exact public id (UUID) or ERP id.")
    raw_id_fields = ("model_type", "machine", "post", "material", "template")
    readonly_fields = ("public_id", "status", "progress", "created_at", "started_at", "finished_at", "duration_ms")
    inlines = [JobStatusChangeInline]
    actions = ["cancel_selected"]
    ordering = ("-created_at", "-id")

    # A full UUID wraps over four lines at 1440 px and pushes the last columns off-screen.
    @admin.display(description=_("ID"), ordering="public_id")
    def short_id(self, obj):
        return format_html('<code class="job-id" title="{}">{}</code>', obj.public_id, obj.public_id.hex[:8])

    # At 1440 px beside the sidebar and the filters the table has about 800 px: the machine is left to the
    # change page (the post belongs to it and its code carries the machine's), progress joins the status,
    # and the catalog columns are methods because Django never wraps a foreign key column ("nowrap").
    @admin.display(description=_("ERP id"), ordering="external_id")
    def erp_id(self, obj):
        return format_html('<span class="nowrap">{}</span>', obj.external_id) if obj.external_id else "—"

    @admin.display(description=_("tenant"), ordering="tenant__name")
    def tenant_name(self, obj):
        return obj.tenant.name

    @admin.display(description=_("model type"), ordering="model_type__code")
    def model_type_name(self, obj):
        return str(obj.model_type)

    @admin.display(description=_("post"), ordering="post__code")
    def post_name(self, obj):
        return str(obj.post)

    @admin.display(description=_("Status"), ordering="status")
    def status_and_progress(self, obj):
        if obj.status in (JobStatus.RUNNING, JobStatus.PAUSED):
            return _("%(status)s · %(progress)d%%") % {"status": obj.get_status_display(), "progress": obj.progress}
        return obj.get_status_display()

    @admin.display(description=_("Created"), ordering="created_at")
    def created(self, obj):
        return date_format(localtime(obj.created_at), "d.m.Y H:i")

    def get_fieldsets(self, request, obj=None):
        fieldsets = [
            (None, {"fields": REFERENCE_FIELDS}),
        ]
        if obj is not None:
            fieldsets.append((_("Status"), {"fields": list(self.readonly_fields)}))
            # A read-only page (incident lock, view-only user) would show the empty request fields as "None".
            if request.user.has_perm("jobs.change_job_status") and self.has_change_permission(request, obj):
                fieldsets.append((_("Change status"), {"fields": ["new_status", "new_progress", "status_reason"]}))
        return fieldsets

    def save_model(self, request, obj, form, change):
        if not change:
            created = services.create_job(
                tenant=obj.tenant,
                model_type=obj.model_type,
                machine=obj.machine,
                post=obj.post,
                material=obj.material,
                template=obj.template,
                external_id=obj.external_id,
                actor=request.user,
            )
            obj.pk, obj.public_id = created.pk, created.public_id
            return
        services.update_job_references(obj, actor=request.user)
        new_status = form.cleaned_data.get("new_status")
        if new_status and request.user.has_perm("jobs.change_job_status"):
            try:
                services.change_status(
                    obj,
                    new_status,
                    progress=form.cleaned_data.get("new_progress"),
                    actor=request.user,
                    source=StatusSource.ADMIN,
                    reason=form.cleaned_data.get("status_reason") or "",
                )
            except JobStatusError as exc:  # a concurrent change got there first; the form had checked it
                messages.error(request, str(exc.message))

    @admin.action(description=_("Cancel selected jobs"), permissions=["cancel"])
    def cancel_selected(self, request, queryset):
        form = CancelJobsForm(request.POST if "confirm" in request.POST else None)
        if "confirm" in request.POST and form.is_valid():
            result = services.cancel_jobs(
                queryset.order_by("pk"), actor=request.user, reason=form.cleaned_data["reason"]
            )
            cancelled, refused = len(result.cancelled), len(result.refused)
            summary = _("%(cancelled)s; %(refused)s.") % {
                "cancelled": ngettext("%(n)d job cancelled", "%(n)d jobs cancelled", cancelled) % {"n": cancelled},
                "refused": ngettext("%(n)d job not cancelled", "%(n)d jobs not cancelled", refused) % {"n": refused},
            }
            messages.add_message(request, messages.SUCCESS if cancelled else messages.WARNING, summary)
            for job, reason in result.refused:
                messages.warning(request, _("Not cancelled: %(job)s — %(reason)s") % {"job": job, "reason": reason})
            return None
        # Shown before confirming: which jobs the action will cancel and which it will leave, and why.
        preview = services.cancel_preview(queryset.select_related("tenant").order_by("pk")[:PREVIEW_ROWS])
        total = queryset.count()
        will_cancel = queryset.exclude(status__in=TERMINAL_STATUSES).count()
        return confirmation_page(
            self, request, template="admin/jobs/job/cancel_confirmation.html", title=_("Cancel jobs"),
            action="cancel_selected", form=form, preview=preview, count=total, will_cancel=will_cancel,
            will_not_cancel=total - will_cancel, queryset=queryset.none(), truncated=total > PREVIEW_ROWS,
        )  # fmt: skip

    def has_cancel_permission(self, request):
        return request.user.has_perm("jobs.cancel_job")
