"""The recon operations console: config versions with diffs, file uploads, runs, and the break queue."""

import json

from django import forms
from django.contrib import admin, messages
from django.contrib.admin.helpers import ActionForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils import timezone
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from apps.accounts.admin_scoping import TenantScopedAdmin

from . import exports, loading, selectors, services
from .models import Break, BreakComment, FileStatus, ReconConfig, ReconFile, ReconRun


class ReconConfigForm(forms.ModelForm):
    reason = forms.CharField(label=_("Reason for the change"), max_length=500)

    class Meta:
        model = ReconConfig
        fields = ("profile", "data", "reason")

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("data") is not None:
            try:
                cleaned["data"] = services._validate_config(cleaned["data"])
            except ValidationError as error:
                raise forms.ValidationError({"data": error.messages}) from None
        return cleaned


@admin.register(ReconConfig)
class ReconConfigAdmin(TenantScopedAdmin):
    """Each save is a new version (services.save_config); old versions are read-only, with their diff."""

    tenant_field = "profile__tenant"
    form = ReconConfigForm
    list_display = ("profile", "version", "author", "reason", "created_at")
    list_select_related = ("profile", "author")
    readonly_fields = ("profile", "version", "author", "reason", "created_at", "config_json", "diff_to_previous")

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("profile", "data", "reason")
        return self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def get_changeform_initial_data(self, request):
        initial = super().get_changeform_initial_data(request)
        profile_id = request.GET.get("profile")
        if profile_id and str(profile_id).isdigit():
            latest = ReconConfig.objects.filter(profile_id=profile_id).order_by("-version").first()
            if latest is not None:
                initial["data"] = latest.data
        return initial

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # a run names its version; versions are history

    def save_model(self, request, obj, form, change):
        saved = services.save_config(
            obj.profile, form.cleaned_data["data"], author=request.user, reason=form.cleaned_data["reason"]
        )
        obj.pk, obj.version, obj.created_at, obj.author = saved.pk, saved.version, saved.created_at, saved.author

    @admin.display(description=_("config"))
    def config_json(self, obj):
        return format_html("<pre>{}</pre>", json.dumps(obj.data, indent=2, sort_keys=True, ensure_ascii=False))

    @admin.display(description=_("change from the previous version"))
    def diff_to_previous(self, obj):
        previous = ReconConfig.objects.filter(profile=obj.profile, version__lt=obj.version).order_by("-version").first()
        return format_html("<pre>{}</pre>", services.config_diff(previous.data if previous else None, obj.data))


class ReconFileForm(forms.ModelForm):
    upload = forms.FileField(label=_("ERP export (CSV or XLSX)"))
    force = forms.BooleanField(label=_("Load even if this file was loaded before"), required=False)
    encoding = forms.ChoiceField(
        label=_("Encoding"),
        required=False,
        choices=[
            ("", _("Detect")),
            ("utf-8", "UTF-8"),
            ("utf-8-sig", "UTF-8 (BOM)"),
            ("cp1254", "Windows-1254 (Türkçe)"),
        ],
    )
    delimiter = forms.ChoiceField(
        label=_("Delimiter"),
        required=False,
        choices=[("", _("Detect")), (",", ","), (";", ";"), ("\t", "Tab"), ("|", "|")],
    )
    run_now = forms.BooleanField(label=_("Reconcile right after loading"), required=False, initial=True)

    class Meta:
        model = ReconFile
        fields = ("profile",)

    def clean(self):
        cleaned = super().clean()
        upload, profile = cleaned.get("upload"), cleaned.get("profile")
        if upload is None or profile is None:
            return cleaned
        if profile.tenant_id is None:
            raise forms.ValidationError({"profile": _("The default profile (no tenant) cannot be reconciled.")})
        sha256, _size = loading.sha256_of(upload.file)
        first = ReconFile.objects.filter(sha256=sha256, duplicate_of__isnull=True).first()
        if first is not None and not cleaned.get("force"):
            url = reverse("admin:recon_reconfile_change", args=[first.pk])
            raise forms.ValidationError(
                {
                    "upload": format_html(
                        _(
                            'This file was loaded before as <a href="{}">{}</a> ({}); '
                            "tick the box below to load it again."
                        ),
                        url,
                        first.name,
                        timezone.localtime(first.created_at).strftime("%d.%m.%Y %H:%M"),
                    )
                }
            )
        return cleaned


_WORKING = ("queued", "loading", "matching")


@admin.register(ReconFile)
class ReconFileAdmin(TenantScopedAdmin):
    # While a worker loads or runs the file, its page refreshes itself (a <meta refresh>: no script).
    change_form_template = "admin/recon/reconfile/change_form.html"
    list_display = ("name", "tenant", "status", "row_count", "error_count", "formula_count", "source", "created_at")
    list_filter = ("status", "source", "file_format")
    list_select_related = ("tenant", "profile")
    search_fields = ("name", "sha256")
    form = ReconFileForm
    readonly_fields = (
        "name",
        "tenant",
        "profile",
        "sha256",
        "size",
        "source",
        "duplicate_of",
        "file_format",
        "encoding",
        "delimiter",
        "status",
        "load_progress",
        "row_count",
        "error_count",
        "error_list",
        "formula_count",
        "formula_cells",
        "columns",
        "uploaded_by",
        "created_at",
        "load_ms",
    )

    def get_fields(self, request, obj=None):
        if obj is None:
            return ("profile", "upload", "force", "encoding", "delimiter", "run_now")
        return self.readonly_fields

    def get_readonly_fields(self, request, obj=None):
        return () if obj is None else self.readonly_fields

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False  # the registry is what refuses a file twice

    def save_model(self, request, obj, form, change):
        # The request only stores the file and registers it; a worker loads and reconciles it
        # (tasks.load_uploaded_file) while the file's page shows the progress.
        data = form.cleaned_data
        entry = services.queue_upload(
            data["upload"],
            profile=data["profile"],
            actor=request.user,
            force=data["force"],
            encoding=data["encoding"],
            delimiter=data["delimiter"],
            run_after=data["run_now"] and request.user.has_perm("recon.run_recon"),
        )
        obj.pk, obj.created_at = entry.pk, entry.created_at

    def response_add(self, request, obj, post_url_continue=None):
        messages.info(request, _("The file is stored; it is being loaded in the background."))
        return HttpResponseRedirect(reverse("admin:recon_reconfile_change", args=[obj.pk]))

    def change_view(self, request, object_id, form_url="", extra_context=None):
        state = services.progress_of(object_id) if str(object_id).isdigit() else None
        extra_context = {**(extra_context or {}), "recon_working": bool(state and state["phase"] in _WORKING)}
        return super().change_view(request, object_id, form_url, extra_context)

    def log_addition(self, request, obj, message):
        pass  # services.register_file records recon.file_loaded / recon.file_rejected

    @admin.display(description=_("progress"))
    def load_progress(self, obj):
        state = services.progress_of(obj.pk)
        if state is None:
            return "-" if obj.status != FileStatus.LOADING else _("waiting for a worker")
        text = {
            "queued": _("waiting for a worker"),
            "loading": _("%(rows)s rows loaded so far") % {"rows": state["rows"]},
            "matching": _("%(rows)s rows loaded; reconciling") % {"rows": state["rows"]},
            "done": _("done"),
            "failed": _("failed"),
        }.get(state["phase"], state["phase"])
        link = ""
        if state.get("run"):
            link = format_html(
                ' <a href="{}">{}</a>',
                reverse("admin:recon_reconrun_change", args=[state["run"]]),
                _("Run #%(run)s") % {"run": state["run"]},
            )
        if state["percent"] is None:
            bar = format_html('<progress aria-label="{}"></progress>', _("progress"))
        else:
            bar = format_html(
                '<progress aria-label="{}" max="100" value="{}">{}%</progress> {}%',
                _("progress"),
                state["percent"],
                state["percent"],
                state["percent"],
            )
        return format_html("{} {}{}", bar, text, link)

    @admin.display(description=_("errors (first 100)"))
    def error_list(self, obj):
        if not obj.errors:
            return "-"
        lines = "\n".join(f"{e['row']}:{e['column']} {e['header']} {e['message']}" for e in obj.errors)
        return format_html("<pre>{}</pre>", lines)


@admin.register(ReconRun)
class ReconRunAdmin(TenantScopedAdmin):
    list_display = (
        "id",
        "tenant",
        "file",
        "config",
        "status",
        "counts",
        "cleared_count",
        "duration_ms",
        "started_by",
        "started_at",
    )
    list_filter = ("status",)
    list_select_related = ("tenant", "file", "config__profile", "started_by")
    readonly_fields = [f.name for f in ReconRun._meta.fields]
    actions = ["export_breaks_csv"]

    def has_add_permission(self, request):
        return False  # runs start from an upload, the API, a drop folder or `recon_run`

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.action(description=_("Export the run's breaks (CSV)"), permissions=["export"])
    def export_breaks_csv(self, request, queryset):
        recon_run = queryset.select_related("config", "file").first()
        response = HttpResponse(exports.run_breaks_csv(recon_run), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="recon-run-{recon_run.pk}-breaks.csv"'
        return response

    def has_export_permission(self, request):
        return request.user.has_perm("recon.export_break")


class BreakActionForm(ActionForm):
    reason = forms.CharField(label=_("reason"), max_length=500, required=False)
    until = forms.DateTimeField(label=_("suppressed until"), required=False, help_text=_("dd.mm.yyyy hh:mm"))


class BreakCommentInline(admin.TabularInline):
    model = BreakComment
    extra = 0
    fields = ("author", "text", "created_at")
    readonly_fields = ("author", "text", "created_at")

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Break)
class BreakAdmin(TenantScopedAdmin):
    list_display = ("kind", "key", "tenant", "state", "assignee", "age_bucket", "first_seen_at", "last_seen_at")
    list_filter = ("state", "kind")
    list_select_related = ("tenant", "assignee")
    search_fields = ("key", "external_id", "fingerprint")
    readonly_fields = [f.name for f in Break._meta.fields]
    inlines = [BreakCommentInline]
    action_form = BreakActionForm
    actions = ["assign_to_me", "resolve", "suppress", "unsuppress", "reopen"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    @admin.display(description=_("age"))
    def age_bucket(self, obj):
        return selectors.bucket_of(obj.first_seen_at)

    def _each(self, request, queryset, step):
        done = 0
        for brk in queryset.select_related("tenant"):
            try:
                step(brk)
                done += 1
            except (ValidationError, PermissionDenied) as refused:
                messages.error(request, f"{brk}: {' '.join(getattr(refused, 'messages', [str(refused)]))}")
        if done:
            messages.success(request, _("%(count)s breaks updated.") % {"count": done})

    def _reason(self, request):
        return request.POST.get("reason", "")

    @admin.action(description=_("Assign to me"), permissions=["assign"])
    def assign_to_me(self, request, queryset):
        self._each(request, queryset, lambda b: services.assign(b, assignee=request.user, actor=request.user))

    @admin.action(description=_("Resolve (with the reason above)"), permissions=["resolve"])
    def resolve(self, request, queryset):
        self._each(request, queryset, lambda b: services.resolve(b, reason=self._reason(request), actor=request.user))

    @admin.action(description=_("Suppress (reason and expiry above)"), permissions=["suppress"])
    def suppress(self, request, queryset):
        form = BreakActionForm(request.POST)
        until = form.cleaned_data.get("until") if form.is_valid() else None
        self._each(
            request,
            queryset,
            lambda b: services.suppress(b, reason=self._reason(request), until=until, actor=request.user),
        )

    @admin.action(description=_("Unsuppress"), permissions=["suppress"])
    def unsuppress(self, request, queryset):
        self._each(request, queryset, lambda b: services.unsuppress(b, actor=request.user))

    @admin.action(description=_("Reopen (with the reason above)"), permissions=["resolve"])
    def reopen(self, request, queryset):
        self._each(request, queryset, lambda b: services.reopen(b, reason=self._reason(request), actor=request.user))

    def has_assign_permission(self, request):
        return request.user.has_perm("recon.assign_break")

    def has_resolve_permission(self, request):
        return request.user.has_perm("recon.resolve_break")

    def has_suppress_permission(self, request):
        return request.user.has_perm("recon.suppress_break")
