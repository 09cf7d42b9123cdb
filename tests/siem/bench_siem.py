"""Benchmarks of the SIEM feed (docs/benchmarks.md): shipping over TLS beside `openssl s_client`, and masking.

    DATABASE_URL=postgres://... .venv/bin/python tests/siem/bench_siem.py [records] [port]

Ships `records` rows from the durable table (services.ship: read, frame, TLS, cursor update) to a local
rsyslog and then has `openssl s_client` send the very same framed bytes to the same rsyslog; both are timed
until rsyslog has written every line. Masking: the committed corpus through apps.core.masking.mask.
The database it uses is migrated, and its SIEM tables emptied, first: never point it at one that matters.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
os.environ.setdefault("DJANGO_SECRET_KEY", "bench")
os.environ.setdefault("DJANGO_DEBUG", "true")


def main():
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    from apps.core import masking
    from apps.siem import envelope, services
    from apps.siem.models import SiemDestination, SiemRecord
    from tests.siem import syslog_server

    records = int(sys.argv[1]) if len(sys.argv) > 1 else 20000
    base_port = int(sys.argv[2]) if len(sys.argv) > 2 else 18590
    corpus = [
        json.loads(line)["record"]
        for line in (ROOT / "tests/siem/corpus/records.jsonl").read_text(encoding="utf-8").splitlines()
    ]

    # ---- masking throughput
    rounds = max(1, 20000 // len(corpus))
    started = time.perf_counter()
    for _ in range(rounds):
        for record in corpus:
            masking.mask(record)
    mask_seconds = time.perf_counter() - started
    masked_per_s = rounds * len(corpus) / mask_seconds
    started = time.perf_counter()
    for _ in range(rounds):
        for record in corpus:
            json.dumps(record, ensure_ascii=False)
    dumps_per_s = rounds * len(corpus) / (time.perf_counter() - started)
    print(f"reference, json.dumps of the same records: {dumps_per_s:,.0f} records/s")
    sizes = [len(json.dumps(r, ensure_ascii=False).encode()) for r in corpus]
    print(f"masking: {rounds * len(corpus)} records in {mask_seconds:.2f} s = {masked_per_s:,.0f} records/s "
          f"(mean record {sum(sizes) / len(sizes):.0f} bytes)")  # fmt: skip

    call_command("migrate", verbosity=0)
    SiemRecord.objects.all().delete()
    SiemDestination.objects.all().delete()
    rows = []
    from django.utils import timezone

    now = timezone.now()
    for i in range(records):
        payload = masking.mask(corpus[i % len(corpus)])
        env = {
            "schema_ver": 1, "event_id": str(envelope.event_id("bench", i)), "level": "INFO", "svc": "tezgah",
            "ts": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "host": "bench", "req_id": "-", "trace_id": "",
            "actor": {"type": "system", "id": ""}, "event": "bench.record",
            "payload_redacted": {"seq": i, "data": payload},
        }  # fmt: skip
        rows.append(services._record("audit", i, env, now))
    SiemRecord.objects.bulk_create(rows, batch_size=2000)

    with tempfile.TemporaryDirectory(prefix="siem15-bench-") as folder:
        folder = Path(folder)
        pki = syslog_server.make_pki(folder, prefix="bench")
        server = syslog_server.Rsyslog(folder, tcp_port=base_port, tls_port=base_port + 1, server=pki).start()
        try:
            settings.SIEM_ENDPOINT = f"tls://localhost:{server.tls_port}"
            settings.SIEM_ALLOWED_HOSTS = ["localhost"]
            settings.SIEM_CA_FILE = str(pki.ca_file)
            results = {}
            for batch in (100, 1000):
                settings.SIEM_BATCH_SIZE = batch
                SiemDestination.objects.all().delete()
                before = len(server.lines())
                started = time.perf_counter()
                if os.environ.get("BENCH_PROFILE"):
                    import cProfile
                    import pstats

                    profile = cProfile.Profile()
                    sent = profile.runcall(services.ship, max_seconds=600, collect_first=False)
                    pstats.Stats(profile).sort_stats("cumtime").print_stats(25)
                else:
                    sent = services.ship(max_seconds=600, collect_first=False)
                lines = server.wait_for(before + records, timeout=300)
                ours = time.perf_counter() - started
                assert sent == records and len(lines) - before == records, (sent, len(lines) - before)
                results[batch] = ours

            framed = folder / "framed.bin"
            framed.write_bytes(b"".join(services.frames(SiemRecord.objects.order_by("pk").iterator())))
            size = framed.stat().st_size
            before = len(server.lines())
            started = time.perf_counter()
            # -quiet keeps the connection open at the end of its input (-ign_eof): timed until rsyslog wrote the
            # last line, like ours, then ended (closing on EOF instead lost the tail of the stream).
            with open(framed, "rb") as stdin:
                client = subprocess.Popen(
                    ["openssl", "s_client", "-connect", f"127.0.0.1:{server.tls_port}", "-servername", "localhost",
                     "-CAfile", str(pki.ca_file), "-verify_return_error", "-quiet"],
                    stdin=stdin, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
                lines = server.wait_for(before + records, timeout=300)
                openssl = time.perf_counter() - started
                client.terminate()
                client.wait(timeout=10)
            assert len(lines) - before == records, len(lines) - before
        finally:
            server.stop()

    limit = records / openssl
    print(
        f"openssl s_client: {records} framed records ({size / 1e6:.1f} MB) in {openssl:.2f} s = {limit:,.0f} records/s"
    )
    for batch, seconds in results.items():
        rate = records / seconds
        print(f"services.ship, batch {batch}: {seconds:.2f} s = {rate:,.0f} records/s = {rate / limit:.0%} of openssl")
    SiemRecord.objects.all().delete()
    SiemDestination.objects.all().delete()


if __name__ == "__main__":
    main()
