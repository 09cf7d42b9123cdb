"""Integration profiles: which ERP a tenant's messages go to, its timeouts, its breaker, the guarded session.

Kept apart from services.py so that selectors.py (health, depths) reads them without importing services.
"""

from django.conf import settings

from apps.core import outbound_url
from apps.core.circuit_breaker import CircuitBreaker

from .models import ErrorClass, IntegrationProfile, SyncStatus

UPDATE_PATH = "/erp/v1/jobs/update"
HEALTH_PATH = "/erp/v1/health"
# Statuses in which an outbound row still has to reach the ERP; a later row of the same job waits for it.
IN_FLIGHT = (SyncStatus.QUEUED, SyncStatus.SENT)
# Transport trouble an outage causes: these DLQ entries are re-driven when the breaker closes again.
OUTAGE_CLASSES = (ErrorClass.TIMEOUT, ErrorClass.CONNECTION, ErrorClass.SERVER, ErrorClass.UNACKNOWLEDGED)


def http():
    """The worker's keep-alive session to the ERP, through the outbound-URL guard (ERP_ALLOWED_HOSTS)."""
    return outbound_url.session(settings.ERP_ALLOWED_HOSTS, setting="ERP_ALLOWED_HOSTS")


def default_profile() -> IntegrationProfile | None:
    """The profile of tenants without their own; made on first use when ERP_BASE_URL is set."""
    default = IntegrationProfile.objects.filter(tenant__isnull=True).first()
    if default is None and settings.ERP_BASE_URL:
        default, _ = IntegrationProfile.objects.get_or_create(tenant=None, defaults={"name": "default"})
    return default


def profile_for_tenant(tenant_id) -> IntegrationProfile | None:
    """The tenant's own profile, else the default one, else None (no ERP configured)."""
    own = IntegrationProfile.objects.filter(tenant_id=tenant_id).first()
    return own if own is not None else default_profile()


def base_url(profile) -> str:
    return (profile.base_url or settings.ERP_BASE_URL).rstrip("/")


def timeouts(profile) -> tuple[float, float]:
    return (
        profile.connect_timeout_seconds or settings.ERP_CONNECT_TIMEOUT_SECONDS,
        profile.read_timeout_seconds or settings.ERP_READ_TIMEOUT_SECONDS,
    )


def breaker(profile) -> CircuitBreaker:
    return CircuitBreaker(
        f"erp:{profile.pk}",
        failure_threshold=settings.ERP_BREAKER_FAILURES,
        cooldown=settings.ERP_BREAKER_COOLDOWN_SECONDS,
    )
