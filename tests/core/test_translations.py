"""The Turkish catalog is complete and used; times show in Istanbul time."""

import datetime as dt
import re
from pathlib import Path

import polib
import pytest
from django.core.management import call_command
from django.template import Context, Template
from django.utils import translation

PO = Path(__file__).resolve().parents[2] / "locale" / "tr" / "LC_MESSAGES" / "django.po"
PLACEHOLDER = re.compile(r"%\(\w+\)[sd]|%[sd]")


@pytest.fixture(scope="module", autouse=True)
def compiled():
    call_command("compile_translations", verbosity=0)
    translation.trans_real._translations = {}  # reload the freshly compiled catalog
    yield


def test_every_string_is_translated_and_none_is_fuzzy():
    po = polib.pofile(str(PO))
    assert po.untranslated_entries() == []
    assert po.fuzzy_entries() == []
    assert po.metadata["Plural-Forms"].startswith("nplurals=2")


def test_placeholders_survive_translation():
    for entry in polib.pofile(str(PO)):
        wanted = sorted(PLACEHOLDER.findall(entry.msgid))
        got = [
            sorted(PLACEHOLDER.findall(s))
            for s in ([entry.msgstr] if not entry.msgid_plural else entry.msgstr_plural.values())
        ]
        assert all(g == wanted for g in got), entry.msgid


@pytest.mark.django_db
def test_the_login_page_speaks_turkish_by_default_and_english_on_request(client):
    turkish = client.get("/admin/login/").content.decode()
    assert "Adım 1/2: parolanız." in turkish
    assert "Tezgah operasyon konsolu" in turkish
    english = client.get("/admin/login/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Step 1 of 2: your password." in english


def test_job_statuses_read_in_turkish():
    from apps.jobs.models import JobStatus

    with translation.override("tr"):
        assert [str(label) for label in JobStatus.labels] == [
            "Sırada", "Çalışıyor", "Duraklatıldı", "Başarılı", "Başarısız", "İptal edildi",
        ]  # fmt: skip


def test_a_time_stored_in_utc_shows_in_istanbul_time():
    stored = dt.datetime(2026, 11, 22, 21, 30, tzinfo=dt.UTC)
    rendered = Template('{{ value|date:"Y-m-d H:i" }}').render(Context({"value": stored}))
    assert rendered == "2026-11-23 00:30"
