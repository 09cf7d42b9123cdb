from import_export import fields

from apps.accounts.import_scoping import TenantCodeWidget, TenantScopedResource

from .models import Machine, Material, ModelType, Post, Template

_BASE = ("tenant", "code", "name", "is_active")


class MachineResource(TenantScopedResource):
    class Meta:
        model = Machine
        fields = (*_BASE, "location")
        import_id_fields = ("tenant", "code")
        clean_model_instances = True
        skip_unchanged = True


class PostResource(TenantScopedResource):
    machine = fields.Field(attribute="machine", column_name="machine", widget=TenantCodeWidget(Machine))

    class Meta:
        model = Post
        fields = (*_BASE, "machine")
        import_id_fields = ("tenant", "code")
        clean_model_instances = True
        skip_unchanged = True

    def extra_row_errors(self, instance):
        if instance.machine_id and instance.tenant_id and instance.machine.tenant_id != instance.tenant_id:
            return {"machine": ["The machine belongs to another tenant."]}
        return {}


class MaterialResource(TenantScopedResource):
    class Meta:
        model = Material
        fields = (*_BASE, "unit")
        import_id_fields = ("tenant", "code")
        clean_model_instances = True
        skip_unchanged = True


class TemplateResource(TenantScopedResource):
    class Meta:
        model = Template
        fields = (*_BASE, "version")
        import_id_fields = ("tenant", "code")
        clean_model_instances = True
        skip_unchanged = True


class ModelTypeResource(TenantScopedResource):
    class Meta:
        model = ModelType
        fields = _BASE
        import_id_fields = ("tenant", "code")
        clean_model_instances = True
        skip_unchanged = True
