import base64
import hashlib
import json
import shutil
import subprocess
import zipfile
from io import StringIO

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.management import call_command

from apps.audit import services as audit
from apps.audit import signatures
from apps.compliance import content, evidence, services, verify
from apps.compliance.models import Control, ControlEvidence, EvidencePackage, Framework, PackageStatus
from apps.core import incident_lock
from tests.conftest import confirmed_device, make_user


@pytest.fixture(autouse=True)
def signing_key(settings, tmp_path):
    key = Ed25519PrivateKey.generate()
    settings.AUDIT_SIGNING_KEY = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    settings.AUDIT_WITNESS_FILE = str(tmp_path / "audit-witness.json")
    settings.COMPLIANCE_PACKAGE_DIR = str(tmp_path / "packages")
    settings.COMPLIANCE_BACKUP_SCHEDULE = "daily 02:00 pg_dump"
    settings.COMPLIANCE_BACKUP_RETENTION_DAYS = 35
    settings.COMPLIANCE_BACKUP_LOCATION = "s3://backups/tezgah"
    return key


@pytest.fixture
def public_pem(signing_key, tmp_path):
    path = tmp_path / "audit-public.pem"
    path.write_text(signatures.public_pem(signing_key.public_key()))
    return path


@pytest.fixture
def world(db):
    """Staff with and without MFA, an incident lock switched on and off, a sealed and signed audit chain."""
    confirmed_device(make_user("with_mfa", roles=["admin"]))
    make_user("without_mfa", roles=["analyst"])
    incident_lock.set_lock(True, reason="suspected key leak")
    incident_lock.set_lock(False, reason="keys rotated")
    audit.seal_pending()
    audit.make_checkpoint(force=True)


@pytest.fixture
def package(world):
    out = StringIO()
    call_command("compliance_package", framework="iso27001", period="2026-Q4", stdout=out)
    made = EvidencePackage.objects.get()
    assert made.status == PackageStatus.DONE and made.progress == 100 and "sha256" in out.getvalue()
    return services.package_path(made)


@pytest.mark.django_db
def test_framework_content_is_loaded_as_rows_with_a_statement_of_applicability():
    iso = Framework.objects.get(code="iso27001")
    assert iso.controls.count() == 93
    screening = Control.objects.get(framework=iso, ref="A.6.1")
    assert not screening.applicable and screening.justification
    assert ControlEvidence.objects.filter(control__ref="A.8.5", evidence="mfa_coverage").exists()
    assert Framework.objects.get(code="soc2").controls.filter(ref="CC6.1").exists()
    content.load_all()  # loading again changes nothing
    assert iso.controls.count() == 93
    assert {e for e in ControlEvidence.objects.values_list("evidence", flat=True)} <= set(evidence.EVIDENCE_CODES)


@pytest.mark.django_db
def test_the_package_manifest_lists_every_file_and_is_signed_with_the_audit_key(package, public_pem, signing_key):
    with zipfile.ZipFile(package) as archive:
        manifest_bytes = archive.read("manifest.json")
        manifest = json.loads(manifest_bytes)
        listed = {f["name"]: f["sha256"] for f in manifest["files"]}
        for name, digest in listed.items():
            assert hashlib.sha256(archive.read(name)).hexdigest() == digest
        signing_key.public_key().verify(base64.b64decode(archive.read("manifest.sig")), manifest_bytes)
    assert {"summary-tr.pdf", "summary-en.pdf", "controls.csv", "evidence/mfa_coverage.json"} <= set(listed)
    assert manifest["period"] == {"label": "2026-Q4", "start": "2026-10-01", "end": "2026-12-31"}
    assert manifest["generator"]["version"] == services.GENERATOR_VERSION
    assert manifest["audit_checkpoint"]["tree_size"] >= 2
    assert verify.main([str(package), "--public-key", str(public_pem)]) == 0


@pytest.mark.django_db
def test_the_evidence_says_what_was_found(package):
    with zipfile.ZipFile(package) as archive:
        mfa = json.loads(archive.read("evidence/mfa_coverage.json"))
        lock = json.loads(archive.read("evidence/incident_lock_periods.json"))
        chain = json.loads(archive.read("evidence/audit_verification.json"))
        walk = json.loads(archive.read("evidence/admin_url_walk.json"))
    assert mfa["status"] == "attention" and mfa["coverage_percent"] == 50.0
    assert len(lock["periods"]) == 1 and lock["periods"][0]["to"]
    assert chain["ok"] and chain["latest_checkpoint"]["signature"]
    assert walk["results"] and not any(r["exposed"] for r in walk["results"])


@pytest.mark.django_db
def test_tampering_one_file_of_the_zip_is_caught_by_the_manifest(package, public_pem, tmp_path):
    tampered = tmp_path / "tampered.zip"
    with zipfile.ZipFile(package) as source, zipfile.ZipFile(tampered, "w") as target:
        for item in source.infolist():
            data = source.read(item)
            if item.filename == "evidence/mfa_coverage.json":
                data = data.replace(b'"coverage_percent": 50.0', b'"coverage_percent": 100.0')
            target.writestr(item, data)
    found = verify.problems(tampered, signatures.load_public_key(public_pem.read_text()))
    assert found == ["evidence/mfa_coverage.json: sha256 differs from the manifest (the file was changed)"]
    assert verify.main([str(tampered), "--public-key", str(public_pem)]) == 1


@pytest.mark.django_db
def test_a_package_signed_by_another_key_fails(package, tmp_path):
    other = tmp_path / "other.pem"
    other.write_text(signatures.public_pem(Ed25519PrivateKey.generate().public_key()))
    assert verify.main([str(package), "--public-key", str(other)]) == 1


@pytest.mark.django_db
@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command")
def test_the_documented_openssl_command_verifies_the_manifest(package, public_pem, tmp_path):
    with zipfile.ZipFile(package) as archive:
        archive.extract("manifest.json", tmp_path)
        (tmp_path / "manifest.sig.bin").write_bytes(base64.b64decode(archive.read("manifest.sig")))
    command = [
        "openssl",
        "pkeyutl",
        "-verify",
        "-pubin",
        "-inkey",
        str(public_pem),
        "-rawin",
        "-in",
        str(tmp_path / "manifest.json"),
        "-sigfile",
        str(tmp_path / "manifest.sig.bin"),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "Signature Verified Successfully" in result.stdout


@pytest.mark.django_db
def test_the_turkish_summary_pdf_has_turkish_letters_and_the_english_one_english(package, tmp_path):
    import pypdfium2

    with zipfile.ZipFile(package) as archive:
        turkish = pypdfium2.PdfDocument(archive.read("summary-tr.pdf"))
        english = pypdfium2.PdfDocument(archive.read("summary-en.pdf"))
    text_tr = "".join(page.get_textpage().get_text_bounded() for page in turkish)
    text_en = "".join(page.get_textpage().get_text_bounded() for page in english)
    for letter in "ğıİş":
        assert letter in text_tr, letter
    assert "Kanıt paketi özeti" in text_tr and "Uygulanabilirlik Bildirgesi" in text_tr
    assert "Evidence package summary" in text_en and "Statement of Applicability" in text_en
    # The findings too are in each PDF's language (issue 19: they were English inside the Turkish PDF).
    flat_tr, flat_en = " ".join(text_tr.split()), " ".join(text_en.split())
    assert "2 etkin personel kullanıcısından 1 tanesinin onaylı ikinci doğrulama adımı var" in flat_tr
    assert "zincir doğrulandı" in flat_tr and "chain verified" not in flat_tr
    assert "1 of 2 active staff users have a confirmed second factor" in flat_en
    for i, page in enumerate(turkish):  # for looking at: docs/compliance.md says where
        page.render(scale=1.2).to_pil().save(tmp_path / f"summary-tr-{i + 1}.png")


@pytest.mark.django_db
def test_gdpr_package_carries_the_records_of_processing(world):
    call_command("compliance_package", framework="gdpr", period="2026-11", stdout=StringIO())
    with zipfile.ZipFile(services.package_path(EvidencePackage.objects.get())) as archive:
        records = archive.read("evidence/processing_records.csv").decode()
    assert "Portal user accounts" in records and "purpose" in records.splitlines()[0]


@pytest.mark.django_db
def test_a_bad_period_or_framework_is_refused():
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("compliance_package", framework="soc2", period="Q4-2026", stdout=StringIO())
    with pytest.raises(CommandError):
        call_command("compliance_package", framework="pci", period="2026-Q4", stdout=StringIO())


@pytest.mark.django_db
def test_the_admin_queues_a_package_and_links_the_finished_zip(client, world, django_capture_on_commit_callbacks):
    from django.urls import reverse

    from tests.conftest import verified_client

    verified_client(client, make_user("root2", superuser=True))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:compliance_evidencepackage_add"), {"framework": "soc2", "period": "2026-Q4"}
        )
    assert response.status_code == 302
    package = EvidencePackage.objects.get()
    assert package.status == PackageStatus.DONE
    listing = client.get(reverse("admin:compliance_evidencepackage_changelist")).content.decode()
    download = reverse("admin:compliance_package_download", args=[package.pk])
    assert download in listing
    assert client.get(download)["Content-Disposition"].startswith("attachment")


@pytest.mark.django_db
def test_retention_runs_are_evidence_with_their_counts_and_the_standing_holds(world):
    from datetime import timedelta

    from django.utils import timezone

    from apps.governance import constants, retention
    from apps.governance import services as governance
    from apps.governance.models import HoldScope
    from tests.governance.conftest import make_attempts

    make_attempts(4)
    retention.apply_class(constants.ERP_SYNC_ATTEMPTS)
    governance.place_hold(None, scope=HoldScope.GLOBAL, reason="tax audit 2026")
    period = timezone.localdate()
    label = f"{period:%Y-%m}"
    call_command("compliance_package", framework="soc2", period=label, stdout=StringIO())
    with zipfile.ZipFile(services.package_path(EvidencePackage.objects.get())) as archive:
        runs = json.loads(archive.read("evidence/retention_runs.json"))
    done = [r for r in runs["runs"] if r["data_class"] == constants.ERP_SYNC_ATTEMPTS]
    assert done and done[0]["deleted"] == 4 and done[0]["state"] == "done"
    assert len(runs["legal_holds_standing"]) == 1
    assert runs["status"] == "attention", "other data classes have no finished run in the period"
    assert constants.AUDIT_ENTRIES in runs["classes_without_a_finished_run"]
    assert {p["data_class"] for p in runs["policies"]} >= {constants.ERP_SYNC_ATTEMPTS, constants.SIEM_BACKLOG}
    assert "4 rows deleted" in runs["summary"] and runs["summary_i18n"]["args"]["holds"] == 1
    assert Control.objects.filter(framework__code="soc2", ref="C1.2", evidence__evidence="retention_runs").exists()
    assert timedelta(0) <= timezone.now() - timezone.datetime.fromisoformat(done[0]["finished_at"])


@pytest.mark.django_db
def test_the_records_of_processing_carry_the_data_inventory(world):
    document = evidence.processing_records(None)
    stored = {row["model"]: row for row in document["inventory"]}
    assert "email" in stored["accounts.User"]["personal_or_sensitive_fields"]
    assert stored["audit.AuditLog"]["retention_class"] == "audit_entries"
    assert "data inventory lists" in document["summary"]
