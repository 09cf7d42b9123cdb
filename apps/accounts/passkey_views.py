"""Passkey pages and the JSON halves of their WebAuthn ceremonies (apps/accounts/passkeys.py does the work).

django-otp-webauthn's own views sign a user in from the passkey alone; ours keep the admin's order:
password first (mfa_session's pending user), then the passkey, with every failure counted by the lockout.
The browser side is the library's own script (served from our static files), pointed at these URLs.
"""

import json
from urllib.parse import urlencode

from django import forms
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpResponseRedirect, JsonResponse
from django.middleware import csrf
from django.shortcuts import get_object_or_404
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View
from django.views.decorators.cache import never_cache
from django_otp import DEVICE_ID_SESSION_KEY

from apps.security import lockout

from . import mfa_session, passkeys, services
from .views import AdminStepView

PENDING_NAME_KEY = "passkey_register_name"


def ceremony_config(request, **urls) -> dict:
    """The `otp_webauthn_config` the library's script reads (json_script): our URLs and the CSRF token."""
    return {"autocompleteLoginFieldSelector": None, "nextFieldSelector": "input[name='next']",
            "csrfToken": csrf.get_token(request), **urls}  # fmt: skip


def passkey_button_context(request, user, *, begin: str, complete: str) -> dict:
    """Template context for the "verify with a passkey" button; none when `user` has no passkey."""
    if user is None or not passkeys.has_passkey(user):
        return {"has_passkey": False}
    config = ceremony_config(request, beginAuthenticationUrl=begin, completeAuthenticationUrl=complete)
    return {"has_passkey": True, "webauthn_config": config}


def _json_body(request) -> dict:
    try:
        data = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def _refused(detail, status=400):
    return JsonResponse({"detail": str(detail)}, status=status)


@method_decorator(never_cache, name="dispatch")
class PasskeySignInView(AdminStepView):
    """Step 2 with a passkey: `begin` hands out a challenge for the pending user's passkeys, `complete`
    checks the signed answer and signs in (django-otp's otp_login, so `is_verified()` holds)."""

    http_method_names = ["post"]
    stage = "begin"

    def dispatch(self, request, *args, **kwargs):
        self.user = mfa_session.pending_user(request)
        if self.user is None:
            return _refused(_("Sign in again: your password step has expired."), status=403)
        if lockout.is_locked(request, self.user.get_username()):
            mfa_session.forget_password_step(request)
            refusal = lockout.refuse(request, self.user.get_username())
            return _refused(_("Too many failed attempts; try again later."), status=refusal.status_code)
        if not passkeys.has_passkey(self.user):
            return _refused(_("This account has no passkey."))
        return super().dispatch(request, *args, **kwargs)

    def post(self, request):
        if self.stage == "begin":
            return JsonResponse(passkeys.begin_authentication(request, self.user))
        try:
            device = passkeys.complete_authentication(request, self.user, _json_body(request))
        except passkeys.PasskeyRefused as exc:
            services.note_sign_in_event("auth.login_failed", user=self.user, step="passkey", reason=str(exc)[:200])
            if lockout.note_failure(request, self.user.get_username(), step="passkey"):
                mfa_session.forget_password_step(request)
            return _refused(_("The passkey could not be verified. Try again, or use a code."))
        next_url = self.finish_login(request, self.user, device)
        services.note_sign_in_event("auth.login", user=self.user, method="passkey", device=device.persistent_id)
        return JsonResponse({"id": device.pk, "redirect_url": next_url})


@method_decorator(never_cache, name="dispatch")
class PasskeyStepUpView(AdminStepView):
    """Step-up with a passkey: a signed-in admin's fresh assertion counts as the fresh code would."""

    http_method_names = ["post"]
    stage = "begin"

    def post(self, request):
        user = request.user
        if not passkeys.has_passkey(user):
            return _refused(_("This account has no passkey."))
        if lockout.is_locked(request, user.get_username()):
            refusal = lockout.refuse(request, user.get_username())
            return _refused(_("Too many failed attempts; try again later."), status=refusal.status_code)
        if self.stage == "begin":
            return JsonResponse(passkeys.begin_authentication(request, user))
        try:
            device = passkeys.complete_authentication(request, user, _json_body(request))
        except passkeys.PasskeyRefused as exc:
            services.note_sign_in_event("auth.step_up_failed", user=user, method="passkey", reason=str(exc)[:200])
            lockout.note_failure(request, user.get_username(), step="step_up")
            return _refused(_("The passkey could not be verified. Try again, or use a code."))
        mfa_session.mark_stepped_up(request)
        services.note_sign_in_event("auth.step_up", user=user, method="passkey", device=device.persistent_id)
        return JsonResponse({"id": device.pk, "redirect_url": self.safe_next(request, request.GET.get("next"))})


class PasskeyNameForm(forms.Form):
    name = forms.CharField(
        label=gettext_lazy("Passkey name"),
        max_length=passkeys.NAME_MAX_LENGTH,
        help_text=gettext_lazy("So you can tell your keys apart, e.g. “work laptop” or “YubiKey”."),
    )


class PasskeysView(AdminStepView):
    """The signed-in admin's passkeys: name and register a new one, remove one. Both need a fresh second
    factor (step-up), as changing any other device does (StepUpDeviceMixin)."""

    template_name = "admin/mfa/passkeys.html"

    def _step_up_first(self, request):
        messages.info(request, _("Changing or removing a device needs a fresh code first."))
        query = urlencode({"next": reverse("admin:mfa_passkeys")})
        return HttpResponseRedirect(f"{reverse('admin:mfa_step_up')}?{query}")

    def get(self, request, form=None):
        pending_name = request.session.get(PENDING_NAME_KEY)
        config = ceremony_config(
            request,
            beginRegistrationUrl=reverse("admin:mfa_passkey_register_begin"),
            completeRegistrationUrl=reverse("admin:mfa_passkey_register_complete"),
        )
        return self.render(
            request,
            title=_("Passkeys and security keys"),
            passkeys=passkeys.confirmed_passkeys(request.user),
            form=form or PasskeyNameForm(),
            pending_name=pending_name if mfa_session.stepped_up_recently(request) else None,
            webauthn_config=config,
        )

    def post(self, request):
        if "cancel" in request.POST:
            request.session.pop(PENDING_NAME_KEY, None)
            return HttpResponseRedirect(reverse("admin:mfa_passkeys"))
        if "remove" not in request.POST:
            form = PasskeyNameForm(request.POST)
            if not form.is_valid():
                return self.get(request, form=form)
            # Kept across the step-up, which comes back to this page with the register button.
            request.session[PENDING_NAME_KEY] = form.cleaned_data["name"].strip()
        if not mfa_session.stepped_up_recently(request):
            return self._step_up_first(request)
        if "remove" in request.POST:
            device = get_object_or_404(
                passkeys.confirmed_passkeys(request.user), pk=str(request.POST["remove"])[:20] or None
            )
            # The removal ends every other session and API token of the owner (apps.security.signals); this one
            # stays, since it has just given a fresh second factor.
            device._security_keep_session_key = request.session.session_key
            signed_in_with_it = request.session.get(DEVICE_ID_SESSION_KEY) == device.persistent_id
            passkeys.remove(device, actor=request.user)
            messages.success(request, _("The passkey “%(name)s” was removed.") % {"name": device.name})
            if signed_in_with_it:
                # This session's second factor no longer exists (django-otp would stop counting it as verified).
                logout(request)
                messages.info(request, _("You had signed in with that passkey: sign in again."))
                return HttpResponseRedirect(reverse("admin:login"))
            return HttpResponseRedirect(reverse("admin:mfa_passkeys"))
        return HttpResponseRedirect(reverse("admin:mfa_passkeys"))


@method_decorator(never_cache, name="dispatch")
class PasskeyRegisterView(View):
    """The JSON halves of registering the passkey named on PasskeysView (after a fresh step-up)."""

    http_method_names = ["post"]
    stage = "begin"

    def post(self, request):
        name = request.session.get(PENDING_NAME_KEY)
        if not name or not mfa_session.stepped_up_recently(request):
            return _refused(_("Name the passkey and confirm with a fresh code first."), status=403)
        if self.stage == "begin":
            return JsonResponse(passkeys.begin_registration(request, request.user))
        try:
            device = passkeys.complete_registration(request, request.user, _json_body(request), name=name)
        except passkeys.PasskeyRefused:
            return _refused(_("Registration failed. The server was unable to verify this passkey."))
        request.session.pop(PENDING_NAME_KEY, None)
        messages.success(request, _("The passkey “%(name)s” was added.") % {"name": device.name})
        return JsonResponse({"id": device.pk})
