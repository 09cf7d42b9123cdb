"""The admin's view of issue 14: live sessions (end them), security events, lockouts, address lists and
break-glass (request, approve by a second administrator, revoke: every step through apps.security.breakglass)."""

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils.translation import gettext_lazy as _

from apps.accounts import selectors as account_selectors

from . import breakglass, iplists, sessions
from .models import BreakGlass, IPListEntry, Lockout, SecurityEvent, UserSession


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(UserSession)
class UserSessionAdmin(ReadOnlyAdmin):
    list_display = ("user", "created_at", "last_activity", "ip_address", "user_agent", "ended_at", "end_reason")
    list_filter = ("end_reason",)
    search_fields = ("user__username", "ip_address")
    actions = ["end_sessions"]

    def get_queryset(self, request):
        visible = account_selectors.users_visible_to(request.user)
        return super().get_queryset(request).select_related("user").filter(user__in=visible)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def has_delete_permission(self, request, obj=None):
        return False

    def has_end_permission(self, request):
        return request.user.has_perm("security.delete_usersession")

    @admin.action(permissions=["end"], description=_("End the selected sessions (sign out)"))
    def end_sessions(self, request, queryset):
        ended = 0
        for row in queryset.filter(ended_at__isnull=True):
            if account_selectors.can_manage_user(request.user, row.user) or row.user_id == request.user.pk:
                sessions.end_session(row, reason="forced_logout", actor=request.user)
                ended += 1
        messages.success(request, _("%(n)d sessions ended.") % {"n": ended})


@admin.register(SecurityEvent)
class SecurityEventAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "event_type", "severity", "username", "client_ip", "actor", "request_id")
    list_filter = ("event_type", "severity")
    search_fields = ("username", "client_ip", "request_id")

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        rows = super().get_queryset(request).select_related("actor")
        if account_selectors.sees_all_tenants(request.user):
            return rows
        visible = account_selectors.users_visible_to(request.user).values_list("username", flat=True)
        return rows.filter(username__in=visible)


@admin.register(Lockout)
class LockoutAdmin(ReadOnlyAdmin):
    list_display = ("username", "ip_address", "device", "locked_at", "until", "level", "lifted_at", "lifted_by")
    search_fields = ("username", "ip_address")

    def has_view_permission(self, request, obj=None):
        return request.user.has_perm("security.unlock_account")

    def has_delete_permission(self, request, obj=None):
        return False

    def get_queryset(self, request):
        rows = super().get_queryset(request)
        if account_selectors.sees_all_tenants(request.user):
            return rows
        return rows.filter(username__in=account_selectors.users_visible_to(request.user).values_list("username"))


@admin.register(IPListEntry)
class IPListEntryAdmin(admin.ModelAdmin):
    list_display = ("network", "list_type", "scope", "reason", "expires_at", "automatic", "added_by")
    list_filter = ("list_type", "scope", "automatic")
    search_fields = ("network", "reason")
    fields = ("network", "list_type", "scope", "reason", "expires_at")

    def has_change_permission(self, request, obj=None):
        return False

    def save_model(self, request, obj, form, change):
        from django.utils import timezone

        hours = None
        if obj.expires_at is not None:
            hours = max(1, round((obj.expires_at - timezone.now()).total_seconds() / 3600))
        entry = iplists.add_entry(
            network=obj.network,
            list_type=obj.list_type,
            scope=obj.scope,
            reason=obj.reason,
            expires_hours=hours,
            actor=request.user,
        )
        obj.pk = entry.pk

    def delete_model(self, request, obj):
        iplists.remove_entries(network=obj.network, list_type=obj.list_type, actor=request.user)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


class BreakGlassRequestForm(forms.ModelForm):
    """The request: who, why, how long. The service checks it all again and writes the event."""

    class Meta:
        model = BreakGlass
        fields = ("user", "reason", "minutes")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if "user" not in self.fields:
            return  # the read-only page of an existing request
        self.fields["user"].queryset = get_user_model().objects.filter(is_active=True, is_staff=True)
        self.fields["minutes"].help_text = _("At most %(max)d minutes from the approval.") % {
            "max": settings.BREAK_GLASS_MAX_MINUTES
        }

    def clean_minutes(self):
        minutes = self.cleaned_data["minutes"]
        if not 1 <= minutes <= settings.BREAK_GLASS_MAX_MINUTES:
            raise ValidationError(_("Between 1 and %(max)d minutes.") % {"max": settings.BREAK_GLASS_MAX_MINUTES})
        return minutes

    def clean_reason(self):
        reason = (self.cleaned_data.get("reason") or "").strip()
        if not reason:
            raise ValidationError(_("Give a reason."))
        return reason


@admin.register(BreakGlass)
class BreakGlassAdmin(admin.ModelAdmin):
    """Superusers only (security.add_breakglass): request here, then a second one approves with the action."""

    form = BreakGlassRequestForm
    list_display = ("user", "status_label", "requested_by", "approved_by", "minutes", "requested_at", "expires_at")
    list_filter = ("approved_at",)
    search_fields = ("user__username", "reason")
    readonly_fields = (
        "status_label", "requested_by", "requested_at", "approved_by", "approved_at", "expires_at", "revoked_by",
        "revoked_at",
    )  # fmt: skip
    actions = ["approve_requests", "revoke_grants"]

    def get_queryset(self, request):
        return super().get_queryset(request).select_related("user", "requested_by", "approved_by")

    def _capable(self, request):
        return request.user.has_perm(breakglass.CAPABILITY)

    def has_module_permission(self, request):
        return self._capable(request)

    def has_view_permission(self, request, obj=None):
        return self._capable(request)

    def has_add_permission(self, request):
        return self._capable(request)

    def has_change_permission(self, request, obj=None):
        return False  # a request is never edited: approve or revoke it

    def has_delete_permission(self, request, obj=None):
        return False  # the trail of who asked and who approved stays

    def has_approve_permission(self, request):
        return self._capable(request)

    def has_revoke_permission(self, request):
        return self._capable(request)

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    @admin.display(description=_("status"))
    def status_label(self, obj):
        return {
            "pending": _("waiting for approval"),
            "active": _("active"),
            "expired": _("expired"),
            "revoked": _("revoked"),
        }[obj.status()]

    def save_model(self, request, obj, form, change):
        grant = breakglass.request_access(user=obj.user, actor=request.user, reason=obj.reason, minutes=obj.minutes)
        obj.pk, obj.requested_by, obj._state.adding = grant.pk, grant.requested_by, False

    def _each(self, request, queryset, step, done_message):
        for grant in queryset:
            try:
                step(grant)
            except (PermissionDenied, ValidationError) as exc:
                text = " ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
                messages.error(request, f"{grant.user}: {text}")
            else:
                messages.success(request, done_message % {"user": grant.user})

    @admin.action(permissions=["approve"], description=_("Approve the selected break-glass requests"))
    def approve_requests(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda grant: breakglass.approve(grant, approver=request.user),
            _("Break-glass access for %(user)s approved; it works from now on for its minutes."),
        )

    @admin.action(permissions=["revoke"], description=_("Revoke the selected break-glass accesses"))
    def revoke_grants(self, request, queryset):
        self._each(
            request,
            queryset,
            lambda grant: breakglass.revoke(grant, actor=request.user),
            _("Break-glass access for %(user)s revoked."),
        )
