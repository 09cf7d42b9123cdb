"""The ERP console: profiles with their key ring, sync records with attempt history, the DLQ."""

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from apps.accounts.admin_scoping import TenantListFilter, TenantScopedAdmin

from . import inbound_services, services
from .models import ErpKey, ErpOutboundDeadLetter, ErpSync, ErpSyncAttempt, IntegrationProfile, KeyState, SyncStatus


class _ReadOnlyInline(admin.TabularInline):
    """Rows shown beside their parent that only services write."""

    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ErpKeyInline(_ReadOnlyInline):
    model = ErpKey
    fields = ("state", "fingerprint", "created_at", "activated_at", "retired_at")
    readonly_fields = fields


class IntegrationProfileForm(forms.ModelForm):
    base_url = forms.URLField(
        label=_("base URL"), required=False, assume_scheme="https", help_text=_("Empty: ERP_BASE_URL.")
    )
    inbound_token = forms.CharField(
        label=_("New inbound bearer token"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Stored only as a hash; leave empty to keep the current one."),
    )
    current_secret = forms.CharField(
        label=_("New current signing secret"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Replaces the current key (the old one is retired). Stored encrypted, never shown again."),
    )
    next_secret = forms.CharField(
        label=_("New next signing secret"),
        required=False,
        widget=forms.PasswordInput(render_value=False),
        help_text=_("Accepted on inbound requests beside the current key until a rotation promotes it."),
    )

    class Meta:
        model = IntegrationProfile
        fields = (
            "tenant",
            "name",
            "base_url",
            "enabled",
            "connect_timeout_seconds",
            "read_timeout_seconds",
            "standard_webhooks",
            "ip_allowlist",
            "signature_required",
        )

    def clean(self):
        cleaned = super().clean()
        for name in ("current_secret", "next_secret", "inbound_token"):
            value = cleaned.get(name) or ""
            if value and len(value) < 16:
                self.add_error(name, _("Use at least 16 characters."))
        return cleaned


@admin.register(IntegrationProfile)
class IntegrationProfileAdmin(TenantScopedAdmin):
    form = IntegrationProfileForm
    list_display = ("name", "tenant", "base_url", "enabled", "paused_at", "breaker_state", "standard_webhooks")
    list_filter = ("enabled", TenantListFilter)
    list_select_related = ("tenant",)
    readonly_fields = ("paused_at", "pause_reason", "breaker_state", "key_rotation", "created_at", "updated_at")

    @admin.display(description=_("key rotation"))
    def key_rotation(self, obj):
        if obj.pk is None:
            return "-"
        url = reverse("erp-rotate-keys", args=[obj.pk])
        return format_html('<a href="{}">{}</a>', url, _("Rotate the keys: promote next, make a new next"))

    @admin.display(description=_("circuit breaker"))
    def breaker_state(self, obj):
        if obj.pk is None:
            return "-"
        state = services.breaker(obj).state()
        if state.state == "closed":
            return _("closed")
        return _("%(state)s after %(n)s failures; next probe in %(s)s s") % {
            "state": state.state,
            "n": state.consecutive_failures,
            "s": int(services.breaker(obj).seconds_until_retry()),
        }

    inlines = [ErpKeyInline]
    actions = ["resume_selected"]

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            token = form.cleaned_data.get("inbound_token")
            if token:
                inbound_services.set_inbound_token(obj, token, actor=request.user)
            for field, state in (("current_secret", KeyState.CURRENT), ("next_secret", KeyState.NEXT)):
                secret = form.cleaned_data.get(field)
                if secret:
                    key = services.replace_key(obj, secret, state=state, actor=request.user)
                    messages.info(
                        request,
                        _("Stored a new %(state)s key, fingerprint %(fp)s.") % {"state": state, "fp": key.fingerprint},
                    )

    @admin.action(description=_("Resume selected paused profiles"), permissions=["change"])
    def resume_selected(self, request, queryset):
        waiting = sum(services.resume_profile(p, actor=request.user) for p in queryset if p.is_paused)
        self.message_user(request, _("Resumed; %(n)s waiting messages are being sent.") % {"n": waiting})


class ErpSyncAttemptInline(_ReadOnlyInline):
    model = ErpSyncAttempt
    fields = ("number", "started_at", "duration_ms", "response_code", "outcome", "error_class", "error_message",
              "request_id", "signed_with")  # fmt: skip
    readonly_fields = fields


class ErpDeadLetterInline(_ReadOnlyInline):
    model = ErpOutboundDeadLetter
    fields = ("created_at", "cause", "error_class", "response_code", "attempts", "closed_at", "closed_by")
    readonly_fields = fields


class _MessageRowsAdmin(TenantScopedAdmin):
    """Messages and dead letters are written by the delivery service only: here they are read and acted on."""

    def get_readonly_fields(self, request, obj=None):
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ErpSync)
class ErpSyncAdmin(_MessageRowsAdmin):
    list_display = ("id", "direction", "status", "tenant", "job", "seq", "attempt_count", "response_code",
                    "error_class", "next_attempt_at", "acked_at", "created_at")  # fmt: skip
    list_filter = ("direction", "status", "error_class", TenantListFilter)
    list_select_related = ("tenant", "job")
    search_fields = ("=idempotency_key", "=request_id", "=external_id", "=body_sha256")
    search_help_text = _("Exact idempotency key, request id, ERP id or body sha256.")
    raw_id_fields = ("job", "profile", "tenant")
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    inlines = [ErpSyncAttemptInline, ErpDeadLetterInline]
    actions = ["requeue_selected", "resolve_selected", "ignore_selected"]

    def has_resolve_permission(self, request):
        return request.user.has_perm("erp.resolve_erpsync")

    @admin.action(description=_("Requeue selected messages (send again now)"), permissions=["resolve"])
    def requeue_selected(self, request, queryset):
        count = services.requeue(queryset, actor=request.user)
        self.message_user(
            request, ngettext("%(n)s message requeued.", "%(n)s messages requeued.", count) % {"n": count}
        )

    @admin.action(description=_("Mark selected messages resolved"), permissions=["resolve"])
    def resolve_selected(self, request, queryset):
        count = services.close(queryset, actor=request.user, status=SyncStatus.RESOLVED)
        self.message_user(
            request, ngettext("%(n)s message resolved.", "%(n)s messages resolved.", count) % {"n": count}
        )

    @admin.action(description=_("Ignore selected messages"), permissions=["resolve"])
    def ignore_selected(self, request, queryset):
        count = services.close(queryset, actor=request.user, status=SyncStatus.IGNORED)
        self.message_user(request, ngettext("%(n)s message ignored.", "%(n)s messages ignored.", count) % {"n": count})


@admin.register(ErpOutboundDeadLetter)
class ErpOutboundDeadLetterAdmin(_MessageRowsAdmin):
    tenant_field = "sync__tenant"
    list_display = ("sync", "cause", "error_class", "response_code", "attempts", "created_at", "closed_at", "closed_by")
    list_filter = ("cause", "error_class", ("closed_at", admin.EmptyFieldListFilter))
    list_select_related = ("sync",)
    show_full_result_count = False
    show_facets = admin.ShowFacets.NEVER
    actions = ["replay_selected", "dry_run_selected"]

    def has_replay_permission(self, request):
        return request.user.has_perm("erp.replay_erpsync")

    @admin.action(description=_("Replay selected dead letters"), permissions=["replay"])
    def replay_selected(self, request, queryset):
        result = services.replay(queryset, actor=request.user)
        self.message_user(
            request,
            _("Replayed %(n)s; skipped %(s)s already closed.") % {"n": len(result.replayed), "s": len(result.skipped)},
        )

    @admin.action(description=_("Dry run: list what a replay would send"), permissions=["replay"])
    def dry_run_selected(self, request, queryset):
        result = services.replay(queryset, actor=request.user, dry_run=True)
        ids = ", ".join(str(pk) for pk in result.replayed) or "-"
        self.message_user(request, _("A replay would send messages: %(ids)s") % {"ids": ids}, level=messages.INFO)
