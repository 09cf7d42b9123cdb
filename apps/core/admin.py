"""The incident lock switch in the admin, and the mixin that makes every ModelAdmin read-only while it is on."""

from django import forms
from django.contrib import admin, messages
from django.http import HttpResponseRedirect
from django.urls import reverse
from django.utils.translation import gettext_lazy as _

from . import incident_lock
from .models import IncidentLock


class IncidentLockAdminMixin:
    """While the lock is on: no add, change or delete, and only allowed emergency actions.

    A ModelAdmin names the emergency operation it performs (`emergency_op`) or maps action names to
    operations (`emergency_actions`); TezgahAdminSite.register adds this mixin to every ModelAdmin.
    Both are read with defaults rather than declared here: register() puts this mixin first in the
    class's bases, where a default would hide the ModelAdmin's own.
    """

    def _emergency_op(self):
        return getattr(self, "emergency_op", None)

    def _frozen(self) -> bool:
        return incident_lock.is_locked() and not incident_lock.emergency_allowed(self._emergency_op())

    def has_add_permission(self, request, *args):
        return not self._frozen() and super().has_add_permission(request, *args)

    def has_change_permission(self, request, obj=None):
        return not self._frozen() and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None):
        return not self._frozen() and super().has_delete_permission(request, obj)

    def get_actions(self, request):
        actions = super().get_actions(request)
        if not incident_lock.is_locked() or incident_lock.emergency_allowed(self._emergency_op()):
            return actions
        emergency_actions = getattr(self, "emergency_actions", {})
        return {
            name: action
            for name, action in actions.items()
            if incident_lock.emergency_allowed(emergency_actions.get(name))
        }


class IncidentLockForm(forms.ModelForm):
    reason = forms.CharField(
        label=_("Reason"),
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text=_("Recorded in the audit trail."),
    )

    class Meta:
        model = IncidentLock
        fields = ("enabled", "reason")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Each switch needs its own reason; the last one is shown read-only beside the form.
        self.initial["reason"] = ""


@admin.register(IncidentLock)
class IncidentLockAdmin(IncidentLockAdminMixin, admin.ModelAdmin):
    emergency_op = incident_lock.OP_LIFT_LOCK
    form = IncidentLockForm
    readonly_fields = ("changed_by", "changed_at")
    fields = ("enabled", "reason", "changed_by", "changed_at")

    def has_add_permission(self, request, *args):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return request.user.has_perm("core.toggle_incident_lock")

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("core.toggle_incident_lock") or super().has_view_permission(request, obj)

    def changelist_view(self, request, extra_context=None):
        # One switch: the list is its change page.
        IncidentLock.objects.get_or_create(pk=1)
        return HttpResponseRedirect(reverse("admin:core_incidentlock_change", args=[1]))

    def response_change(self, request, obj):
        # Django's 'The incident lock "on" was changed successfully.' names the switch by its state.
        message = _("The incident lock is now on.") if obj.enabled else _("The incident lock is now off.")
        self.message_user(request, message, messages.SUCCESS)
        return HttpResponseRedirect(request.path)

    def save_model(self, request, obj, form, change):
        incident_lock.set_lock(obj.enabled, reason=form.cleaned_data["reason"], actor=request.user, source="admin")
        obj.refresh_from_db()
        if incident_lock.state().forced_by_env:
            self.message_user(
                request, _("INCIDENT_LOCK_ENABLED is set: the lock stays on until it is removed."), messages.WARNING
            )
