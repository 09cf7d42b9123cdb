"""The data inventory: every field of every installed model, classified (seed 001's categories), in one place.

`GET /api/enterprise/governance/inventory` serves it with each class's retention policy, and
tests/governance/test_inventory.py fails when an installed model has a field that is not listed here. To add a
model: one line `"app_label.ModelName": {"field": CLASS, ...}` with every concrete field (foreign keys by their
field name, e.g. "tenant"). PERSONAL: identifies a person (names, e-mail, IP, who did something); SENSITIVE:
secrets (passwords, tokens, key material, stored responses); AUDIT: the audit trail's evidence; OPERATIONAL:
the rest. Retention data classes (apps.governance.registry) say how long each model's rows live.
"""

from .constants import Category

P, S, O, A = Category.PERSONAL, Category.SENSITIVE, Category.OPERATIONAL, Category.AUDIT  # noqa: E741

# fmt: off
FIELDS: dict[str, dict[str, Category]] = {
    "admin.LogEntry": {
        "id": O, "action_time": O, "user": P, "content_type": O, "object_id": O, "object_repr": P, "action_flag": O,
        "change_message": P
    },
    "auth.Permission": {"id": O, "name": O, "content_type": O, "codename": O},
    "auth.Group": {"id": O, "name": O},
    "contenttypes.ContentType": {"id": O, "app_label": O, "model": O},
    "sessions.Session": {"session_key": O, "session_data": S, "expire_date": O},
    "otp_totp.TOTPDevice": {
        "id": O, "user": P, "name": O, "confirmed": O, "throttling_failure_timestamp": O, "throttling_failure_count": O,
        "created_at": O, "last_used_at": O, "key": S, "step": O, "t0": O, "digits": O, "tolerance": O, "drift": O,
        "last_t": O
    },
    "otp_static.StaticDevice": {
        "id": O, "user": P, "name": O, "confirmed": O, "throttling_failure_timestamp": O, "throttling_failure_count": O,
        "created_at": O, "last_used_at": O
    },
    "otp_static.StaticToken": {"id": O, "device": O, "token": S},
    # issue 14: passkeys (django-otp-webauthn). The credential id and public key are key material (S): with the
    # id an attacker can aim at one authenticator; the user handle is a per-person random id sent to it (P).
    "django_otp_webauthn.WebAuthnCredential": {
        "id": O, "user": P, "name": O, "confirmed": O, "created_at": O, "last_used_at": O, "credential_type": O,
        "credential_id": S, "public_key": S, "transports": O, "sign_count": O, "backup_eligible": O,
        "backup_state": O, "aaguid": O, "credential_id_sha256": S, "discoverable": O
    },
    "django_otp_webauthn.WebAuthnAttestation": {"id": O, "fmt": O, "data": S, "client_data_json": S, "credential": O},
    "django_otp_webauthn.WebAuthnUserHandle": {"handle_hex": P, "user": P},
    "guardian.UserObjectPermission": {"id": O, "permission": O, "content_type": O, "object_pk": O, "user": P},
    "guardian.GroupObjectPermission": {"id": O, "permission": O, "content_type": O, "object_pk": O, "group": O},
    "knox.AuthToken": {"digest": S, "token_key": S, "user": P, "created": O, "expiry": O},
    "django_celery_beat.SolarSchedule": {"id": O, "event": O, "latitude": O, "longitude": O},
    "django_celery_beat.IntervalSchedule": {"id": O, "every": O, "period": O},
    "django_celery_beat.ClockedSchedule": {"id": O, "clocked_time": O},
    "django_celery_beat.CrontabSchedule": {
        "id": O, "minute": O, "hour": O, "day_of_month": O, "month_of_year": O, "day_of_week": O, "timezone": O
    },
    "django_celery_beat.PeriodicTasks": {"ident": O, "last_update": O},
    "django_celery_beat.PeriodicTask": {
        "id": O, "name": O, "task": O, "interval": O, "crontab": O, "solar": O, "clocked": O, "args": O, "kwargs": O,
        "queue": O, "exchange": O, "routing_key": O, "headers": O, "priority": O, "expires": O, "expire_seconds": O,
        "one_off": O, "start_time": O, "enabled": O, "last_run_at": O, "total_run_count": O, "date_changed": O,
        "description": O
    },
    "core.IdempotencyRecord": {
        "id": O, "owner": O, "key": O, "fingerprint": O, "method": O, "path": O, "state": O, "status_code": O,
        "response_headers": O, "response_body": S, "created_at": O, "completed_at": O
    },
    "core.IncidentLock": {"id": O, "enabled": O, "reason": O, "changed_by": P, "changed_at": O},
    "accounts.Tenant": {"id": O, "name": O, "slug": O, "is_active": O, "created_at": O},
    "accounts.User": {
        "id": O, "password": S, "last_login": P, "is_superuser": O, "username": P, "first_name": P, "last_name": P,
        "email": P, "is_staff": O, "is_active": O, "date_joined": P, "mfa_owner_proof_required": O
    },
    "accounts.TenantUserObjectPermission": {"id": O, "permission": O, "user": P, "content_object": O},
    "accounts.TenantGroupObjectPermission": {"id": O, "permission": O, "group": O, "content_object": O},
    "audit.AuditLog": {
        "id": A, "seq": A, "ts": A, "actor_type": A, "actor_id": A, "action": A, "object_type": A, "object_id": A,
        "payload": A, "payload_sha256": A, "payload_canonical": A, "tenant_id": A, "request_id": A, "client_ip": P,
        "version": A,
        "record_sha256": A, "prev_hash": A, "chain_hash": A, "external_timestamp": A, "sealed_at": A
    },
    "audit.AuditCheckpoint": {
        "id": A, "tree_size": A, "head_hash": A, "merkle_root": A, "ts": A, "key_id": A, "signature": A, "frontier": A,
        "tsa_token": A
    },
    "audit.AuditPurge": {"id": A, "through_seq": A, "ts": A, "reason": A, "deleted": A, "finished_at": A},
    "audit.AuditSubjectKey": {
        "id": A, "subject_id": P, "pseudonym": A, "wrapped_key": S, "created_at": A, "destroyed_at": A,
    },
    "catalog.Machine": {"id": O, "tenant": O, "code": O, "name": O, "is_active": O, "created_at": O, "location": O},
    "catalog.Post": {"id": O, "tenant": O, "code": O, "name": O, "is_active": O, "created_at": O, "machine": O},
    "catalog.Material": {"id": O, "tenant": O, "code": O, "name": O, "is_active": O, "created_at": O, "unit": O},
    "catalog.Template": {"id": O, "tenant": O, "code": O, "name": O, "is_active": O, "created_at": O, "version": O},
    "catalog.ModelType": {"id": O, "tenant": O, "code": O, "name": O, "is_active": O, "created_at": O},
    "jobs.Job": {
        "id": O, "tenant": O, "public_id": O, "external_id": O, "model_type": O, "machine": O, "post": O, "material": O,
        "template": O, "status": O, "progress": O, "created_at": O, "started_at": O, "finished_at": O, "duration_ms": O,
        "updated_at": O, "event_seq": O
    },
    "jobs.JobStatusChange": {
        "id": O, "job": O, "from_status": O, "to_status": O, "progress": O, "actor": P, "source": O, "reason": O,
        "changed_at": O
    },
    "billing.License": {
        "id": O, "tenant": O, "product": O, "seats": O, "valid_from": O, "valid_until": O, "state": O, "created_at": O,
        "updated_at": O
    },
    "billing.Invoice": {
        "id": O, "tenant": O, "number": O, "period_start": O, "period_end": O, "currency": O, "tax_rate": O, "subtotal":
        O, "tax": O, "total": O, "status": O, "issued_at": O, "created_at": O, "from_usage": O, "usage_after": O,
        "usage_cutoff": O,
    },
    "billing.InvoiceLine": {
        "id": O, "invoice": O, "description": O, "quantity": O, "unit_price": O, "amount": O, "metric": O,
        "dimension": O, "usage_month": O, "pricing_version": O, "tier_from": O,
    },
    "events.OutboxEvent": {
        "id": O, "event_type": O, "event_version": O, "payload": O, "aggregate_type": O, "aggregate_id": O,
        "aggregate_seq": O, "status": O, "attempts": O, "last_error": O, "created_at": O, "claimed_until": O,
        "next_attempt_at": O, "processed_at": O, "trace_context": O,
    },
    "erp.IntegrationProfile": {
        "id": O, "tenant": O, "name": O, "base_url": O, "enabled": O, "paused_at": O, "pause_reason": O,
        "connect_timeout_seconds": O, "read_timeout_seconds": O, "standard_webhooks": O, "inbound_token_sha256": S,
        "ip_allowlist": O, "signature_required": O, "created_at": O, "updated_at": O
    },
    "erp.ErpKey": {
        "id": O, "profile": O, "state": O, "secret_encrypted": S, "fingerprint": O, "created_at": O, "activated_at": O,
        "retired_at": O
    },
    "erp.ErpSync": {
        "id": O, "direction": O, "status": O, "profile": O, "tenant": O, "job": O, "external_id": O, "event_id": O,
        "seq": O, "request_id": O, "idempotency_key": O, "body_sha256": O, "request_body": O, "body": O,
        "response_code": O, "error_class": O, "error_message": O, "attempt_count": O, "retry_count": O,
        "reconcile_count": O, "last_attempt_at": O, "next_attempt_at": O, "claimed_until": O, "acked_at": O, "ext_ts":
        O, "applied": O, "created_at": O, "updated_at": O, "trace_context": O,
    },
    "erp.ErpSyncAttempt": {
        "id": O, "sync": O, "number": O, "request_id": O, "started_at": O, "duration_ms": O, "response_code": O,
        "outcome": O, "error_class": O, "error_message": O, "response_excerpt": O, "signed_with": O
    },
    "erp.ErpOutboundDeadLetter": {
        "id": O, "sync": O, "cause": O, "error_class": O, "response_code": O, "error_message": O, "attempts": O,
        "created_at": O, "closed_at": O, "closed_by": P
    },
    "reporting.ReportExport": {
        "id": O, "requested_by": P, "format": O, "filters": O, "single_use": O, "status": O, "rows_expected": O,
        "rows_written": O, "snapshot_job_id": O, "data_as_of": O, "file_name": O, "size_bytes": O, "sha256": O, "error":
        O, "created_at": O, "finished_at": O, "downloaded_at": O, "download_count": O
    },
    "reporting.AlertChannel": {
        "id": O, "tenant": O, "name": O, "kind": O, "target": S, "quiet_start": O, "quiet_end": O, "quiet_tz": O,
        "is_active": O, "consecutive_failures": O, "open_until": O
    },
    "reporting.AlertRule": {
        "id": O, "tenant": O, "name": O, "metric": O, "threshold": O, "window_minutes": O, "min_jobs": O, "severity": O,
        "repeat_every_minutes": O, "is_active": O, "breached_since": O, "last_value": O, "last_evaluated_at": O
    },
    "reporting.AlertNotice": {
        "id": O, "rule": O, "channel": O, "dedup_key": O, "kind": O, "severity": O, "status": O, "value": O,
        "created_at": O, "last_sent_at": O, "send_count": O, "last_error": O
    },
    # Derived data (issue 16): counts of jobs_job rows kept by triggers, no person and no free text; they have no
    # retention class of their own, since a job that leaves jobs_job leaves them through the delete trigger.
    "reporting.JobRollup": {
        "id": O, "day": O, "tenant_id": O, "status": O, "model_type_id": O, "machine_id": O, "post_id": O, "jobs": O,
        "with_duration": O
    },
    "reporting.JobDurationRollup": {
        "id": O, "day": O, "tenant_id": O, "status": O, "duration_minute": O, "jobs": O
    },
    "reporting.JobMonthRollup": {
        "id": O, "month": O, "tenant_id": O, "status": O, "model_type_id": O, "machine_id": O, "post_id": O,
        "jobs": O, "with_duration": O
    },
    "reporting.JobDayStatusRollup": {
        "id": O, "day": O, "tenant_id": O, "status": O, "jobs": O, "with_duration": O
    },
    "reporting.JobDurationMonthRollup": {
        "id": O, "month": O, "tenant_id": O, "status": O, "duration_minute": O, "jobs": O
    },
    "reporting.JobDurationPostMonthRollup": {
        "id": O, "month": O, "tenant_id": O, "status": O, "machine_id": O, "post_id": O, "duration_minute": O, "jobs": O
    },
    "governance.RetentionPolicy": {
        "id": O, "data_class": O, "retention_days": O, "archive_before_delete": O, "description": O, "updated_at": O
    },
    "governance.LegalHold": {
        "id": O, "scope": O, "tenant": O, "subject_id": P, "object_type": O, "reason": O, "placed_by": P, "placed_at":
        O, "lifted_at": O, "lifted_by": P, "lift_reason": O
    },
    "governance.RetentionRun": {
        "id": O, "data_class": O, "cutoff": O, "state": O, "last_pk": O, "deleted": O, "archived": O, "parts": O,
        "manifest": O, "started_at": O, "finished_at": O
    },
    "governance.DataSubjectRequest": {
        "id": O, "request_type": O, "subject_id": P, "subject_email": P, "changes": P, "status": O, "created_by": P,
        "created_at": O, "due_at": O, "processed_at": O, "result": P,
    },
    # Models added with issues 13-19 (security, flags, SIEM, observability, recon, billing usage, compliance) and
    # django-axes' and django-waffle's. SIEM records are stored masked (what the SIEM receives), so their envelope
    # and message count as audit evidence.
    "billing.UsageEvent": {
        "id": O, "tenant": O, "metric": O, "dimension": O, "quantity": O, "occurred_at": O, "recorded_at": O,
        "idempotency_key": O, "source": O, "corrects": O, "note": P,
    },
    "billing.PricingVersion": {
        "id": O, "version": O, "currency": O, "valid_from": O, "note": P, "content_sha256": O, "created_at": O,
    },
    "billing.PriceRate": {"id": O, "pricing": O, "metric": O, "dimension": O, "tier_from": O, "unit_price": O},
    "security.SecurityEvent": {
        "id": O, "created_at": O, "event_type": O, "severity": O, "actor": P, "username": P, "client_ip": P,
        "request_id": O, "details": P,
    },
    "security.Lockout": {
        "id": O, "username": P, "ip_address": P, "device": P, "locked_at": O, "until": O, "level": O,
        "lifted_at": O, "lifted_by": P,
    },
    "security.IPListEntry": {
        "id": O, "network": P, "list_type": O, "scope": O, "reason": P, "expires_at": O, "added_by": P,
        "automatic": O, "created_at": O,
    },
    "security.UserSession": {
        "id": O, "user": P, "session_key": S, "created_at": O, "last_activity": O, "ip_address": P, "user_agent": P,
        "ended_at": O, "end_reason": O,
    },
    "security.BreakGlass": {
        "id": O, "user": P, "reason": P, "minutes": O, "requested_by": P, "requested_at": O, "approved_by": P,
        "approved_at": O, "expires_at": O, "revoked_by": P, "revoked_at": O,
    },
    "siem.SiemRecord": {
        "id": O, "event_id": A, "source": O, "source_ref": A, "event": O, "level": O, "ts": O, "envelope": A,
        "message": A, "created_at": O,
    },
    "siem.SiemCollectCursor": {"source": O, "position": O},
    "siem.SiemDestination": {
        "id": O, "endpoint": O, "last_sent_id": O, "last_sent_at": O, "last_attempt_at": O, "last_error": O,
        "consecutive_failures": O,
    },
    "observability.RequestStat": {
        "id": O, "bucket": O, "tenant_key": O, "tenant": O, "view": O, "requests": O, "errors": O,
        "client_errors": O, "duration_ms_sum": O, "b0": O, "b1": O, "b2": O, "b3": O, "b4": O, "b5": O, "b6": O,
        "b7": O, "b8": O, "b9": O, "b10": O, "b11": O, "b12": O, "b13": O,
    },
    "axes.AccessFailureLog": {
        "id": O, "user_agent": P, "ip_address": P, "username": P, "http_accept": P, "path_info": P,
        "attempt_time": O, "locked_out": O,
    },
    "axes.AccessAttempt": {
        "id": O, "user_agent": P, "ip_address": P, "username": P, "http_accept": P, "path_info": P,
        "attempt_time": O, "get_data": S, "post_data": S, "failures_since_start": O,
    },
    "axes.AccessAttemptExpiration": {"access_attempt": O, "expires_at": O},
    "axes.AccessLog": {
        "id": O, "user_agent": P, "ip_address": P, "username": P, "http_accept": P, "path_info": P,
        "attempt_time": O, "logout_time": O, "session_hash": S,
    },
    "waffle.Switch": {"id": O, "name": O, "active": O, "note": P, "created": O, "modified": O},
    "waffle.Sample": {"id": O, "name": O, "percent": O, "note": P, "created": O, "modified": O},
    "flags.FeatureFlag": {
        "id": O, "name": O, "everyone": O, "percent": O, "testing": O, "superusers": O, "staff": O,
        "authenticated": O, "languages": O, "rollout": O, "note": P, "created": O, "modified": O, "display_name": O,
        "description": O, "state": O,
    },
    "recon.ReconConfig": {"id": O, "profile": O, "version": O, "data": O, "author": P, "reason": P, "created_at": O},
    "recon.ReconFile": {
        "id": O, "tenant": O, "profile": O, "name": O, "sha256": O, "size": O, "source": O, "duplicate_of": O,
        "file_format": O, "encoding": O, "delimiter": O, "status": O, "row_count": O, "error_count": O, "errors": O,
        "formula_cells": O, "formula_count": O, "columns": O, "uploaded_by": P, "created_at": O, "load_ms": O,
    },
    "recon.StagedRow": {
        "id": O, "file": O, "row_number": O, "key": O, "external_id": O, "machine": O, "model_type": O,
        "planned_start": O, "status": O, "progress": O, "started_at": O, "finished_at": O,
    },
    "recon.ReconRun": {
        "id": O, "tenant": O, "profile": O, "config": O, "file": O, "input_hashes": O, "snapshot_of": O,
        "writes_breaks": O, "status": O, "counts": O, "cleared_count": O, "result_sha256": O, "started_by": P,
        "started_at": O, "finished_at": O, "duration_ms": O, "error": O,
    },
    "recon.PortalRow": {
        "id": O, "run": O, "job_id": O, "key": O, "external_id": O, "status": O, "progress": O, "started_at": O,
        "finished_at": O,
    },
    "recon.Break": {
        "id": O, "tenant": O, "profile": O, "fingerprint": O, "kind": O, "key": O, "job_id": O, "external_id": O,
        "details": O, "state": O, "assignee": P, "reason": P, "suppressed_until": O, "first_seen_at": O,
        "last_seen_at": O, "first_run": O, "last_run": O, "closed_at": O, "updated_at": O,
    },
    "recon.BreakComment": {"id": O, "brk": O, "author": P, "text": P, "created_at": O},
    "recon.DropSighting": {"id": O, "path": O, "size": O, "mtime_ns": O, "seen_at": O},
    "compliance.Framework": {"id": O, "code": O, "name": O, "version": O},
    "compliance.Control": {
        "id": O, "framework": O, "ref": O, "title": O, "category": O, "applicable": O, "justification": O,
        "position": O,
    },
    "compliance.ControlEvidence": {"id": O, "control": O, "evidence": O},
    "compliance.ProcessingActivity": {
        "id": O, "name": O, "purpose": O, "data_subjects": O, "data_categories": O, "recipients": O, "transfers": O,
        "retention": O, "security": O,
    },
    "compliance.EvidencePackage": {
        "id": O, "framework": O, "period": O, "period_start": O, "period_end": O, "status": O, "progress": O,
        "step": O, "file_name": O, "sha256": O, "checkpoint_tree_size": O, "error": O, "requested_by": P,
        "created_at": O, "finished_at": O,
    },

}
# fmt: on


def classify(label: str, field: str) -> Category | None:
    return FIELDS.get(label, {}).get(field)
