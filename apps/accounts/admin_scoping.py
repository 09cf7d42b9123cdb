"""Admin mixin that cuts every changelist, form choice and object lookup down to the user's tenants."""

from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.utils.translation import gettext_lazy as _

from apps.audit.admin_mixins import AuditedAdminMixin

from .models import Tenant
from .selectors import scope_to_tenants, tenants_for


class TenantScopedAdmin(AuditedAdminMixin, admin.ModelAdmin):
    """Rows of other tenants are invisible: not listed, not reachable by URL, not offered as choices."""

    tenant_field = "tenant"

    def get_queryset(self, request):
        return scope_to_tenants(super().get_queryset(request), request.user, tenant_field=self.tenant_field)

    def formfield_for_foreignkey(self, db_field, request, **kwargs):
        related = db_field.related_model
        if related is Tenant:
            kwargs["queryset"] = tenants_for(request.user)
        elif any(f.name == "tenant" for f in related._meta.get_fields()):
            kwargs["queryset"] = scope_to_tenants(related._default_manager.all(), request.user)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class TenantListFilter(admin.SimpleListFilter):
    """A tenant filter that lists only the user's tenants, without a DISTINCT over the big table."""

    title = _("tenant")
    parameter_name = "tenant"

    def lookups(self, request, model_admin):
        return [(t.pk, t.name) for t in tenants_for(request.user)]

    def queryset(self, request, queryset):
        value = self.value()
        if not value:
            return queryset
        # Only a tenant the list offers: `?tenant=abc` was a ValueError (a 500), a huge number a database
        # error. The admin answers IncorrectLookupParameters with its own "bad filter" page (issue 11).
        if value not in {str(pk) for pk, _name in self.lookup_choices}:
            raise IncorrectLookupParameters(f"No such tenant: {value!r}")
        return queryset.filter(tenant_id=value)
