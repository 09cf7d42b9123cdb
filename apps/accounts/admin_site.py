"""The admin site: every page needs a password and a TOTP code, and the login walks a user through enrolment.

django-otp's OTPAdminSite asks for the code on the login form, which leaves a staff user without a device
no way in; this site keeps its `is_verified()` rule and adds the enrolment and step-up steps around it.
"""

from django.contrib import admin
from django.urls import path
from django.utils.translation import gettext_lazy as _


class TezgahAdminSite(admin.AdminSite):
    site_header = _("Tezgah operations console")
    site_title = _("Tezgah")
    index_title = _("Operations")
    enable_nav_sidebar = True
    # "View site" would lead to / and from there back here; the header links to the panel instead.
    site_url = None

    def has_permission(self, request):
        user = request.user
        return bool(user.is_active and user.is_staff and getattr(user, "is_verified", lambda: False)())

    def each_context(self, request):
        # Django builds the app list and recent actions for any signed-in user; the login and MFA steps
        # render with this context, so a password-only session must not get them into its template.
        context = super().each_context(request)
        if not context["has_permission"]:
            context["available_apps"] = []
            context["log_entries"] = context["log_entries"].none()
        # issue 5: the incident lock banner (templates/admin/base_site.html), for signed-in staff only: the
        # reason may say more than a login page should.
        if context["has_permission"]:
            from apps.core import incident_lock

            context["incident_lock"] = incident_lock.state()
        return context

    def register(self, model_or_iterable, admin_class=None, **options):
        # Every ModelAdmin, third-party ones included (celery-beat schedules, knox tokens, devices), writes
        # an audit entry with a field-level diff for each add, change and delete.
        from apps.audit.admin_mixins import AuditedAdminMixin
        from apps.core.admin import IncidentLockAdminMixin

        admin_class = admin_class or admin.ModelAdmin
        if not issubclass(admin_class, AuditedAdminMixin):
            admin_class = type(admin_class.__name__, (AuditedAdminMixin, admin_class), {})
        # issue 5: while the incident lock is on, every ModelAdmin is read-only (bar emergency operations).
        if not issubclass(admin_class, IncidentLockAdminMixin):
            admin_class = type(admin_class.__name__, (IncidentLockAdminMixin, admin_class), {})
        # issue 14: the `bulk_operations` flag gates the bulk delete action.
        from apps.flags.admin_actions import BulkOperationsGateMixin

        if not issubclass(admin_class, BulkOperationsGateMixin):
            admin_class = type(admin_class.__name__, (BulkOperationsGateMixin, admin_class), {})
        return super().register(model_or_iterable, admin_class, **options)

    def login(self, request, extra_context=None):
        from .views import AdminLoginView

        return AdminLoginView.as_view(admin_site=self)(request)

    def get_urls(self):
        from django.views.i18n import JavaScriptCatalog

        from . import passkey_views as pk
        from . import views

        # The library script's strings (gettext in the browser): its catalog, and ours in locale/*/djangojs.po.
        passkey_catalog = JavaScriptCatalog.as_view(packages=["django_otp_webauthn"])

        mfa = [
            path("mfa/verify/", views.MfaVerifyView.as_view(admin_site=self), name="mfa_verify"),
            path("mfa/enrol/", views.MfaEnrolView.as_view(admin_site=self), name="mfa_enrol"),
            path(
                "mfa/backup-codes/",
                self.admin_view(views.BackupCodesView.as_view(admin_site=self)),
                name="mfa_backup_codes",
            ),
            path("mfa/step-up/", self.admin_view(views.StepUpView.as_view(admin_site=self)), name="mfa_step_up"),
            # issue 14: passkeys (WebAuthn). Sign-in's begin/complete are login steps, like mfa_verify.
            path("mfa/passkey/begin/", pk.PasskeySignInView.as_view(admin_site=self), name="mfa_passkey_begin"),
            path(
                "mfa/passkey/complete/",
                pk.PasskeySignInView.as_view(admin_site=self, stage="complete"),
                name="mfa_passkey_complete",
            ),
            path(
                "mfa/step-up/passkey/begin/",
                self.admin_view(pk.PasskeyStepUpView.as_view(admin_site=self)),
                name="mfa_step_up_passkey_begin",
            ),
            path(
                "mfa/step-up/passkey/complete/",
                self.admin_view(pk.PasskeyStepUpView.as_view(admin_site=self, stage="complete")),
                name="mfa_step_up_passkey_complete",
            ),
            path("mfa/passkeys/", self.admin_view(pk.PasskeysView.as_view(admin_site=self)), name="mfa_passkeys"),
            path(
                "mfa/passkeys/register/begin/",
                self.admin_view(pk.PasskeyRegisterView.as_view()),
                name="mfa_passkey_register_begin",
            ),
            path(
                "mfa/passkeys/register/complete/",
                self.admin_view(pk.PasskeyRegisterView.as_view(stage="complete")),
                name="mfa_passkey_register_complete",
            ),
            path("mfa/passkey/jsi18n/", passkey_catalog, name="mfa_passkey_jsi18n"),
        ]
        return mfa + super().get_urls()
