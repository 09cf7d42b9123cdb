"""Who may read the operational endpoints' details (`/metrics`, the profiles in `/internal/erp/health`).

A caller with `Authorization: Bearer <INTERNAL_TOKEN>` (Prometheus sends it from its scrape config) or a
client address inside `INTERNAL_ALLOWED_IPS` (client IP by the TRUSTED_PROXIES rule). Both default to
nothing: without configuration the details are closed, and a health probe still gets the aggregates.
"""

import hmac

from django.conf import settings

from .client_ip import address_in, client_ip


def _bearer(request) -> str:
    scheme, _, credentials = request.META.get("HTTP_AUTHORIZATION", "").partition(" ")
    return credentials.strip() if scheme.lower() == "bearer" else ""


def has_internal_access(request) -> bool:
    """True for the internal token (compared in constant time) or an allowlisted client address."""
    token = settings.INTERNAL_TOKEN
    offered = _bearer(request)
    if token and offered and hmac.compare_digest(offered.encode(), token.encode()):
        return True
    if settings.INTERNAL_ALLOWED_IPS:
        ip = getattr(request, "client_ip", None) or client_ip(request.META)
        return address_in(ip, settings.INTERNAL_ALLOWED_IPS)
    return False
