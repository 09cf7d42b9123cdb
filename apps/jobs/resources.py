from import_export import fields

from apps.accounts.import_scoping import TenantCodeWidget, TenantScopedResource
from apps.catalog.models import Machine, Material, ModelType, Post, Template

from .models import Job
from .services import validate_job_references

_READ_ONLY = ("public_id", "status", "progress", "created_at", "started_at", "finished_at", "duration_ms")


class JobResource(TenantScopedResource):
    """Imports create or update queued jobs by (tenant, ERP id); status columns are exported, never imported.

    A status moves only through jobs.services.change_status, so an import cannot set one.
    """

    model_type = fields.Field(attribute="model_type", column_name="model_type", widget=TenantCodeWidget(ModelType))
    machine = fields.Field(attribute="machine", column_name="machine", widget=TenantCodeWidget(Machine))
    post = fields.Field(attribute="post", column_name="post", widget=TenantCodeWidget(Post))
    material = fields.Field(attribute="material", column_name="material", widget=TenantCodeWidget(Material))
    template = fields.Field(attribute="template", column_name="template", widget=TenantCodeWidget(Template))

    class Meta:
        model = Job
        fields = ("tenant", "external_id", "model_type", "machine", "post", "material", "template", *_READ_ONLY)
        export_order = ("public_id", "tenant", "external_id", "status", "progress")
        import_id_fields = ("tenant", "external_id")
        clean_model_instances = True
        skip_unchanged = True

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        for name in _READ_ONLY:
            self.fields[name].readonly = True

    def get_export_queryset(self, request=None):
        return (
            super()
            .get_export_queryset(request)
            .select_related("tenant", "model_type", "machine", "post", "material", "template")
        )

    def extra_row_errors(self, instance):
        errors = validate_job_references(instance) if instance.tenant_id else {}
        if not instance.external_id:
            errors["external_id"] = "An imported job needs its ERP id."
        return {k: [str(v)] for k, v in errors.items()}
