from django.utils.translation import gettext_lazy as _
from rest_framework import serializers

from apps.accounts.selectors import tenants_for

from . import pricing


class UsageQuerySerializer(serializers.Serializer):
    """?tenant=<slug>&period=<2026-11 | 2026-W47 | 2026-11-05 | 2026-Q4>: a tenant of the caller's."""

    tenant = serializers.SlugField(max_length=64)
    period = serializers.CharField(max_length=16)

    def validate_tenant(self, value):
        tenant = tenants_for(self.context["user"]).filter(slug=value).first()
        if tenant is None:
            raise serializers.ValidationError(_("No such tenant, or not one of yours."))
        return tenant

    def validate_period(self, value):
        try:
            period = pricing.parse_period(value)
        except pricing.PeriodError:
            raise serializers.ValidationError(
                _("Use a period like 2026-11 (month), 2026-W47 (week), 2026-11-05 (day) or 2026-Q4.")
            ) from None
        if not 2000 <= period.start.year <= 2999:
            raise serializers.ValidationError(_("Pick a period between the years 2000 and 2999."))
        return period
