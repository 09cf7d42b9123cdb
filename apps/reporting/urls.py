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
    path("detail/", views.detail, name="detail"),
    path("exports/", views.exports, name="exports"),
    path("exports/<uuid:export_id>/status", views.export_status, name="export-status"),
    path("alerts/", views.alerts, name="alerts"),
]
