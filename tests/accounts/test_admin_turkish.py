"""The admin in Turkish: no capital dotless I where a lowercase "i" word was capitalised, no English app names.

Django capitalises verbose names with `capfirst`, i.e. Python's `str.upper`, which turns the Turkish "iş"
into "Iş". The walk renders every admin page a superuser is served (every changelist, add and change
page, with their inline headings and "Add another" labels) in Turkish and looks for such words, comparing
against every Turkish catalog Django has loaded: a word "I…" is wrong when its dotted form "i…" starts a
translation.
"""

import html
import json
import re

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.contrib import admin
from django.utils import translation
from django.utils.translation import trans_real

from tests.audit.conftest import pem
from tests.conftest import verified_client

from .test_admin_url_walk import PUBLIC_NAMES, admin_urls, samples  # noqa: F401 (samples is a fixture)

pytestmark = pytest.mark.django_db

TAG = re.compile(r"<script\b.*?</script>|<style\b.*?</style>|<[^>]+>", re.S)
INLINE_DATA = re.compile(r'data-inline-formset="([^"]*)"')
# A word that starts with a capital dotless I followed by a lowercase letter (Turkish letters included).
DOTLESS_WORD = re.compile(r"(?<![\w])I[a-zçğıöşü]\w*")
ENGLISH_APP_NAMES = ("Core", "Otp_", "Knox", "Periodic Tasks", "Auth tokens", "Static devices", "TOTP devices")


def _turkish_msgstrs():
    return [value for _key, value in trans_real.translation("tr")._catalog.items()]


@pytest.fixture(scope="module")
def wrong_capitals(django_db_setup, django_db_blocker):
    """Words as `capfirst` would spoil them: "I" + the rest of the first word of every translation starting with "i"."""
    with translation.override("tr"):
        msgstrs = _turkish_msgstrs()
    words = set()
    for msgstr in msgstrs:
        if first := re.match(r"i[a-zçğıöşü]\w*", str(msgstr)):
            words.add("I" + first.group()[1:])
    assert "Iş" in words  # the catalog has "iş durumu değişikliği"
    return words


def page_text(content: str) -> str:
    """What a reader sees: the text between tags, and the inline formsets' "Add another" labels."""
    text = html.unescape(TAG.sub(" ", content))
    for raw in INLINE_DATA.findall(content):
        data = json.loads(html.unescape(raw))
        text += " " + data.get("options", {}).get("addText", "")
    return text


def dotless_capitals(text: str, wrong: set[str]) -> set[str]:
    return {word for word in DOTLESS_WORD.findall(text) if word in wrong}


def test_the_check_finds_what_capfirst_does_to_a_turkish_word(wrong_capitals):
    from django.utils.text import capfirst

    assert dotless_capitals(f"<h2>{capfirst('iş durumu değişiklikleri')}</h2>", wrong_capitals) == {"Iş"}
    assert dotless_capitals("<h2>İş durumu değişiklikleri</h2> Işık Interval", wrong_capitals) == set()


@pytest.fixture
def every_model(samples, superuser, settings):  # noqa: F811
    """`samples` plus a row of each registered model it lacks: a changelist with no rows shows no column headers."""
    from django.utils import timezone

    from apps.audit import services as audit
    from apps.core import incident_lock
    from apps.erp.models import ErpOutboundDeadLetter, ErpSync, IntegrationProfile
    from apps.jobs import services as jobs
    from apps.jobs.models import Job, JobStatus
    from apps.reporting.models import AlertChannel, AlertNotice, AlertRule, ReportExport

    job = samples[Job]
    tenant = job.tenant
    jobs.change_status(job, JobStatus.RUNNING, actor=superuser)  # a history row, an audit entry, an outbox event
    incident_lock.set_lock(False, reason="walk", actor=superuser)
    audit.seal_pending()
    settings.AUDIT_SIGNING_KEY = pem(Ed25519PrivateKey.generate())
    audit.make_checkpoint(force=True)
    profile = IntegrationProfile.objects.create(tenant=tenant, name="ERP")
    sync = ErpSync.objects.create(
        direction="outbound", profile=profile, tenant=tenant, job=job, idempotency_key="k", body_sha256="0" * 64,
        request_body={}, body="{}",
    )  # fmt: skip
    ErpOutboundDeadLetter.objects.create(sync=sync, cause="exhausted", attempts=3)
    ReportExport.objects.create(requested_by=superuser, format="csv", download_count=1, downloaded_at=timezone.now())
    channel = AlertChannel.objects.create(tenant=tenant, name="E-posta", kind="email", target="ops@example.com")
    rule = AlertRule.objects.create(tenant=tenant, name="Hata", metric="failure_rate", threshold=10, severity="warning")
    AlertNotice.objects.create(
        rule=rule, channel=channel, dedup_key="d", kind="firing", severity="warning", created_at=timezone.now()
    )
    from apps.observability.models import RequestStat

    RequestStat.objects.create(
        bucket=timezone.now(), tenant=tenant, tenant_key=tenant.pk, view="v1:job-list", requests=1
    )
    # issue 18: a recon config, file, run and breaks.
    import io

    from apps.recon import services as recon

    recon.run(
        recon.register_file(
            io.BytesIO(b"external_id,status,progress\nERP-WALK,running,5\n"),
            name="e.csv",
            profile=profile,
            source="command",
        )
    )
    # issue 19: a usage event, a pricing version and an evidence package.
    import datetime as dt

    from apps.billing import services as billing
    from apps.compliance.models import EvidencePackage

    billing.record_usage(tenant.pk, "exports", 1, key="walk")
    billing.create_pricing_version(valid_from=dt.date(2026, 1, 1), rates=[{"metric": "exports", "unit_price": "5"}])
    EvidencePackage.objects.create(
        framework="soc2", period="2026-Q4", period_start=dt.date(2026, 10, 1), period_end=dt.date(2026, 12, 31)
    )
    # issue 15: a record waiting for the SIEM and its destination.
    import uuid

    from apps.siem.models import SiemDestination, SiemRecord

    SiemRecord.objects.create(
        event_id=uuid.uuid4(), source="audit", source_ref=1, event="auth.login_failed", level="warning",
        ts=timezone.now(), envelope={"schema_ver": 1}, message="<107>1 - - - - - -",
    )  # fmt: skip
    SiemDestination.objects.create(endpoint="tls://siem.example.com:6514")
    empty = [m._meta.label for m in admin.site._registry if not m._default_manager.exists()]
    assert empty == [], f"give the walk a row of {empty}"
    return samples


def test_no_admin_page_shows_a_capital_dotless_i_where_i_is_meant(client, superuser, every_model, wrong_capitals):
    samples = every_model  # noqa: F811
    verified_client(client, superuser)
    found, served = {}, 0
    for item in admin_urls(samples):
        if item.name in PUBLIC_NAMES or item.name in {"jsi18n", "autocomplete", "view_on_site"}:
            continue
        response = client.get(item.url, HTTP_ACCEPT_LANGUAGE="tr")
        if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
            continue
        served += 1
        if bad := dotless_capitals(page_text(response.content.decode()), wrong_capitals):
            found[item.url] = sorted(bad)
    assert served > 60
    assert found == {}


def test_every_inline_heading_reads_in_turkish_with_a_dotted_capital(client, superuser, samples):  # noqa: F811
    verified_client(client, superuser)
    job = next(row for model, row in samples.items() if model._meta.label == "jobs.Job")
    from apps.jobs import services
    from apps.jobs.models import JobStatus

    services.change_status(job, JobStatus.RUNNING, actor=superuser)
    content = client.get(f"/admin/jobs/job/{job.pk}/change/", HTTP_ACCEPT_LANGUAGE="tr").content.decode()

    assert "İş durumu değişiklikleri" in page_text(content)
    assert "Iş durumu" not in page_text(content)


def test_the_sidebar_names_every_app_in_turkish_and_in_english(client, superuser, samples):  # noqa: F811
    verified_client(client, superuser)
    turkish = page_text(client.get("/admin/", HTTP_ACCEPT_LANGUAGE="tr").content.decode())
    english = page_text(client.get("/admin/", HTTP_ACCEPT_LANGUAGE="en").content.decode())

    for name in ENGLISH_APP_NAMES:
        assert name not in turkish, name
    for app in ("otp_totp", "otp_static", "knox", "django_celery_beat", "core"):
        assert f"/admin/{app}/" in client.get("/admin/").content.decode()
    for name in ("API belirteçleri", "Doğrulama uygulamaları", "Yedek kodlar", "Zamanlanmış görevler"):
        assert name in turkish, name
    for name in ("API tokens", "Authenticator apps", "Backup codes", "Scheduled tasks"):
        assert name in english, name
    for name in ("Otp_", "Knox", "Periodic Tasks"):
        assert name not in english, name


def test_every_registered_model_has_a_turkish_name(superuser):
    english = {}
    for model in admin.site._registry:
        with translation.override("en"):
            en = (str(model._meta.verbose_name), str(model._meta.verbose_name_plural))
        with translation.override("tr"):
            tr = (str(model._meta.verbose_name), str(model._meta.verbose_name_plural))
        if en == tr:
            english[model._meta.label] = en
    assert english == {}
