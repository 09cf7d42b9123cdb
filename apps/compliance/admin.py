from django.contrib import admin, messages
from django.http import FileResponse, Http404
from django.urls import path, reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _

from apps.audit.admin_mixins import AuditedAdminMixin

from . import services, tasks
from .models import Control, ControlEvidence, EvidencePackage, Framework, ProcessingActivity


class ControlEvidenceInline(admin.TabularInline):
    model = ControlEvidence
    extra = 0


@admin.register(Framework)
class FrameworkAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("code", "name", "version")


@admin.register(Control)
class ControlAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """The Statement of Applicability: applicable and justification per control; mappings inline."""

    list_display = ("ref", "title", "framework", "applicable", "category")
    list_filter = ("framework", "applicable", "category")
    list_select_related = ("framework",)
    search_fields = ("ref", "title")
    inlines = [ControlEvidenceInline]


@admin.register(ProcessingActivity)
class ProcessingActivityAdmin(AuditedAdminMixin, admin.ModelAdmin):
    list_display = ("name", "purpose", "retention")


@admin.register(EvidencePackage)
class EvidencePackageAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """Packages are made by the task (`compliance_package` or "Add"), with their progress; rows are read-only."""

    list_display = (
        "framework",
        "period",
        "status",
        "progress",
        "step",
        "checkpoint_tree_size",
        "created_at",
        "download",
    )
    list_filter = ("framework", "status")
    fields = ("framework", "period")

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in EvidencePackage._meta.fields] if obj else []

    def get_fields(self, request, obj=None):
        return [f.name for f in EvidencePackage._meta.fields] if obj else ["framework", "period"]

    def has_change_permission(self, request, obj=None):
        return obj is None and super().has_change_permission(request, obj)

    @admin.display(description=_("file"))
    def download(self, obj):
        if not obj.file_name:
            return "—"
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:compliance_package_download", args=[obj.pk]), obj.file_name
        )

    def save_model(self, request, obj, form, change):
        try:
            made = services.request_package(
                form.cleaned_data["framework"], form.cleaned_data["period"], actor=request.user
            )
        except ValueError as exc:
            messages.error(request, str(exc))
            return
        obj.pk = made.pk
        from django.db import transaction

        transaction.on_commit(lambda: tasks.build_package.delay(made.pk))

    def get_urls(self):
        view = self.admin_site.admin_view(self.download_view)
        return [path("<int:pk>/download/", view, name="compliance_package_download"), *super().get_urls()]

    def download_view(self, request, pk):
        if not self.has_view_permission(request):
            raise Http404
        package = EvidencePackage.objects.filter(pk=pk).exclude(file_name="").first()
        if package is None:
            raise Http404
        return FileResponse(services.package_path(package).open("rb"), as_attachment=True, filename=package.file_name)
