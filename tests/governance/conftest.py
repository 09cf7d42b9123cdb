import gzip
import hashlib
import json
from datetime import timedelta
from itertools import count

import pytest
from django.utils import timezone

from apps.erp.models import ErpSync, ErpSyncAttempt

_keys = count()


@pytest.fixture(autouse=True)
def exports_storage(settings, tmp_path):
    """Archives go to a fresh exports storage per test."""
    settings.STORAGES = {
        **settings.STORAGES,
        "exports": {"BACKEND": "django.core.files.storage.FileSystemStorage", "OPTIONS": {"location": str(tmp_path)}},
    }
    return tmp_path


@pytest.fixture(autouse=True)
def _signing_key(settings):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from tests.audit.conftest import pem

    key = Ed25519PrivateKey.generate()
    settings.AUDIT_SIGNING_KEY = pem(key)
    return key


@pytest.fixture(autouse=True)
def _witness(settings, tmp_path):
    settings.AUDIT_WITNESS_FILE = str(tmp_path / "witness.json")


def make_attempts(n, *, tenant=None, age_days=400, sync=None):
    sync = sync or ErpSync.objects.create(
        direction="outbound", tenant=tenant, idempotency_key=f"k{next(_keys)}", body_sha256="0" * 64, request_body={},
        body="{}",
    )  # fmt: skip
    started = timezone.now() - timedelta(days=age_days)
    ErpSyncAttempt.objects.bulk_create(
        ErpSyncAttempt(sync=sync, number=i + 1, request_id=f"r{i}", started_at=started, duration_ms=1, outcome="ok")
        for i in range(n)
    )
    return sync


def read_archive(storage_root, manifest_name):
    manifest = json.loads((storage_root / manifest_name).read_text())
    rows = []
    for part in manifest["parts"]:
        data = (storage_root / part["name"]).read_bytes()
        assert hashlib.sha256(data).hexdigest() == part["sha256"]
        rows.extend(json.loads(line) for line in gzip.decompress(data).splitlines())
    return manifest, rows
