"""The two ways of loading a CSV give the same staged rows and the same errors on the same files.

PostgreSQL's own parse (loading_in_database: COPY of the raw file, checks and types in SQL) and the Python
parser (loading.load with in_database=False) run on each file in their own savepoint; the staged rows
(row number, key and every typed column) and the outcome (rows, errors with row/column/message, counts,
encoding, delimiter) must be equal. Good files in the forms ERPs write must take the database way.
"""

import copy
import io
import random

import pytest
from django.db import connection, transaction

from apps.recon import loading
from apps.recon.constants import DEFAULT_CONFIG
from apps.recon.models import StagedRow

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif("connection.vendor != 'postgresql'", reason="the in-database parse is PostgreSQL's"),
]

HEADER = "external_id,machine,model_type,planned_start,status,progress,started_at,finished_at"
_COLUMNS = (
    "row_number",
    "key",
    "external_id",
    "machine",
    "model_type",
    "planned_start",
    "status",
    "progress",
    "started_at",
    "finished_at",
)
_file_ids = iter(range(900_000_000, 901_000_000))


def _load(data: bytes, config: dict, *, in_database: bool, name="export.csv", **kw):
    """(outcome fields, staged rows, way) of one load, rolled back afterwards (a rejected file stages nothing:
    services.load_file's transaction rolls it back)."""
    file_id = next(_file_ids)
    sid = transaction.savepoint()
    try:
        outcome = loading.load(
            io.BytesIO(data), file_id=file_id, name=name, config=config, in_database=in_database, **kw
        )
        rows = list(StagedRow.objects.filter(file_id=file_id).order_by("row_number").values_list(*_COLUMNS))
    except loading.FileRejected as rejected:
        outcome, rows = rejected.outcome, []
    finally:
        transaction.savepoint_rollback(sid)
    fields = {
        f: getattr(outcome, f)
        for f in ("file_format", "encoding", "delimiter", "rows", "columns", "errors", "error_count")
    }
    return fields, rows, outcome.parsed_by


def both(data: bytes, config: dict | None = None, **kw) -> str:
    """Load `data` both ways, assert the same result; returns which way the database-first load went."""
    config = config or copy.deepcopy(DEFAULT_CONFIG)
    db_fields, db_rows, parsed_by = _load(data, config, in_database=True, **kw)
    py_fields, py_rows, _ = _load(data, config, in_database=False, **kw)
    assert db_fields == py_fields
    assert db_rows == py_rows
    return parsed_by


def csv_of(*rows, header=HEADER, newline="\n", encoding="utf-8") -> bytes:
    return (newline.join([header, *rows]) + newline).encode(encoding)


GOOD = [
    "ERP-1,M1,MT1,2026-11-30T08:00:00Z,running,40,2026-11-30T08:00:00Z,",
    "ERP-2,M1,MT1,,succeeded,100,,2026-11-30 09:15",
    ",M2,MT1,2026-11-30T08:00:00+03:00,queued,0,30.11.2026 08:00:00,",
    ",M2,MT1,2026-11-30T08:00,queued,12.5,30.11.2026 08:00,30/11/2026 10:00",
    "ERP-5,  M3 ,MT2,2026-11-30,RUNNING, 7 ,30.11.2026,30/11/2026",
    "ERP-6,M3,MT2,2026-11-30T08:00:00.123456,paused,1e1,2026-11-30T08:00:00.5-05:00,",
    ",,,,,,,",  # a blank row: skipped, but its number counts
    "ERP-8,M3,MT2,2026-11-30 08:00:00,failed,+.5,,",
    "ERP-1,M1,MT1,,running,40,,",  # a duplicate key: not a load error
]


def test_good_files_in_the_usual_forms_take_the_database_way_and_match():
    assert both(csv_of(*GOOD)) == "database"


@pytest.mark.parametrize("zone", ["UTC", "Europe/Istanbul", "America/New_York"])
def test_naive_times_are_read_in_the_config_zone_alike(zone):
    config = copy.deepcopy(DEFAULT_CONFIG) | {"time_zone": zone}
    assert both(csv_of(*GOOD), config) == "database"


def test_a_local_time_near_a_dst_change_goes_the_python_way_and_matches():
    config = copy.deepcopy(DEFAULT_CONFIG) | {"time_zone": "America/New_York"}
    # 01:30 on 2026-11-01 happens twice in New York (zoneinfo's fold=0 and PostgreSQL may differ).
    assert both(csv_of("ERP-1,M1,MT1,2026-11-01 01:30,running,1,,"), config) == "python"


def test_a_bom_crlf_and_quoted_fields_take_the_database_way():
    data = b"\xef\xbb\xbf" + csv_of(
        '"ERP-1","M1","MT1","2026-11-30T08:00:00Z","running","40","",""',
        '"ERP-2","M ""quoted""",MT1,,succeeded,"45,5",,',
        newline="\r\n",
    )
    assert both(data) == "database"


def test_semicolons_cp1254_and_decimal_commas_take_the_database_way():
    config = copy.deepcopy(DEFAULT_CONFIG)
    config["columns"] = {"İş No": "external_id", "Durum": "status", "İlerleme": "progress"}
    data = "İş No;Durum;İlerleme\nERP-Ş;ÇALIŞIYOR;40,5\nERP-Ğ;running;3\n".encode("cp1254")
    assert both(data, config) == "database"
    assert both(data, config, encoding="cp1254") == "database"


def test_a_composite_key_is_built_alike():
    config = copy.deepcopy(DEFAULT_CONFIG)
    config["key"] = {"prefer": "composite", "composite": ["machine", "model_type", "planned_start"]}
    assert both(csv_of(*GOOD[:6]), config) in ("database", "python")
    assert both(csv_of(*GOOD[2:4]), config) == "database"


@pytest.mark.parametrize(
    "data",
    [
        b"",
        HEADER.encode() + b"\r\n",
        csv_of("ERP-1,M1,running", header="external_id,machine,status"),  # missing column
        csv_of(
            "ERP-1,running,40",
            "ERP-2,running,41",
            "ERP-3,running,42",
            "ERP-4,running,çok",
            header="external_id,status,progress",
        ),
        csv_of(*[f"ERP-{i},running,x" for i in range(150)], header="external_id,status,progress"),  # 150 errors
        csv_of(",,,,running,40,,"),  # no key
        csv_of("ERP-1,M1,MT1,,,40,,"),  # empty status
        csv_of("ERP-1,M1,MT1,,running,101,,"),  # out of range
        csv_of("ERP-1,M1,MT1,,running,nan,,"),
        csv_of("ERP-1,M1,MT1,31.02.2026,running,1,,"),  # no such day
        csv_of("ERP-1,M1,MT1,2026-11-30T24:00,running,1,,"),
        csv_of("ERP-" + "x" * 70 + ",M1,MT1,,running,1,,"),  # over 64 characters
        csv_of('ERP-1,M"1,MT1,,running,1,,'),  # a quote inside an unquoted field
        csv_of('ERP-1,"M1",MT1,,running,1,,', 'ERP-2,M",1,MT1,,running,1,,'),
        csv_of("ERP-1,M1,MT1,,running,1,,", "ERP-2,M1", "ERP-3,M1,MT1,,running,1,,,extra"),  # ragged rows
        csv_of("ERP-1,M1,MT1,,running,1,,", "\\.", "ERP-3,M1,MT1,,running,1,,"),  # COPY's end marker
        csv_of("ERP-1,M1,MT1,,running,1,,", "", "ERP-3,M1,MT1,,running,1,,"),  # an empty line
        csv_of("ERP-١,M1,MT1,,running,١٢,,"),  # Arabic-Indic digits: float() reads them
        csv_of("ERP-1,M1,MT1,,running,1_0,,", "ERP-2,M1,MT1,,running,5,2026-11-30T08:00+0300,"),
        csv_of("ERP-1,M1,MT1,,running,1,1.2.2026 8:00,"),  # one-digit day/month/hour: strptime reads them
        b"external_id,status,progress\nERP-1,running,1\r\nERP-2,running,2\n",  # mixed line ends
        b"external_id,status,progress\nERP-1,running,1\nERP-\xff,running,2\n",  # not UTF-8 from row 3
        b"external_id,status,progress\nERP-1,run\x00ning,1\n",  # a NUL byte
    ],
)
def test_bad_and_unusual_files_give_the_same_errors_and_rows(data):
    both(data)


_CELLS = {
    "text": ["ERP-1", "ERP-2", "", " x ", "M1", "Ç", "a" * 65, '"q"', "a b", "\u00a0pad\u00a0", "J;1"],
    "status": ["running", "RUNNING", "succeeded", "TAMAM", " queued ", "x" * 65, ""],
    "progress": ["0", "40", "100", "12.5", "12,5", "1e1", "101", "-1", "x", "", " 7 ", ".5", "5.", "1 000", "1,2,3"],
    "time": [
        "",
        "2026-11-30T08:00:00Z",
        "2026-11-30 08:00",
        "2026-11-30",
        "2026-11-30T08:00:00+03:00",
        "30.11.2026 08:00:00",
        "30.11.2026",
        "30/11/2026 10:00",
        "2026-13-01",
        "yesterday",
        "2026-02-29",
        "1969-12-31T23:59:59.5Z",
        "1.2.2026",
    ],
}
# The first six of each list are cells both ways read (good-only files draw from them).
_KIND = {
    "external_id": "text",
    "machine": "text",
    "model_type": "text",
    "status": "status",
    "progress": "progress",
    "planned_start": "time",
    "started_at": "time",
    "finished_at": "time",
}


@pytest.mark.parametrize("seed", range(40))
def test_random_files_give_the_same_rows_and_errors(seed):
    rng = random.Random(seed)
    names = list(_KIND)
    rng.shuffle(names)
    names = names[: rng.randint(3, len(names))]
    good_only = seed % 2 == 0  # half the files use only cells both ways read, so the database way is tested
    rows = []
    for _ in range(rng.randint(1, 30)):
        cells = []
        for name in names:
            choices = _CELLS[_KIND[name]]
            cell = rng.choice(choices[:6] if good_only and _KIND[name] != "text" else choices)
            if good_only and _KIND[name] == "text":
                cell = rng.choice(["ERP-1", "ERP-2", "M1", "Ç", "a b", " x "])
            if name == "external_id" and good_only:
                cell = f"ERP-{rng.randint(1, 20)}"
            if name == "status" and good_only:
                cell = rng.choice(["running", "RUNNING", "succeeded"])
            if "," in cell or '"' in cell:
                cell = '"' + cell.replace('"', '""') + '"'
            cells.append(cell)
        rows.append(",".join(cells))
    data = csv_of(*rows, header=",".join(names), newline=rng.choice(["\n", "\r\n"]))
    way = both(data)
    if good_only and "external_id" in names and "status" in names and "progress" in names:
        assert way == "database"


def test_the_setting_turns_the_database_way_off(settings):
    settings.RECON_LOAD_IN_DATABASE = False
    _fields, _rows, way = _load(csv_of(*GOOD), copy.deepcopy(DEFAULT_CONFIG), in_database=None)
    assert way == "python"
    assert connection.vendor == "postgresql"
