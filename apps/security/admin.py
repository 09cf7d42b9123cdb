"""The admin's view of issue 14: live sessions (end them), security events, lockouts, address lists."""

from django.contrib import admin, messages
from django.utils.translation import gettext_lazy as _

from apps.accounts import selectors as account_selectors

from . import iplists, sessions
from .models import IPListEntry, Lockout, SecurityEvent, UserSession


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
    list_display = ("username", "ip_address", "locked_at", "until", "level", "lifted_at", "lifted_by")
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
