"""Catalog and job import/export through django-import-export: scoped, all-or-nothing, formula-safe."""

import csv
import io

import pytest
import tablib
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse
from django.utils import translation

from apps.catalog.models import Machine, Post
from apps.catalog.resources import MachineResource, PostResource
from apps.jobs.models import Job
from apps.jobs.resources import JobResource
from tests import factories
from tests.conftest import verified_client


def _dataset(header, *rows):
    return tablib.Dataset(*rows, headers=header)


def _import(resource, dataset, user):
    return resource.import_data(dataset, dry_run=False, user=user, raise_errors=False, use_transactions=True)


def _errors_by_line(result):
    """{line number: messages} for rows that failed validation or raised, as the admin shows them."""
    lines = {}
    for row in result.invalid_rows:
        lines.setdefault(row.number, []).append(str(row.error_dict))
    for number, errors in result.row_errors():
        lines.setdefault(number, []).extend(str(e.error) for e in errors)
    return lines


@pytest.mark.django_db
def test_machines_import_into_the_users_tenant(role_users, tenant_a):
    data = _dataset(("tenant", "code", "name", "is_active", "location"), ("anadolu", "M1", "Torna İş", "1", "Hol 1"))
    result = _import(MachineResource(), data, role_users["operator"])
    assert not result.has_errors() and not result.has_validation_errors()
    machine = Machine.objects.get(tenant=tenant_a, code="M1")
    assert machine.name == "Torna İş"


@pytest.mark.django_db
def test_a_row_for_a_tenant_the_user_lacks_fails_with_its_line_and_nothing_is_imported(role_users, tenant_a, tenant_b):
    data = _dataset(
        ("tenant", "code", "name", "is_active", "location"),
        ("anadolu", "M1", "Good row", "1", ""),
        ("bogazici", "M2", "Other tenant", "1", ""),
        ("anadolu", "M3", "Another good row", "1", ""),
    )
    with translation.override("en"):
        result = _import(MachineResource(), data, role_users["operator"])
    assert result.has_validation_errors()
    errors = _errors_by_line(result)
    assert list(errors) == [2], errors
    assert "no access to this tenant" in errors[2][0]
    assert not Machine.objects.exists(), "a failed import leaves nothing half-imported"


@pytest.mark.django_db
def test_posts_find_their_machine_by_code_inside_their_own_tenant(role_users, tenant_a, tenant_b):
    factories.MachineFactory(tenant=tenant_a, code="M1")
    factories.MachineFactory(tenant=tenant_b, code="M1")
    data = _dataset(("tenant", "code", "name", "is_active", "machine"), ("anadolu", "P1", "İstasyon", "1", "M1"))
    result = _import(PostResource(), data, role_users["operator"])
    assert not result.has_validation_errors(), _errors_by_line(result)
    assert Post.objects.get(code="P1").machine.tenant == tenant_a


@pytest.mark.django_db
def test_an_unknown_machine_code_is_a_row_error(role_users, tenant_a):
    data = _dataset(("tenant", "code", "name", "is_active", "machine"), ("anadolu", "P1", "İstasyon", "1", "NOPE"))
    result = _import(PostResource(), data, role_users["operator"])
    assert _errors_by_line(result).keys() == {1}
    assert not Post.objects.exists()


@pytest.mark.django_db
def test_job_import_creates_queued_jobs_and_ignores_status_columns(role_users, tenant_a):
    post = factories.PostFactory(tenant=tenant_a, code="P1", machine__code="M1")
    factories.ModelTypeFactory(tenant=tenant_a, code="MT1")
    data = _dataset(
        ("tenant", "external_id", "model_type", "machine", "post", "material", "template", "status", "progress"),
        ("anadolu", "ERP-1", "MT1", "M1", "P1", "", "", "succeeded", "100"),
    )
    result = _import(JobResource(), data, role_users["operator"])
    assert not result.has_validation_errors(), _errors_by_line(result)
    job = Job.objects.get(external_id="ERP-1")
    assert (job.status, job.progress, job.post) == ("queued", 0, post)


@pytest.mark.django_db
def test_job_import_refuses_a_post_of_another_machine(role_users, tenant_a):
    factories.PostFactory(tenant=tenant_a, code="P1", machine__code="M1")
    factories.MachineFactory(tenant=tenant_a, code="M2")
    factories.ModelTypeFactory(tenant=tenant_a, code="MT1")
    data = _dataset(
        ("tenant", "external_id", "model_type", "machine", "post", "material", "template"),
        ("anadolu", "ERP-1", "MT1", "M2", "P1", "", ""),
    )
    result = _import(JobResource(), data, role_users["operator"])
    assert "post" in _errors_by_line(result)[1][0]
    assert not Job.objects.exists()


@pytest.mark.django_db
def test_admin_import_shows_the_bad_line_and_writes_nothing(client, role_users, tenant_a):
    verified_client(client, role_users["operator"])
    body = "tenant,code,name,is_active,location\nanadolu,M1,Fine,1,\nnowhere,M2,Bad,1,\n"
    response = client.post(
        reverse("admin:catalog_machine_import"),
        {"format": "0", "resource": "0", "import_file": SimpleUploadedFile("m.csv", body.encode(), "text/csv")},
    )
    assert response.status_code == 200
    text = response.content.decode()
    assert "2" in text and ("does not exist" in text or "mevcut değil" in text or "errors" in text.lower())
    assert 'name="import_file_name"' not in text, "no confirm button for a file with errors"
    assert not Machine.objects.exists()


@pytest.mark.django_db
def test_import_and_export_need_their_capabilities(client, role_users, tenant_a):
    verified_client(client, role_users["analyst"])
    assert client.get(reverse("admin:catalog_machine_import")).status_code == 403
    assert client.get(reverse("admin:jobs_job_import")).status_code == 403
    assert client.get(reverse("admin:jobs_job_export")).status_code == 200, "analysts hold jobs.export_job"
    assert client.get(reverse("admin:catalog_machine_export")).status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize("evil", ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)"])
def test_exported_cells_that_start_a_formula_are_escaped(client, role_users, tenant_a, tenant_b, evil):
    factories.MachineFactory(tenant=tenant_a, code="M1", name=evil)
    factories.MachineFactory(tenant=tenant_b, code="M9", name="other tenant")
    verified_client(client, role_users["operator"])
    fields = {f"machineresource_{name}": "on" for name in ("tenant", "code", "name", "is_active", "location")}
    response = client.post(reverse("admin:catalog_machine_export"), {"format": "0", "resource": "0", **fields})
    assert response.status_code == 200
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    names = [row[rows[0].index("name")] for row in rows[1:]]
    assert names == ["'" + evil]
    assert all("M9" not in row for row in rows), "another tenant's rows are not exported"
