"""The COPY writers (PostgreSQL builds each line) write the very bytes the Python writers write."""

import datetime as dt
import io
import random

import pytest
from django.utils import translation

from apps.core.spreadsheet_safety import neutralise
from apps.jobs.models import Job, JobStatus
from apps.reporting import copy_export, selectors
from apps.reporting.export_formats import WRITERS
from tests import factories
from tests.conftest import make_user

# Texts a cell may hold: formulas, numbers that look like formulas (Python's float() grammar, Unicode
# digits and spaces included), CSV specials, JSON escapes, Turkish letters.
TRICKY = [
    "=SUM(A1:A9)",
    "+90 555",
    "-5",
    "-5.5e3",
    "+1_000",
    "-1__0",
    "-_1",
    "-1_",
    "@cmd",
    "\t=1",
    "\t5",
    "\r7",
    "-inf",
    "+Infinity",
    "-nan",
    "-infinit",
    "-١٢",
    "-\u00a05",
    "-5\u2003",
    "+.5",
    "-5.",
    "-.",
    "-1e",
    "-1e+5_0",
    "=İ",
    "Dişli ığdır; Şasi",
    'say "hi"',
    "line\nbreak",
    "cr\rhere",
    "crlf\r\nend",
    "back\\slash\\n",
    "tab\there",
    "ctl\x01\x1f\x7f",
    "",
    ";",
    ",",
    "ÇĞİÖŞÜçğıöşü",
    "'quoted",
    "-",
    "=",
    "‐5",
]


def _text(rng):
    if rng.random() < 0.6:
        return rng.choice(TRICKY)
    alphabet = "aZ09 ;,\"'=+-@\t\r\n\\ığüşöçİĞÜŞÖÇ_.eE١"
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))


def _time(rng):
    # Mostly recent; some before 1911, when Istanbul's offset had seconds (isoformat writes +01:56:56).
    start = dt.datetime(1890, 1, 1, tzinfo=dt.UTC) if rng.random() < 0.05 else dt.datetime(2014, 1, 1, tzinfo=dt.UTC)
    base = start + dt.timedelta(seconds=rng.randint(0, 24 * 365 * 86400))
    return base + dt.timedelta(microseconds=rng.choice([0, 0, 1, 999_999, rng.randint(0, 999_999)]))


@pytest.fixture
def random_jobs(db):
    rng = random.Random(16)
    tenants = [factories.TenantFactory(name=_text(rng) or "T", slug=f"t-{i}") for i in range(3)]
    created = 0
    for t, tenant in enumerate(tenants):
        posts = [factories.PostFactory(tenant=tenant, code=_text(rng) + f"-{i}") for i in range(3)]
        types = [factories.ModelTypeFactory(tenant=tenant, code=_text(rng) + f"#{i}") for i in range(2)]
        for k in range(120):
            post = rng.choice(posts)
            # Every tricky text once as it is (ERP ids are unique per tenant), then random ones.
            external_id = TRICKY[k] if t == 0 and k < len(TRICKY) else _text(rng) + f"/{created}"
            status = rng.choice(JobStatus.values)
            started = _time(rng) if rng.random() < 0.8 else None
            Job.objects.create(
                tenant=tenant,
                post=post,
                machine=post.machine,
                model_type=rng.choice(types),
                external_id=None if rng.random() < 0.2 and not (t == 0 and k < len(TRICKY)) else external_id,
                status=status,
                progress=rng.randint(0, 100),
                created_at=_time(rng),
                started_at=started,
                finished_at=_time(rng) if rng.random() < 0.5 else None,
                duration_ms=None if rng.random() < 0.3 else rng.randint(0, 10**10),
            )
            created += 1
    return tenants


META = {
    "export_id": "00000000-0000-0000-0000-000000000016",
    "filters": {"status": ["failed"], "machine": "=x"},
    "time_zone": "Europe/Istanbul",
    "data_as_of": "2026-12-02T10:00:00+03:00",
    "snapshot_job_id": 1,
    "requested_by": "=analist",
    "generator_version": "tezgah-report-export/1",
}


def _python_file(fmt, user, filters, as_of):
    out = io.BytesIO()
    rows = selectors.report_rows(user, filters, as_of=as_of).iterator(chunk_size=100)
    with translation.override("tr"):
        n = WRITERS[fmt](rows, out, META, lambda _n: None)
    return out.getvalue(), n


def _copy_file(fmt, user, filters, as_of, progress=None):
    out = io.BytesIO()
    with translation.override("tr"):
        n = copy_export.write(fmt, user, filters, as_of=as_of, out=out, meta=META, progress=progress)
    return out.getvalue(), n


@pytest.mark.postgres
@pytest.mark.parametrize("fmt", ["csv", "csv_excel", "json"])
def test_copy_writer_writes_the_python_writers_bytes_on_random_data(random_jobs, fmt):
    user = make_user("su", superuser=True)
    as_of = selectors.snapshot_job_id()
    for filters in ({}, {"status": [JobStatus.FAILED, JobStatus.SUCCEEDED]}, {"tenant": "t-1"}):
        expected, n_expected = _python_file(fmt, user, filters, as_of)
        got, n_got = _copy_file(fmt, user, filters, as_of)
        assert n_got == n_expected > 0
        if got != expected:  # show the first differing line, not two 100 kB blobs
            for a, b in zip(got.split(b"\n"), expected.split(b"\n"), strict=False):
                assert a == b
        assert got == expected


@pytest.mark.postgres
def test_copy_writer_keeps_tenant_scope_and_the_snapshot(random_jobs, tenant_b):
    scoped = make_user("scoped", tenants=[random_jobs[0]])
    as_of = Job.objects.filter(tenant=random_jobs[0]).order_by("id")[60].id
    expected, n = _python_file("csv", scoped, {}, as_of)
    got, m = _copy_file("csv", scoped, {}, as_of)
    assert got == expected
    assert m == n == Job.objects.filter(tenant=random_jobs[0], id__lte=as_of).count()


@pytest.mark.postgres
def test_copy_writer_reports_progress_and_restores_the_time_zone(random_jobs, monkeypatch):
    from django.db import connection

    monkeypatch.setattr(copy_export, "BLOCK_ROWS", 10)
    seen = []
    user = make_user("su", superuser=True)
    original = copy_export.copy_lines

    def every_20(*args, **kwargs):
        kwargs["progress_every"] = 20
        return original(*args, **kwargs)

    monkeypatch.setattr(copy_export, "copy_lines", every_20)
    _got, n = _copy_file("json", user, {}, selectors.snapshot_job_id(), progress=seen.append)
    assert seen == list(range(20, n + 1, 20))
    with connection.cursor() as c:
        c.execute("SELECT current_setting('TimeZone')")
        assert c.fetchone()[0] == "UTC"


def test_the_sql_number_rule_is_pythons_float():
    """neutralise() leaves a text alone when float() reads it; the SQL regex must agree on each sample."""
    import re

    # Python's re understands this regex too (only bracket ranges, (?:), *, ?, |, anchors).
    rule = re.compile(copy_export.number_regex())
    samples = [
        *TRICKY,
        "1",
        " 1 ",
        "1_0",
        "1__0",
        "_1",
        "1_",
        "1_.5",
        "1._5",
        "1e1_0",
        "1e_1",
        "١.٥",
        "inf",
        "nan",
        "infinity",
        "INFINITY",
        "in",
        "1e5",
        ".e5",
        "e5",
    ]
    for text in samples:
        try:
            float(text)
            number = True
        except ValueError:
            number = False
        assert bool(rule.match(text)) is number, text
        if text.startswith(("=", "+", "-", "@", "\t", "\r")):
            assert (neutralise(text) == text) is number
