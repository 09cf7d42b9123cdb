"""The masker on a committed corpus of realistic records with planted personal data, and its detectors."""

import hashlib
import json
import logging
import uuid
from pathlib import Path

import pytest

from apps.core import masking
from apps.core.logging import JsonFormatter

CORPUS = Path(__file__).parent / "corpus" / "records.jsonl"


def _corpus():
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_the_corpus_leaks_nothing_and_keeps_every_id():
    rows = _corpus()
    assert len(rows) >= 300
    leaks, lost = [], []
    for row in rows:
        text = json.dumps(masking.mask(row["record"]), ensure_ascii=False)
        leaks += [(p, text) for p in row["pii"] if p in text]
        lost += [(k, text) for k in row["keep"] if k not in text]
    assert leaks == []
    assert lost == []


def test_the_corpus_masks_client_ips_only_when_asked():
    rows = [r for r in _corpus() if "client_ip" in r["record"].get("payload", {})]
    assert rows
    for row in rows:
        ip = row["record"]["payload"]["client_ip"]
        assert ip in json.dumps(masking.mask(row["record"]))
        assert ip not in json.dumps(masking.mask(row["record"], mask_ips=True))


@pytest.mark.parametrize(
    "text",
    [
        "10000000146",  # a valid TC Kimlik No
        "TR33 0006 1005 1978 6457 8413 26",
        "TR330006100519786457841326",
        "4111 1111 1111 1111",
        "4111-1111-1111-1111",
        "378282246310005",
        "0532 123 45 67",
        "05321234567",
        "+90 532 123 45 67",
        "+90 (212) 345-67-89",
        "0212 345 67 89",
        "+49 30 1234567",
        "+44 20 7946 0958",
        "ayse.yilmaz@ornek.com.tr",
    ],
)
def test_each_detector_masks_its_kind(text):
    masked = masking.mask_text(f"değer: {text} bitti")
    assert text not in masked
    assert masked.startswith("değer: [") and masked.endswith("] bitti")


@pytest.mark.parametrize(
    "text",
    [
        "12345678901",  # 11 digits failing the TC Kimlik No check
        "TR33 0006 1005 1978 6457 8413 27",  # IBAN with a wrong check
        "4111 1111 1111 1112",  # fails Luhn
        # Fixed values: test ids must be the same in every pytest-xdist worker.
        str(uuid.UUID("2a1ec12b-58b6-43e2-819f-87d8db85f080")),
        uuid.UUID("6249a7a46241494987b361b9ed8134f7").hex,
        hashlib.sha256(b"tezgah").hexdigest(),
        "SIP-2026-00042",
        "2026-12-02T07:18:17.123456+00:00",
        "1.250.000,00 TL",
        "v2.3.1",
    ],
)
def test_ids_and_numbers_that_are_not_personal_pass(text):
    assert masking.mask_text(f"değer: {text} bitti") == f"değer: {text} bitti"


def test_secrets_are_masked_in_every_shape():
    cases = {
        "Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.abc": "Authorization: [SECRET]",
        "sent Bearer abcdefgh12345678 to erp": "sent Bearer [SECRET] to erp",
        "password=hunter2&next=/": "password=[SECRET]&next=/",
        '{"client_secret": "s3cr3t-value"}': '{"client_secret": "[SECRET]"}',
        "api_key=8a36dcabae184c968e77042e1c2f4e10": "api_key=[SECRET]",
        "redis://default:pa55word@cache:6379/0": "redis://[SECRET]@cache:6379/0",
    }
    for text, expected in cases.items():
        assert masking.mask_text(text) == expected


def test_fields_are_masked_by_name_and_allowlisted_fields_pass():
    value = {
        "password": "x", "token": "abc", "Authorization": "Basic Zm9vOmJhcg==", "email": "a@b.co",
        "address": "Bağdat Cad. No:5", "tckn": "12345678901", "musteri": "Çağrı Şimşek",
        "chain_hash": "a" * 64, "object_id": "12345678901", "seq": 10000000146, "count": 3, "nested": [{"phone": "x"}],
    }  # fmt: skip
    masked = masking.mask(value)
    assert masked["password"] == masked["token"] == masked["Authorization"] == masking.SECRET
    assert masked["email"] == masked["address"] == masked["tckn"] == masked["musteri"] == masking.PERSONAL
    assert masked["nested"] == [{"phone": masking.PERSONAL}]
    assert masked["chain_hash"] == "a" * 64 and masked["object_id"] == "12345678901" and masked["seq"] == 10000000146
    assert masked["count"] == 3


def test_a_number_field_holding_a_national_id_is_masked():
    assert masking.mask({"value": 10000000146}) == {"value": masking.TCKN}


def test_the_log_formatter_masks_messages_and_tracebacks(settings):
    settings.LOG_MASK_PII = True
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "mail to %s failed", ("ali@ornek.com.tr",), None)
    try:
        raise ValueError("card 4111 1111 1111 1111")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(record))
    assert line["msg"] == "mail to [EMAIL] failed"
    assert "4111 1111 1111 1111" not in line["exc"] and "[CARD]" in line["exc"]


def test_log_masking_can_be_switched_off(settings):
    settings.LOG_MASK_PII = False
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "mail ali@ornek.com.tr", (), None)
    assert json.loads(JsonFormatter().format(record))["msg"] == "mail ali@ornek.com.tr"


def test_the_audit_checkpoint_log_line_survives_masking():
    from apps.audit import witness

    statement = {
        "v": 1, "tree_size": 12345678901, "head_hash": "1" * 64, "merkle_root": "0123456789" * 6 + "abcd",
        "ts": "2026-12-02T07:00:00.000000Z", "key_id": "0123456789abcdef",
        "signature": "MEUCIQD1234567890123+/" + "A" * 64 + "==", "tsa_token": "",
    }  # fmt: skip
    line = witness.log_message(statement)
    assert masking.mask_text(line) == line
