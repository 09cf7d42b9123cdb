from django.db import models
from django.utils.translation import gettext_lazy as _


class IdempotencyState(models.TextChoices):
    IN_PROGRESS = "in_progress", _("In progress")
    DONE = "done", _("Done")


class IdempotencyRecord(models.Model):
    """One `Idempotency-Key` of one caller: the request's fingerprint and, once answered, the stored response."""

    # sha256 of the authenticated principal (the user), never of a header: two users never share a key's record.
    owner = models.CharField(_("owner"), max_length=64)
    key = models.CharField(_("idempotency key"), max_length=255)
    fingerprint = models.CharField(_("fingerprint"), max_length=64)
    method = models.CharField(_("method"), max_length=8)
    path = models.CharField(_("path"), max_length=500)
    state = models.CharField(_("state"), max_length=16, choices=IdempotencyState.choices)
    status_code = models.PositiveSmallIntegerField(_("status code"), null=True, blank=True)
    response_headers = models.JSONField(_("response headers"), default=dict, blank=True)
    # Fernet-encrypted: a stored response may hold a secret (an issued API token, a shown key).
    response_body = models.BinaryField(_("response body"), default=b"", blank=True)
    created_at = models.DateTimeField(_("created at"))
    completed_at = models.DateTimeField(_("completed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("idempotency key")
        verbose_name_plural = _("idempotency keys")
        constraints = [models.UniqueConstraint(fields=["owner", "key"], name="core_idempotency_owner_key")]
        indexes = [models.Index(fields=["created_at"], name="core_idempotency_created")]

    def __str__(self):
        return f"{self.method} {self.path} [{self.key}]"


class IncidentLock(models.Model):
    """The single row (pk 1) saying whether the incident lock (read-only mode) is on, since when and why."""

    enabled = models.BooleanField(_("enabled"), default=False)
    reason = models.CharField(_("reason"), max_length=500, blank=True)
    # A name, not a foreign key: core depends on no other app (the audit entry names the actor too).
    changed_by = models.CharField(_("changed by"), max_length=150, blank=True)
    changed_at = models.DateTimeField(_("changed at"), null=True, blank=True)

    class Meta:
        verbose_name = _("incident lock")
        verbose_name_plural = _("incident lock")
        permissions = [("toggle_incident_lock", _("Can turn the incident lock on and off"))]

    def __str__(self):
        return str(_("on") if self.enabled else _("off"))
