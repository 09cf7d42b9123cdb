"""Export files go to the "exports" storage: the filesystem by default, S3/MinIO through django-storages when
EXPORT_S3_BUCKET is set. moto's S3 server (a real HTTP server on an ephemeral port) stands in for MinIO."""

import csv
import io
import os
import subprocess
import sys

import boto3
import pytest
from django.core.files.storage import storages
from moto.server import ThreadedMotoServer

from apps.reporting.models import ReportExport

pytestmark = pytest.mark.django_db

BUCKET = "tezgah-exports"


@pytest.fixture
def s3_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def test_the_default_is_the_filesystem_under_media_root(settings):
    backend = storages["exports"]
    assert type(backend).__name__ == "FileSystemStorage"
    assert backend.location == os.path.abspath(settings.MEDIA_ROOT / "exports")


def test_export_s3_bucket_selects_django_storages_s3(tmp_path):
    env = {**os.environ, "EXPORT_S3_BUCKET": "b", "EXPORT_S3_ENDPOINT_URL": "http://127.0.0.1:9000"}
    code = "from django.conf import settings; print(settings.STORAGES['exports']['BACKEND'])"
    out = subprocess.run(
        [sys.executable, "-c", f"import django; django.setup(); {code}"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == "storages.backends.s3.S3Storage"


def test_an_export_is_written_to_s3_and_downloaded_through_the_signed_link(
    settings, s3_endpoint, analyst_api, jobs, client, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    credentials = {"aws_access_key_id": "tezgah", "aws_secret_access_key": "tezgah-secret", "region_name": "us-east-1"}
    boto3.client("s3", endpoint_url=s3_endpoint, **credentials).create_bucket(Bucket=BUCKET)
    settings.STORAGES = {
        **settings.STORAGES,
        "exports": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {
                "bucket_name": BUCKET,
                "endpoint_url": s3_endpoint,
                "access_key": credentials["aws_access_key_id"],
                "secret_key": credentials["aws_secret_access_key"],
                "region_name": "us-east-1",
                "default_acl": None,
                "file_overwrite": False,
            },
        },
    }
    with django_capture_on_commit_callbacks(execute=True):
        created = analyst_api.post("/reports/export", {"format": "csv", "filters": {"status": "failed"}}, format="json")
    body = analyst_api.get(f"/reports/export/{created.json()['id']}").json()
    assert body["status"] == "done"

    export = ReportExport.objects.get()
    listing = boto3.client("s3", endpoint_url=s3_endpoint, **credentials).list_objects_v2(Bucket=BUCKET)
    assert [o["Key"] for o in listing["Contents"]] == [export.file_name]

    response = client.get(body["download_url"])
    content = b"".join(response.streaming_content).decode()
    rows = [r for r in csv.reader(io.StringIO(content)) if not r[0].startswith("#")]
    assert len(rows) == 1 + 2
