from django.contrib import admin
from import_export.admin import ImportExportModelAdmin

from apps.accounts.admin_scoping import TenantListFilter, TenantScopedAdmin
from apps.audit.admin_mixins import AuditedImportExportMixin

from . import resources
from .models import Machine, Material, ModelType, Post, Template


class CatalogAdmin(AuditedImportExportMixin, TenantScopedAdmin, ImportExportModelAdmin):
    list_display = ("code", "name", "tenant", "is_active", "created_at")
    list_filter = (TenantListFilter, "is_active")
    search_fields = ("code", "name")
    list_select_related = ("tenant",)
    readonly_fields = ("created_at",)


@admin.register(Machine)
class MachineAdmin(CatalogAdmin):
    resource_classes = [resources.MachineResource]
    list_display = ("code", "name", "location", "tenant", "is_active")


@admin.register(Post)
class PostAdmin(CatalogAdmin):
    resource_classes = [resources.PostResource]
    list_display = ("code", "name", "machine", "tenant", "is_active")
    list_select_related = ("tenant", "machine")
    raw_id_fields = ("machine",)


@admin.register(Material)
class MaterialAdmin(CatalogAdmin):
    resource_classes = [resources.MaterialResource]
    list_display = ("code", "name", "unit", "tenant", "is_active")


@admin.register(Template)
class TemplateAdmin(CatalogAdmin):
    resource_classes = [resources.TemplateResource]
    list_display = ("code", "name", "version", "tenant", "is_active")


@admin.register(ModelType)
class ModelTypeAdmin(CatalogAdmin):
    resource_classes = [resources.ModelTypeResource]
