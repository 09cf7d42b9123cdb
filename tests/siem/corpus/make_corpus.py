# ruff: noqa: E501
"""Writes records.jsonl (run: .venv/bin/python tests/siem/corpus/make_corpus.py tests/siem/corpus/records.jsonl).

Seeded, so the file is the same every run: Turkish names and addresses, planted personal data (`pii`: must not
survive masking) and ids (`keep`: must survive). Not a test module."""

import hashlib
import json
import random
import sys
import uuid

sys.path.insert(0, str(__import__("pathlib").Path(__file__).resolve().parents[3]))
from apps.core.masking import iban_valid, luhn_valid, tckn_valid

rng = random.Random(15)
FIRST = [
    "Ayşe",
    "Mehmet",
    "Fatma",
    "Mustafa",
    "Emine",
    "Ahmet",
    "Hatice",
    "Ali",
    "Zeynep",
    "Hüseyin",
    "Elif",
    "İbrahim",
    "Şule",
    "Çağrı",
    "Gökhan",
    "Özlem",
    "Ümit",
    "Buğra",
    "Işıl",
    "Doğan",
]
LAST = [
    "Yılmaz",
    "Kaya",
    "Demir",
    "Şahin",
    "Çelik",
    "Yıldız",
    "Yıldırım",
    "Öztürk",
    "Aydın",
    "Özdemir",
    "Arslan",
    "Doğan",
    "Kılıç",
    "Aslan",
    "Çetin",
    "Kara",
    "Koç",
    "Kurt",
    "Özkan",
    "Şimşek",
]
STREETS = [
    "Atatürk Cad.",
    "Cumhuriyet Mah. İstiklal Sok.",
    "Bağdat Cad.",
    "Gazi Mustafa Kemal Blv.",
    "Fevzi Çakmak Mah. 10234 Sok.",
    "Organize Sanayi Bölgesi 3. Cad.",
]
CITIES = [
    "Kadıköy/İstanbul",
    "Çankaya/Ankara",
    "Bornova/İzmir",
    "Nilüfer/Bursa",
    "Şahinbey/Gaziantep",
    "Osmangazi/Bursa",
    "Selçuklu/Konya",
]
DOMAINS = ["ornek.com.tr", "fabrika.com", "gmail.com", "metal-sanayi.com.tr", "tekstil.net"]


def ascii(s):
    return s.lower().translate(str.maketrans("çğıöşüİ", "cgiosui")).replace(" ", "")


def tckn():
    while True:
        d = [rng.randint(1, 9)] + [rng.randint(0, 9) for _ in range(8)]
        d10 = ((d[0] + d[2] + d[4] + d[6] + d[8]) * 7 - (d[1] + d[3] + d[5] + d[7])) % 10
        d.append(d10)
        d.append(sum(d) % 10)
        s = "".join(map(str, d))
        if tckn_valid(s):
            return s


def not_tckn():
    while True:
        s = str(rng.randint(10**10, 10**11 - 1))
        if not tckn_valid(s) and not s.startswith("5"):
            return s


def card():
    prefix = rng.choice(["4", "51", "55", "37", "6011"])
    length = 15 if prefix == "37" else 16
    while True:
        body = prefix + "".join(str(rng.randint(0, 9)) for _ in range(length - len(prefix)))
        if luhn_valid(body):
            return body


def fmt_card(c):
    return " ".join(c[i : i + 4] for i in range(0, len(c), 4)) if rng.random() < 0.5 else c


def iban():
    bank = "".join(str(rng.randint(0, 9)) for _ in range(22))
    bban = bank
    check = 98 - int("".join(str(int(ch, 36)) for ch in (bban + "TR00"))) % 97
    s = f"TR{check:02d}{bban}"
    assert iban_valid(s)
    return " ".join(s[i : i + 4] for i in range(0, len(s), 4)) if rng.random() < 0.5 else s


def mobile():
    n = f"5{rng.randint(30, 59)}{rng.randint(100, 999)}{rng.randint(10, 99)}{rng.randint(10, 99)}"
    style = rng.randint(0, 3)
    if style == 0:
        return f"0{n[:3]} {n[3:6]} {n[6:8]} {n[8:]}"
    if style == 1:
        return f"+90 {n[:3]} {n[3:6]} {n[6:8]} {n[8:]}"
    if style == 2:
        return f"+90 ({n[:3]}) {n[3:6]}-{n[6:8]}-{n[8:]}"
    return f"0{n}"


def landline():
    return f"0{rng.choice(['212', '216', '312', '232', '224'])} {rng.randint(200, 999)} {rng.randint(10, 99)} {rng.randint(10, 99)}"


def intl():
    return rng.choice(
        [
            f"+49 30 {rng.randint(1000000, 9999999)}",
            f"+44 20 {rng.randint(1000, 9999)} {rng.randint(1000, 9999)}",
            f"+1 (212) 555-{rng.randint(1000, 9999)}",
            f"+33 1 {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)}",
        ]
    )


def ip():
    return f"{rng.choice([31, 78, 85, 88, 176, 212])}.{rng.randint(0, 255)}.{rng.randint(0, 255)}.{rng.randint(1, 254)}"


def token():
    return (
        rng.choice(["Bearer ", "Token "])
        if False
        else "".join(rng.choice("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") for _ in range(40))
    )


out = []
for i in range(400):
    first, last = rng.choice(FIRST), rng.choice(LAST)
    name = f"{first} {last}"
    email = f"{ascii(first)}.{ascii(last)}{rng.randint(1, 99)}@{rng.choice(DOMAINS)}"
    address = f"{rng.choice(STREETS)} No:{rng.randint(1, 200)} D:{rng.randint(1, 30)} {rng.choice(CITIES)}"
    job = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    req = uuid.UUID(int=rng.getrandbits(128), version=4).hex
    sha = hashlib.sha256(str(i).encode()).hexdigest()
    order = f"SIP-2026-{rng.randint(1, 99999):05d}"
    other = not_tckn()
    amount = f"{rng.randint(1, 999)}.{rng.randint(100, 999)},{rng.randint(10, 99)} TL"
    kind = i % 8
    pii, keep = [], [job, req, sha, order, other]
    if kind == 0:
        tel, t = mobile(), tckn()
        rec = {
            "action": "accounts.profile.updated",
            "request_id": req,
            "job_id": job,
            "payload": {
                "full_name": name,
                "email": email,
                "phone": tel,
                "tckn": t,
                "address": address,
                "note": f"Müşteri {name} ({email}, {tel}) kimlik {t} ile doğrulandı; sipariş {order}, referans {other}.",
            },
        }
        pii += [email, tel, t, address]
    elif kind == 1:
        ib = iban()
        rec = {
            "action": "billing.payout.created",
            "request_id": req,
            "payload": {
                "job": job,
                "memo": f"{name} adına {amount} ödeme, IBAN: {ib}, fatura {order}",
                "payload_sha256": sha,
                "ref": other,
            },
        }
        pii += [ib]
    elif kind == 2:
        c = fmt_card(card())
        rec = {
            "action": "billing.card.charged",
            "request_id": req,
            "payload": {
                "text": f"Kart {c} ile {amount} tahsil edildi (iş {job}); kontrol {sha}",
                "order": order,
                "ref_no": other,
            },
        }
        pii += [c]
    elif kind == 3:
        tok = token()
        rec = {
            "event": "erp.outbound.failed",
            "req_id": req,
            "payload": {
                "headers": {"Authorization": f"Bearer {tok}", "X-Request-ID": req},
                "error": f"401 from ERP for job {job}; order {order}, batch {other}",
                "response_excerpt": f"invalid token={tok[:20]}xyz",
            },
        }
        pii += [tok, tok[:20] + "xyz"]
    elif kind == 4:
        pw = "".join(rng.choice("abcdefXYZ0123456789!#") for _ in range(14))
        rec = {
            "action": "security.sign_in_failed",
            "request_id": req,
            "payload": {
                "username": email,
                "password": pw,
                "message": f"giriş başarısız: user={email} password={pw} from job {job}",
                "client_ip": ip(),
                "sha256": sha,
                "order": order,
                "n": other,
            },
        }
        pii += [email, pw]
    elif kind == 5:
        tel1, tel2 = landline(), intl()
        rec = {
            "msg": f"Tedarikçi {name}, {address}, tel {tel1}, yurtdışı temsilci {tel2}, e-posta {email}; iş {job} ({order}) hash {sha} adet {other}",
            "req_id": req,
        }
        pii += [tel1, tel2, email]
    elif kind == 6:
        t = tckn()
        c = card()
        ib = iban()
        rec = {
            "action": "jobs.job.export",
            "payload": {
                "rows": [
                    {"musteri": name, "tc_kimlik_no": t, "iban": ib, "job_id": job},
                    {"memo": f"TCKN {t} / kart {c} / {ib}", "request_id": req},
                ],
                "checksum": sha,
                "order": order,
                "ref": other,
            },
        }
        pii += [t, c, ib, name]
    else:
        dsn = f"postgres://tezgah:{token()[:16]}@db.internal:5432/tezgah"
        secret = dsn.split(":")[2].split("@")[0]
        rec = {
            "msg": f"bağlantı hatası {dsn} job={job} req={req} sipariş {order} sayaç {other}",
            "level": "ERROR",
            "api_key": token(),
        }
        pii += [secret, rec["api_key"]]
    dumped = json.dumps(rec, ensure_ascii=False)
    keep = [k for k in keep if k in dumped]
    assert all(p in dumped for p in pii)
    out.append({"record": rec, "pii": pii, "keep": keep})
with open(sys.argv[1], "w", encoding="utf-8") as f:
    for row in out:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
print(len(out))
