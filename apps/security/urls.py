from django.urls import path

from . import api

urlpatterns = [
    path("locked-accounts", api.LockedAccountsApi.as_view(), name="locked-accounts"),
    path("unlock-account", api.UnlockAccountApi.as_view(), name="unlock-account"),
    path("ip-lists", api.IPListsApi.as_view(), name="ip-lists"),
    path("ip-list", api.IPListAddApi.as_view(), name="ip-list-add"),
    # `<path:>`: a CIDR's slash may be written as is (10.0.0.0/8) or as %2F.
    path("ip-list/<path:ip>", api.IPListDeleteApi.as_view(), name="ip-list-delete"),
    path("events", api.EventsApi.as_view(), name="events"),
    path("summary", api.SummaryApi.as_view(), name="summary"),
    path("sessions/<int:user_id>", api.SessionsApi.as_view(), name="sessions"),
    path("break-glass", api.BreakGlassRequestApi.as_view(), name="break-glass-request"),
    path("break-glass/<int:grant_id>/approve", api.BreakGlassApproveApi.as_view(), name="break-glass-approve"),
]
