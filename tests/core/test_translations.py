"""The Turkish catalog is complete and used; times show in Istanbul time."""

import datetime as dt
import re
from pathlib import Path

import polib
import pytest
from django.core.management import call_command
from django.template import Context, Template
from django.utils import translation
from django.utils.translation.reloader import translation_file_changed

PO = Path(__file__).resolve().parents[2] / "locale" / "tr" / "LC_MESSAGES" / "django.po"
PLACEHOLDER = re.compile(r"%\(\w+\)[sdif]|%[sdif]")
HTML_TAG = re.compile(r"</?[a-zA-Z][^>]*>")


@pytest.fixture(scope="session", autouse=True)
def compiled_catalog():
    call_command("compile_translations", verbosity=0)
    # Forget catalogs loaded before the .mo was (re)written, as the dev server's reloader does.
    translation_file_changed(sender=None, file_path=PO.with_suffix(".mo"))
    yield


def _translations(entry):
    return list(entry.msgstr_plural.values()) if entry.msgid_plural else [entry.msgstr]


def test_every_string_is_translated_and_none_is_fuzzy():
    po = polib.pofile(str(PO))
    assert len(po) > 0
    assert [e.msgid for e in po.untranslated_entries()] == []
    assert [e.msgid for e in po.fuzzy_entries()] == []
    assert not po.metadata_is_fuzzy
    assert po.percent_translated() == 100
    assert po.metadata["Language"] == "tr"
    assert po.metadata["Plural-Forms"] == "nplurals=2; plural=(n != 1);"
    assert "charset=UTF-8" in po.metadata["Content-Type"]


def test_placeholders_and_markup_survive_translation():
    for entry in polib.pofile(str(PO)):
        wanted = sorted(PLACEHOLDER.findall(entry.msgid))
        tags = sorted(HTML_TAG.findall(entry.msgid))
        for msgstr in _translations(entry):
            if "python-format" in entry.flags:
                assert sorted(PLACEHOLDER.findall(msgstr)) == wanted, entry.msgid
            assert sorted(HTML_TAG.findall(msgstr)) == tags, entry.msgid


@pytest.mark.django_db
def test_the_login_page_speaks_turkish_by_default_and_english_on_request(client):
    turkish = client.get("/admin/login/").content.decode()
    assert "Adım 1/2: parolanız." in turkish
    assert "Tezgah operasyon konsolu" in turkish
    assert "Step 1 of 2" not in turkish

    english = client.get("/admin/login/", HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Step 1 of 2: your password." in english
    assert "Adım 1/2" not in english


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
