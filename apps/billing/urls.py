"""Billing routes: the usage API (under /api/v1/billing/) and the cost page (under /panel/billing/)."""

from django.urls import path, re_path

from . import api, views

api_urlpatterns = [
    path("usage", api.BillingUsageApi.as_view(), name="usage"),
]

panel_urlpatterns = [
    path("usage/", views.usage, name="usage"),
    re_path(r"^usage/export\.(?P<fmt>csv|json|pdf)$", views.usage_export, name="usage-export"),
]
