"""Job reads for the API and admin, scoped to the user's tenants."""

from apps.accounts.selectors import scope_to_tenants

from .models import Job


def jobs_visible_to(user, *, filters=None):
    """Jobs of the user's tenants, narrowed by validated `filters` (see JobFilterSerializer)."""
    qs = scope_to_tenants(Job.objects.all(), user).select_related(
        "tenant", "model_type", "machine", "post", "material", "template"
    )
    filters = filters or {}
    if filters.get("status"):
        qs = qs.filter(status__in=filters["status"])
    if filters.get("tenant"):
        qs = qs.filter(tenant__slug=filters["tenant"])
    for name in ("machine", "post", "model_type"):
        if filters.get(name):
            qs = qs.filter(**{f"{name}__code": filters[name]})
    if filters.get("external_id"):
        qs = qs.filter(external_id=filters["external_id"])
    if filters.get("created_from"):
        qs = qs.filter(created_at__gte=filters["created_from"])
    if filters.get("created_to"):
        qs = qs.filter(created_at__lt=filters["created_to"])
    return qs


def job_visible_to(user, public_id):
    """The job with this public id if the user may see it, else None."""
    return jobs_visible_to(user).filter(public_id=public_id).first()
