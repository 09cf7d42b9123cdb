import hashlib

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from apps.audit.models import AuditLog
from apps.catalog.models import Machine
from tests import factories
from tests.conftest import verified_client


@pytest.mark.django_db
def test_a_confirmed_import_is_audited_with_the_files_sha256(client, role_users, tenant_a):
    verified_client(client, role_users["operator"])
    body = b"tenant,code,name,is_active,location\nanadolu,M1,Torna,1,Hol 1\nanadolu,M2,Freze,1,Hol 2\n"
    preview = client.post(
        reverse("admin:catalog_machine_import"),
        {"format": "0", "resource": "0", "import_file": SimpleUploadedFile("makine.csv", body, "text/csv")},
    )
    assert preview.status_code == 200
    confirm = preview.context["confirm_form"].initial
    done = client.post(reverse("admin:catalog_machine_process_import"), confirm)
    assert done.status_code == 302
    assert Machine.objects.count() == 2
    entry = AuditLog.objects.get(action="admin.import")
    assert entry.payload["sha256"] == hashlib.sha256(body).hexdigest()
    assert entry.payload["file"] == "makine.csv" and entry.payload["rows"] == 2
    assert entry.object_type == "catalog.machine"


@pytest.mark.django_db
def test_an_export_is_audited_with_the_sha256_of_what_was_downloaded(client, role_users, tenant_a):
    factories.MachineFactory(tenant=tenant_a)
    verified_client(client, role_users["operator"])
    fields = {f"machineresource_{n}": "on" for n in ("tenant", "code", "name", "is_active", "location")}
    response = client.post(reverse("admin:catalog_machine_export"), {"format": "0", "resource": "0", **fields})
    assert response.status_code == 200
    entry = AuditLog.objects.get(action="admin.export")
    assert entry.payload["sha256"] == hashlib.sha256(response.content).hexdigest()
    assert entry.payload["rows"] == 1 and entry.payload["format"] == "csv"
