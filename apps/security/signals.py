"""Receivers: axes' lockout, sign-in/out for the session list, and the changes that end a user's sessions."""

from axes.signals import user_locked_out
from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db.models.signals import m2m_changed, post_delete, pre_save
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice
from django_otp_webauthn.models import WebAuthnCredential

from . import lockout, sessions


def _password_changed(sender, instance, update_fields=None, **kwargs):
    if instance.pk is None or (update_fields is not None and "password" not in update_fields):
        return
    old = sender.objects.filter(pk=instance.pk).values_list("password", flat=True).first()
    if old is not None and old != instance.password:
        instance._security_password_changed = True


def _after_user_save(sender, instance, **kwargs):
    if getattr(instance, "_security_password_changed", False):
        instance._security_password_changed = False
        sessions.end_for_user(instance, reason="password_changed")


def _roles_changed(sender, instance, action, pk_set=None, **kwargs):
    changed = action == "post_clear" or (action in ("post_add", "post_remove") and pk_set)
    if changed and isinstance(instance, get_user_model()):
        sessions.end_for_user(instance, reason="role_changed")


def _device_removed(sender, instance, **kwargs):
    if instance.confirmed and instance.user_id:
        user = get_user_model().objects.filter(pk=instance.user_id).first()
        if user is not None:
            # The owner removing their own device from a freshly stepped-up session keeps that session.
            keep = getattr(instance, "_security_keep_session_key", None)
            sessions.end_for_user(user, reason="mfa_device_removed", keep_session_key=keep)


def connect() -> None:
    from django.db.models.signals import post_save

    user_model = get_user_model()
    user_locked_out.connect(lockout.on_user_locked_out, dispatch_uid="security.lockout")
    user_logged_in.connect(sessions.on_logged_in, dispatch_uid="security.session_in")
    user_logged_in.connect(lockout.note_signed_in, dispatch_uid="security.device_cookie")
    user_logged_out.connect(sessions.on_logged_out, dispatch_uid="security.session_out")
    pre_save.connect(_password_changed, sender=user_model, dispatch_uid="security.password_pre")
    post_save.connect(_after_user_save, sender=user_model, dispatch_uid="security.password_post")
    m2m_changed.connect(_roles_changed, sender=user_model.groups.through, dispatch_uid="security.roles")
    # A passkey (django-otp-webauthn's WebAuthnCredential) is a django-otp device like the others.
    for model in (TOTPDevice, StaticDevice, WebAuthnCredential):
        post_delete.connect(_device_removed, sender=model, dispatch_uid=f"security.device_removed.{model.__name__}")
