"""django-import-export pieces that keep an import inside the importing user's tenants."""

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from import_export import fields, resources
from import_export.widgets import ForeignKeyWidget

from .models import Tenant
from .selectors import can_access_tenant


class TenantCodeWidget(ForeignKeyWidget):
    """Refers to a catalog row by its code inside the row's tenant (codes repeat across tenants)."""

    def __init__(self, model):
        super().__init__(model, field="code")

    def get_queryset(self, value, row, *args, **kwargs):
        return self.model.objects.filter(tenant__slug=(row or {}).get("tenant"))


class TenantScopedResource(resources.ModelResource):
    """A resource whose rows name their tenant by slug; a row for a tenant the user lacks is an error."""

    tenant = fields.Field(attribute="tenant", column_name="tenant", widget=ForeignKeyWidget(Tenant, field="slug"))

    def import_data(self, dataset, *args, rollback_on_validation_errors=True, **kwargs):
        # All or nothing: one invalid row rolls back the valid ones too (the library's default keeps them).
        return super().import_data(
            dataset, *args, rollback_on_validation_errors=rollback_on_validation_errors, **kwargs
        )

    def before_import(self, dataset, **kwargs):
        self.importing_user = kwargs.get("user")
        super().before_import(dataset, **kwargs)

    def import_instance(self, instance, row, **kwargs):
        errors = {}
        try:
            super().import_instance(instance, row, **kwargs)
        except ValidationError as exc:
            errors = exc.update_error_dict(errors)
        user = getattr(self, "importing_user", None)
        if "tenant" not in errors and instance.tenant_id and not can_access_tenant(user, instance.tenant_id):
            errors["tenant"] = [_("You have no access to this tenant.")]
        errors.update(self.extra_row_errors(instance))
        if errors:
            raise ValidationError(errors)

    def extra_row_errors(self, instance) -> dict:
        """Subclasses add business checks; return field -> message."""
        return {}
