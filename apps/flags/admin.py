from django.contrib import admin

from .models import FeatureFlag


@admin.register(FeatureFlag)
class FeatureFlagAdmin(admin.ModelAdmin):
    """Read-only here: flags change through /api/enterprise/features (one audited path that keeps waffle's
    `everyone` in step with the state and targeting)."""

    list_display = ("name", "display_name", "state", "percent", "superusers", "modified")
    search_fields = ("name", "display_name")
    filter_horizontal = ("users", "groups")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
