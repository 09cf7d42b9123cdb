from django.contrib import admin
from django.urls import include, path
from drf_spectacular.utils import OpenApiResponse, extend_schema
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from apps.accounts import views as account_views
from apps.accounts.api import TokenCreateApi, TokenRevokeAllApi, TokenRevokeApi
from apps.audit.api import ForensicAuditExportApi
from apps.billing.urls import api_urlpatterns as billing_api
from apps.billing.urls import panel_urlpatterns as billing_panel
from apps.core import views as core_views
from apps.core.metrics import metrics_view
from apps.erp import api as erp_api
from apps.erp.inbound_api import ErpInboundProgressApi
from apps.erp.rotation_views import rotate_keys_view
from apps.flags import api as flags_api
from apps.governance import urls as governance_urls
from apps.jobs import api as jobs_api
from apps.observability import health as observability_health
from apps.recon.urls import api_urlpatterns as recon_api
from apps.recon.urls import panel_urlpatterns as recon_panel
from apps.reporting.urls import api_urlpatterns as reporting_api
from apps.reporting.urls import panel_urlpatterns as reporting_panel

# knox's logout views have no serializer; describe them so the schema is complete.
_no_content = {204: OpenApiResponse(description="Revoked"), 401: OpenApiResponse(description="No valid token")}
token_revoke = extend_schema(summary="Revoke this API token", request=None, responses=_no_content)(TokenRevokeApi)
token_revoke_all = extend_schema(summary="Revoke all your API tokens", request=None, responses=_no_content)(
    TokenRevokeAllApi
)

api_v1 = [
    path("auth/token/", TokenCreateApi.as_view(), name="token-create"),
    path("auth/token/revoke/", token_revoke.as_view(), name="token-revoke"),
    path("auth/token/revoke-all/", token_revoke_all.as_view(), name="token-revoke-all"),
    path("jobs/", jobs_api.JobListApi.as_view(), name="job-list"),
    path("jobs/<uuid:public_id>/", jobs_api.JobDetailApi.as_view(), name="job-detail"),
    path("jobs/<uuid:public_id>/status", jobs_api.JobStatusChangeApi.as_view(), name="job-status-change"),
    path("reports/", include((reporting_api, "reports"))),
    # issue 5: the ERP's inbound progress (bearer token + IP allowlist + optional HMAC).
    path("erp/inbound/job/progress", ErpInboundProgressApi.as_view(), name="erp-inbound-progress"),
    # issue 18 (apps.recon): ERP export upload and runs.
    path("recon/", include((recon_api, "recon"))),
]

urlpatterns = [
    path("", account_views.home, name="home"),
    # Before the admin's own URLs: an API under /admin/ that answers problem+json, not a login page.
    path("admin/erp/replay", erp_api.ErpReplayApi.as_view(), name="erp-replay"),
    # issue 5: key rotation flow (confirmation, then the new next secret shown once).
    path("admin/erp/profiles/<int:profile_id>/rotate-keys/", rotate_keys_view(admin.site), name="erp-rotate-keys"),
    path("admin/", admin.site.urls),
    path("api/v1/", include((api_v1, "api"), namespace="v1")),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves Swagger UI's init script from ?script, so the page needs no inline script (CSP).
    path(
        "api/docs/",
        SpectacularSwaggerSplitView.as_view(url_name="schema", template_name="api/swagger_ui.html"),
        name="swagger-ui",
    ),
    path("forensics/audit/export", ForensicAuditExportApi.as_view(), name="forensic-audit-export"),
    path("reports/", include((reporting_api, "reports"))),
    # issue 18 (apps.recon): the break queue and run history, before the reporting panel's catch-alls.
    path("panel/recon/", include((recon_panel, "recon-panel"))),
    path("panel/", include((reporting_panel, "panel"))),
    path("health/live", core_views.live, name="health-live"),
    path("health/ready", core_views.ready, name="health-ready"),
    path("internal/erp/health", erp_api.ErpHealthApi.as_view(), name="erp-health"),
    path("metrics", metrics_view, name="metrics"),
    # issue 15 (apps.observability): per-tenant SLA and circuit breakers API; /healthz and /readyz.
    path("api/enterprise/", include("apps.observability.urls", namespace="enterprise")),
    path("healthz", observability_health.healthz, name="healthz"),
    path("readyz", observability_health.readyz, name="readyz"),
    path("i18n/", include("django.conf.urls.i18n")),
    # issue 14 (apps/security): seed 001's lockouts, address lists, events, sessions; break-glass.
    path("api/enterprise/security/", include(("apps.security.urls", "security"))),
    # issue 14 (apps/flags): seed 001's feature flags (the list without a trailing slash, as the seed writes it).
    path("api/enterprise/features", flags_api.FlagListApi.as_view(), name="flags-list"),
    path("api/enterprise/features/", include(("apps.flags.urls", "flags"))),
    # issue 19 (billing): usage and cost for billing integration, and the Turkish cost page.
    path("api/v1/billing/", include((billing_api, "billing-api"))),
    path("panel/billing/", include((billing_panel, "billing"))),
    path("favicon.ico", core_views.favicon),
    # apps.governance (issue 17): seed 001's governance and audit endpoints.
    path("api/enterprise/governance/", include((governance_urls.governance, "governance"))),
    path("api/enterprise/audit/", include((governance_urls.audit, "enterprise-audit"))),
]

handler400 = "apps.core.problems.handler400"
handler403 = "apps.core.problems.handler403"
handler404 = "apps.core.problems.handler404"
handler500 = "apps.core.problems.handler500"
