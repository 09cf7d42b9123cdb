from django.db import models
from django.utils.translation import gettext_lazy as _


class ActorType(models.TextChoices):
    USER = "user", _("User")
    SYSTEM = "system", _("System")
    ERP = "erp", _("ERP")
    ANONYMOUS = "anonymous", _("Anonymous")


class AuditLog(models.Model):
    """One append-only audit entry; `seq` and the hashes are set once, by the sealer, in commit order.

    Database triggers refuse DELETE, TRUNCATE and any UPDATE except that one sealing of an unsealed row.
    """

    seq = models.BigIntegerField(_("sequence"), null=True, blank=True, unique=True)
    ts = models.DateTimeField(_("time"))
    actor_type = models.CharField(_("actor type"), max_length=16, choices=ActorType.choices)
    actor_id = models.CharField(_("actor"), max_length=64, blank=True)
    action = models.CharField(_("action"), max_length=100)
    object_type = models.CharField(_("object type"), max_length=100, blank=True)
    object_id = models.CharField(_("object id"), max_length=100, blank=True)
    payload = models.JSONField(_("payload"), default=dict)
    payload_sha256 = models.CharField(max_length=64)
    # The exact bytes payload_sha256 was computed over (canonical JSON), kept so verification hashes them
    # instead of rebuilding them from `payload` (docs/audit.md, "Verifying fast"). Null on entries written
    # before it existed: those are canonicalised from `payload`, as before.
    payload_canonical = models.TextField(null=True, blank=True, editable=False)  # noqa: DJ001 - null: not stored
    tenant_id = models.BigIntegerField(_("tenant"), null=True, blank=True)
    request_id = models.CharField(_("request id"), max_length=128, blank=True)
    client_ip = models.CharField(_("client IP"), max_length=45, blank=True)
    version = models.PositiveSmallIntegerField(_("schema version"), default=1)
    record_sha256 = models.CharField(max_length=64, blank=True)
    prev_hash = models.CharField(max_length=64, blank=True)
    chain_hash = models.CharField(max_length=64, blank=True)
    external_timestamp = models.TextField(_("external timestamp"), blank=True)
    sealed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        db_table = "audit_logs"
        verbose_name = _("audit entry")
        verbose_name_plural = _("audit entries")
        ordering = ["-id"]
        # Entries of no tenant (sign-ins, user admin, exports) name people and addresses across every tenant.
        permissions = [("view_tenantless_entries", _("Can view audit entries that belong to no tenant"))]
        indexes = [
            models.Index(fields=["id"], condition=models.Q(seq__isnull=True), name="audit_unsealed"),
            models.Index(fields=["ts"], name="audit_ts"),
            models.Index(fields=["actor_type", "actor_id", "ts"], name="audit_actor_ts"),
            models.Index(fields=["action", "ts"], name="audit_action_ts"),
            models.Index(fields=["object_type", "object_id"], name="audit_object"),
        ]

    def __str__(self):
        return f"#{self.seq or '?'} {self.action}"


class AuditCheckpoint(models.Model):
    """A signed statement of the chain's size, head hash and Merkle root at one moment.

    The signing key is not in the database, so rewriting the chain (or cutting its tail) cannot be
    hidden by recomputing hashes. Checkpoints are also written to the application log.
    """

    tree_size = models.BigIntegerField(_("entries"), unique=True)
    head_hash = models.CharField(_("head chain hash"), max_length=64)
    merkle_root = models.CharField(_("Merkle root"), max_length=64)
    ts = models.DateTimeField(_("time"))
    key_id = models.CharField(_("key id"), max_length=16)
    signature = models.CharField(_("signature"), max_length=128)
    frontier = models.JSONField(default=dict, help_text="right-edge subtree roots, to extend the tree")
    tsa_token = models.TextField(_("RFC 3161 token"), blank=True)

    class Meta:
        db_table = "audit_checkpoints"
        verbose_name = _("audit checkpoint")
        verbose_name_plural = _("audit checkpoints")
        ordering = ["-tree_size"]

    def __str__(self):
        return f"checkpoint @{self.tree_size}"

    def statement_fields(self) -> dict:
        from .hashing import format_ts

        return {
            "v": 1, "tree_size": self.tree_size, "head_hash": self.head_hash, "merkle_root": self.merkle_root,
            "ts": format_ts(self.ts), "key_id": self.key_id, "signature": self.signature,
            "tsa_token": self.tsa_token,
        }  # fmt: skip


class AuditPurge(models.Model):
    """A recorded retention purge: entries up to `through_seq` (a checkpoint's tree_size) may be deleted.

    The append-only trigger allows DELETE only of entries at or below such a row's `through_seq`, so only whole
    checkpoint segments leave; the checkpoint at `through_seq` stays and anchors what remains (docs/governance.md).
    """

    through_seq = models.BigIntegerField(_("purged through seq"), unique=True)
    ts = models.DateTimeField(_("time"))
    reason = models.CharField(_("reason"), max_length=500)
    deleted = models.BigIntegerField(_("entries deleted"), default=0)
    finished_at = models.DateTimeField(_("finished at"), null=True, blank=True)

    class Meta:
        db_table = "audit_purges"
        verbose_name = _("audit purge")
        verbose_name_plural = _("audit purges")
        ordering = ["-through_seq"]

    def __str__(self):
        return f"purge through #{self.through_seq}"


class AuditSubjectKey(models.Model):
    """A data subject's key for the personal values in audit payloads (crypto-shredding, docs/governance.md).

    Personal values are stored encrypted under it; erasure destroys it (wrapped_key emptied), which leaves the
    ciphertext, and so every hash and checkpoint, as it was while the values can no longer be read.
    """

    subject_id = models.CharField(_("data subject"), max_length=64, unique=True)
    pseudonym = models.CharField(_("pseudonym"), max_length=40, unique=True)
    # The subject's Fernet key, itself encrypted with AUDIT_SUBJECT_KEY_SECRET (not in the database).
    wrapped_key = models.BinaryField(_("wrapped key"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"))
    destroyed_at = models.DateTimeField(_("destroyed at"), null=True, blank=True)

    class Meta:
        db_table = "audit_subject_keys"
        verbose_name = _("audit subject key")
        verbose_name_plural = _("audit subject keys")

    def __str__(self):
        return self.pseudonym
