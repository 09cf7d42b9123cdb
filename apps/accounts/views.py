"""The admin's sign-in: password, then a TOTP code (or enrolment of a first device), and step-up."""

from urllib.parse import urlencode

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate
from django.contrib.auth import login as auth_login
from django.http import HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views import View
from django_otp import login as otp_login
from django_otp.plugins.otp_static.models import StaticDevice

from apps.security import lockout

from . import mfa_session, selectors, services
from .forms import PasswordStepForm, TokenForm


def home(request):
    """`/`: the panel or the console by what the signed-in user may do; anyone else goes to the sign-in."""
    user = request.user
    if not (user.is_authenticated and user.is_active and user.is_staff and user.is_verified()):
        return HttpResponseRedirect(f"{reverse('admin:login')}?{urlencode({'next': '/'})}")
    if selectors.landing_page_for(user) == "panel":
        return HttpResponseRedirect(reverse("panel:overview"))
    return HttpResponseRedirect(reverse("admin:index"))


class AdminStepView(View):
    admin_site = None
    template_name = ""

    def render(self, request, **context):
        base = self.admin_site.each_context(request)
        base.update(context)
        return render(request, self.template_name, base)

    def safe_next(self, request, candidate):
        if candidate and url_has_allowed_host_and_scheme(
            candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
        ):
            return candidate
        return reverse("admin:index", current_app=self.admin_site.name)

    def finish_login(self, request, user, device):
        next_url = mfa_session.pending_next(request, reverse("admin:index"))
        mfa_session.forget_password_step(request)
        auth_login(request, user, backend=user.backend)  # rotates the session key
        otp_login(request, device)
        return next_url


class AdminLoginView(AdminStepView):
    """Step 1: username and password. Nothing is signed in yet; the session only remembers who passed."""

    template_name = "admin/mfa/login.html"

    def get(self, request):
        if self.admin_site.has_permission(request):
            return HttpResponseRedirect(self.safe_next(request, request.GET.get("next")))
        return self.render(request, form=PasswordStepForm(), next=request.GET.get("next", ""))

    def post(self, request):
        form = PasswordStepForm(request.POST)
        next_url = self.safe_next(request, request.POST.get("next") or request.GET.get("next"))
        if form.is_valid():
            user = authenticate(request, username=form.cleaned_data["username"], password=form.cleaned_data["password"])
            if user is not None and user.is_active and user.is_staff:
                services.note_sign_in_event("auth.password_accepted", user=user)
                mfa_session.remember_password_step(request, user, next_url=next_url)
                step = "admin:mfa_verify" if services.has_confirmed_totp(user) else "admin:mfa_enrol"
                return HttpResponseRedirect(reverse(step))
            services.note_sign_in_event(
                "auth.login_failed", user=user, step="password", username=form.cleaned_data["username"][:150]
            )
            form.add_error(
                None,
                _(
                    "Please enter the correct username and password for a staff account. "
                    "Both fields may be case-sensitive."
                ),
            )
        return self.render(request, form=form, next=next_url)


class MfaVerifyView(AdminStepView):
    """Step 2: a current TOTP code, or one unused backup code."""

    template_name = "admin/mfa/verify.html"

    def dispatch(self, request, *args, **kwargs):
        self.user = mfa_session.pending_user(request)
        if self.user is None:
            messages.info(request, _("Sign in again: your password step has expired."))
            return HttpResponseRedirect(reverse("admin:login"))
        if not services.has_confirmed_totp(self.user):
            return HttpResponseRedirect(reverse("admin:mfa_enrol"))
        return super().dispatch(request, *args, **kwargs)

    def render(self, request, **context):
        # issue 14: a passkey button beside the code form when the user has one (passkey_views does the rest).
        from .passkey_views import passkey_button_context

        urls = {"begin": reverse("admin:mfa_passkey_begin"), "complete": reverse("admin:mfa_passkey_complete")}
        return super().render(request, **passkey_button_context(request, self.user, **urls), **context)

    def get(self, request):
        return self.render(request, form=TokenForm(), pending_user=self.user)

    def post(self, request):
        # issue 14: the code step counts against the same axes lockout as the password step.
        if lockout.is_locked(request, self.user.get_username()):
            mfa_session.forget_password_step(request)
            return lockout.refuse(request, self.user.get_username())
        form = TokenForm(request.POST)
        if form.is_valid():
            device = services.verify_second_factor(self.user, form.cleaned_data["token"])
            if device is not None:
                next_url = self.finish_login(request, self.user, device)
                backup = isinstance(device, StaticDevice)
                remaining = device.token_set.count() if backup else None
                if backup:
                    services.note_sign_in_event("auth.backup_code_used", user=self.user, remaining=remaining)
                services.note_sign_in_event("auth.login", user=self.user, method="backup_code" if backup else "totp")
                if backup:
                    messages.warning(
                        request,
                        _("You signed in with a backup code; %(n)d remain. Each code works once.") % {"n": remaining},
                    )
                return HttpResponseRedirect(next_url)
            services.note_sign_in_event("auth.login_failed", user=self.user, step="code")
            if lockout.note_failure(request, self.user.get_username(), step="code"):
                mfa_session.forget_password_step(request)
            form.add_error("token", _("That code is not valid. Check your device's clock and try again."))
        return self.render(request, form=form, pending_user=self.user)


class MfaEnrolView(AdminStepView):
    """First sign-in of a staff user with no confirmed device: scan a QR code and confirm one code.

    The pending secret survives later sign-ins until it is confirmed or the user starts over; an account
    whose password or e-mail someone else set first needs the owner's e-mailed code (MfaOwnerProofView).
    """

    template_name = "admin/mfa/enrol.html"

    def dispatch(self, request, *args, **kwargs):
        self.user = mfa_session.pending_user(request)
        if self.user is None:
            return HttpResponseRedirect(reverse("admin:login"))
        if services.has_confirmed_totp(self.user):
            return HttpResponseRedirect(reverse("admin:mfa_verify"))
        if self.user.mfa_owner_proof_required and not mfa_session.owner_proven(request):
            # Same URL, so the sign-in steps' throttle, MFA default-deny and incident lock treat it alike.
            return MfaOwnerProofView.as_view(admin_site=self.admin_site)(request)
        if request.method == "POST" and "start_over" in request.POST:
            services.restart_totp_enrolment(self.user)
            messages.info(request, _("A new key was made; the old one no longer works. Scan this one."))
            return HttpResponseRedirect(reverse("admin:mfa_enrol"))
        self.device = services.start_totp_enrolment(self.user)
        return super().dispatch(request, *args, **kwargs)

    def _context(self, form):
        uri = self.device.config_url
        secret = _base32_secret(self.device)
        return {
            "form": form,
            "qr_svg": segno.make(uri, error="m").svg_data_uri(scale=5),
            "secret": " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)),
            "secret_created_at": self.device.created_at,
            "issuer": settings.OTP_TOTP_ISSUER,
            "pending_user": self.user,
        }

    def get(self, request):
        return self.render(request, **self._context(TokenForm()))

    def post(self, request):
        if lockout.is_locked(request, self.user.get_username()):
            mfa_session.forget_password_step(request)
            return lockout.refuse(request, self.user.get_username())
        form = TokenForm(request.POST)
        if form.is_valid():
            if services.confirm_totp_device(self.device, form.cleaned_data["token"]):
                self.device.refresh_from_db()
                codes = services.issue_backup_codes(self.user)
                services.note_sign_in_event(
                    "auth.mfa_enrolled", user=self.user, device=self.device.persistent_id, backup_codes=len(codes)
                )
                next_url = self.finish_login(request, self.user, self.device)
                services.note_sign_in_event("auth.login", user=self.user, method="enrolment")
                request.session[mfa_session.BACKUP_CODES_KEY] = codes
                return HttpResponseRedirect(f"{reverse('admin:mfa_backup_codes')}?{urlencode({'next': next_url})}")
            services.note_sign_in_event("auth.login_failed", user=self.user, step="enrolment")
            if lockout.note_failure(request, self.user.get_username(), step="enrolment"):
                mfa_session.forget_password_step(request)
            form.add_error("token", _("That code is not valid. Check your device's clock and try again."))
        return self.render(request, **self._context(form))


class MfaOwnerProofView(AdminStepView):
    """Before enrolment, when someone else set this account's password or e-mail: a code sent to its e-mail.

    Whoever reset the password can pass the password step, but cannot read the owner's mailbox. Served at
    the enrolment URL by MfaEnrolView, which has checked the pending user.
    """

    template_name = "admin/mfa/owner_proof.html"

    def dispatch(self, request, *args, **kwargs):
        self.user = mfa_session.pending_user(request)
        return super().dispatch(request, *args, **kwargs)

    def render(self, request, **context):
        return super().render(request, pending_user=self.user, masked_email=_masked_email(self.user.email), **context)

    def get(self, request):
        return self.render(request, form=TokenForm())

    def post(self, request):
        if "send" in request.POST:
            if not self.user.email:
                messages.error(request, _("This account has no e-mail address. Ask an administrator to add yours."))
            elif mfa_session.owner_code_sent_recently(request):
                messages.info(request, _("A code was sent a moment ago; wait a minute before asking for another."))
            else:
                mfa_session.remember_owner_code(request, services.send_owner_proof_code(self.user))
                messages.info(request, _("We sent a code to %(email)s.") % {"email": _masked_email(self.user.email)})
            return HttpResponseRedirect(reverse("admin:mfa_enrol"))
        if lockout.is_locked(request, self.user.get_username()):
            mfa_session.forget_password_step(request)
            return lockout.refuse(request, self.user.get_username())
        form = TokenForm(request.POST)
        if form.is_valid():
            if mfa_session.check_owner_code(request, form.cleaned_data["token"]):
                services.note_sign_in_event("auth.mfa_owner_proven", user=self.user)
                return HttpResponseRedirect(reverse("admin:mfa_enrol"))
            services.note_sign_in_event("auth.login_failed", user=self.user, step="owner_code")
            if lockout.note_failure(request, self.user.get_username(), step="owner_code"):
                mfa_session.forget_password_step(request)
            form.add_error("token", _("That code is not valid. Ask for a new one if it is older than a few minutes."))
        return self.render(request, form=form)


def _masked_email(address: str) -> str:
    local, _at, domain = (address or "").partition("@")
    return f"{local[:1]}***@{domain}" if domain else ""


def _base32_secret(device) -> str:
    from base64 import b32encode

    return b32encode(device.bin_key).decode("ascii").rstrip("=")


class BackupCodesView(AdminStepView):
    """Shows freshly issued backup codes once; they are not stored anywhere a person can read them again."""

    template_name = "admin/mfa/backup_codes.html"

    def get(self, request):
        codes = request.session.pop(mfa_session.BACKUP_CODES_KEY, None)
        return self.render(request, codes=codes, next=self.safe_next(request, request.GET.get("next")))


class StepUpView(AdminStepView):
    """A fresh TOTP code or passkey before a sensitive change (roles, removing a device); not a backup code."""

    template_name = "admin/mfa/step_up.html"

    def render(self, request, **context):
        from .passkey_views import passkey_button_context

        urls = {
            "begin": reverse("admin:mfa_step_up_passkey_begin"),
            "complete": reverse("admin:mfa_step_up_passkey_complete"),
        }
        return super().render(request, **passkey_button_context(request, request.user, **urls), **context)

    def get(self, request):
        return self.render(request, form=TokenForm(), next=request.GET.get("next", ""))

    def post(self, request):
        if lockout.is_locked(request, request.user.get_username()):
            return lockout.refuse(request, request.user.get_username())
        form = TokenForm(request.POST)
        next_url = self.safe_next(request, request.POST.get("next"))
        if form.is_valid():
            if services.verify_second_factor(request.user, form.cleaned_data["token"], allow_backup_codes=False):
                mfa_session.mark_stepped_up(request)
                services.note_sign_in_event("auth.step_up", user=request.user)
                return HttpResponseRedirect(next_url)
            services.note_sign_in_event("auth.step_up_failed", user=request.user)
            lockout.note_failure(request, request.user.get_username(), step="step_up")
            form.add_error("token", _("That code is not valid, or was already used. Wait for the next one."))
        return self.render(request, form=form, next=next_url)
