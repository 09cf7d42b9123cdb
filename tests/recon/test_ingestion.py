"""File registry and validation: duplicates, missing columns, bad cells, empty files, encodings, XLSX formulas."""

import io

import pytest
from openpyxl import Workbook

from apps.audit.models import AuditLog
from apps.recon import services
from apps.recon.models import FileStatus, ReconFile, StagedRow

from .conftest import HEADER, csv_bytes, load

pytestmark = pytest.mark.django_db

GOOD = ("ERP-1,M1,MT1,2026-11-30T08:00:00Z,running,40,2026-11-30T08:00:00Z,", "ERP-2,M1,MT1,,succeeded,100,,")


def test_a_good_file_is_staged_and_registered(profile_a):
    entry = load(profile_a, csv_bytes(*GOOD))
    assert entry.status == FileStatus.LOADED, entry.errors
    assert entry.row_count == 2 and entry.error_count == 0
    assert entry.encoding == "utf-8" and entry.delimiter == ","
    assert StagedRow.objects.filter(file=entry).count() == 2
    assert AuditLog.objects.filter(action="recon.file_loaded", object_id=str(entry.pk)).exists()


def test_the_same_file_twice_is_refused_with_a_pointer_then_accepted_when_forced(profile_a):
    first = load(profile_a, csv_bytes(*GOOD))
    with pytest.raises(services.DuplicateFile) as refused:
        load(profile_a, csv_bytes(*GOOD), name="again.csv")
    assert refused.value.first == first
    forced = load(profile_a, csv_bytes(*GOOD), name="again.csv", force=True)
    assert forced.status == FileStatus.LOADED and forced.duplicate_of == first
    assert ReconFile.objects.filter(sha256=first.sha256).count() == 2


def test_a_missing_column_is_an_error_on_the_header_row(profile_a):
    entry = load(profile_a, csv_bytes("ERP-1,M1,running", header="external_id,machine,status"))
    assert entry.status == FileStatus.REJECTED
    assert [(e["row"], e["column"], e["header"]) for e in entry.errors] == [(1, "-", "progress")]
    assert "progress" in entry.errors[0]["message"]
    assert not StagedRow.objects.filter(file=entry).exists()


def test_a_wrong_type_in_row_5_column_c_is_reported_there_and_nothing_is_staged(profile_a):
    header = "external_id,status,progress"
    rows = ["ERP-1,running,40", "ERP-2,running,41", "ERP-3,running,42", "ERP-4,running,çok"]
    entry = load(profile_a, csv_bytes(*rows, header=header))
    assert entry.status == FileStatus.REJECTED
    assert entry.error_count == 1
    assert (entry.errors[0]["row"], entry.errors[0]["column"], entry.errors[0]["header"]) == (5, "C", "progress")
    assert not StagedRow.objects.filter(file=entry).exists()  # the three good rows are not half-loaded


def test_only_the_first_100_errors_are_kept_then_counted(profile_a):
    rows = [f"ERP-{i},running,x" for i in range(150)]
    entry = load(profile_a, csv_bytes(*rows, header="external_id,status,progress"))
    assert entry.error_count == 150 and len(entry.errors) == 100


@pytest.mark.parametrize("data", [b"", HEADER.encode() + b"\r\n"])
def test_an_empty_file_or_a_bare_header_is_rejected(profile_a, data):
    entry = load(profile_a, data)
    assert entry.status == FileStatus.REJECTED and entry.error_count == 1


def test_a_bom_and_windows_line_ends_are_read(profile_a):
    data = b"\xef\xbb\xbf" + csv_bytes(*GOOD, newline="\r\n")
    entry = load(profile_a, data)
    assert entry.status == FileStatus.LOADED, entry.errors
    assert entry.encoding == "utf-8-sig" and entry.row_count == 2
    assert set(StagedRow.objects.filter(file=entry).values_list("external_id", flat=True)) == {"ERP-1", "ERP-2"}


def test_turkish_cp1254_with_semicolons_and_decimal_commas_is_detected(profile_a):
    data = "İş No;Durum;İlerleme\nERP-1;ÇALIŞIYOR;40,5\n".encode("cp1254")
    services.save_config(
        profile_a,
        {
            "columns": {"İş No": "external_id", "Durum": "status", "İlerleme": "progress"},
            "status_map": {"ÇALIŞIYOR": "running"},
        },
        author=None,
        reason="Türkçe başlıklar",
    )
    entry = load(profile_a, data)
    assert entry.status == FileStatus.LOADED, entry.errors
    assert (entry.encoding, entry.delimiter) == ("cp1254", ";")
    row = StagedRow.objects.get(file=entry)
    assert (row.status, row.progress) == ("ÇALIŞIYOR", 40.5)


def _xlsx(rows) -> bytes:
    book = Workbook()
    sheet = book.active
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def test_xlsx_formulas_are_data_never_evaluated_and_flagged(profile_a):
    data = _xlsx(
        [["external_id", "status", "progress"], ['=HYPERLINK("http://x")', "running", 40], ["ERP-2", "running", 50]]
    )
    entry = load(profile_a, data, name="export.xlsx")
    assert entry.status == FileStatus.LOADED, entry.errors
    assert entry.file_format == "xlsx" and entry.formula_count == 1
    assert entry.formula_cells == [{"row": 2, "column": "A", "formula": '=HYPERLINK("http://x")'}]
    assert StagedRow.objects.filter(file=entry, external_id='=HYPERLINK("http://x")').exists()


def test_a_formula_where_a_number_belongs_is_an_error(profile_a):
    data = _xlsx([["external_id", "status", "progress"], ["ERP-1", "running", "=1+1"]])
    entry = load(profile_a, data, name="export.xlsx")
    assert entry.status == FileStatus.REJECTED
    assert (entry.errors[0]["row"], entry.errors[0]["column"]) == (2, "C")


def test_a_row_without_any_key_is_an_error(profile_a):
    entry = load(profile_a, csv_bytes(",,,,running,40,,"))
    assert entry.status == FileStatus.REJECTED
    assert entry.errors[0]["header"] == "key"


def test_a_stated_encoding_wins_over_detection(profile_a):
    data = "external_id,status,progress\nERP-Ş,running,1\n".encode("cp1254")
    entry = load(profile_a, data, encoding="cp1254")
    assert entry.status == FileStatus.LOADED and entry.encoding == "cp1254"
    assert StagedRow.objects.get(file=entry).external_id == "ERP-Ş"
