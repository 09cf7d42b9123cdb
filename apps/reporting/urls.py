"""Reporting routes: the API (mounted at /reports/ and /api/v1/reports/) and the /panel/ pages."""

from django.urls import path

from . import api, views

api_urlpatterns = [
    path("summary", api.ReportSummaryApi.as_view(), name="summary"),
    path("detail", api.ReportDetailApi.as_view(), name="detail"),
    path("export", api.ReportExportCreateApi.as_view(), name="export-create"),
    path("export/schema.json", api.ReportExportSchemaApi.as_view(), name="export-schema"),
    path("export/<uuid:export_id>", api.ReportExportDetailApi.as_view(), name="export-detail"),
    path("export/<uuid:export_id>/download", api.ReportExportDownloadApi.as_view(), name="export-download"),
]

panel_urlpatterns = [
    path("", views.overview, name="overview"),
    # The overview's data, fetched by its script after the page shows (each scoped like the page).
    path("data/kpis", views.overview_kpis, name="data-kpis"),
    path("data/breakdowns", views.overview_breakdowns, name="data-breakdowns"),
    path("data/trend", views.overview_trend, name="data-trend"),
    path("detail/", views.detail, name="detail"),
    path("exports/", views.exports, name="exports"),
    path("exports/<uuid:export_id>/status", views.export_status, name="export-status"),
    path("alerts/", views.alerts, name="alerts"),
]
