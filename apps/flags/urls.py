from django.urls import path

from . import api
from .models import State

urlpatterns = [
    path("enabled", api.FlagsEnabledApi.as_view(), name="enabled"),
    path("<slug:key>", api.FlagDetailApi.as_view(), name="detail"),
    path("<slug:key>/enable", api.FlagStateApi.as_view(state=State.ENABLED), name="enable"),
    path("<slug:key>/disable", api.FlagStateApi.as_view(state=State.DISABLED), name="disable"),
]
