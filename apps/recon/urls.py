"""Recon routes: the API (under /api/v1/recon/) and the panel pages (under /panel/recon/)."""

from django.urls import path

from . import api, views

api_urlpatterns = [
    path("files", api.ReconFileUploadApi.as_view(), name="files"),
    path("runs/<int:run_id>", api.ReconRunDetailApi.as_view(), name="run-detail"),
]

panel_urlpatterns = [
    path("breaks/", views.breaks, name="breaks"),
    path("runs/", views.runs, name="runs"),
    path("runs/<int:run_id>/breaks.csv", views.run_breaks_csv, name="run-breaks-csv"),
]
