"""Masking of personal data and secrets before anything leaves the process (SIEM records, log lines).

`mask(value)` walks dicts and lists; `mask_text(text)` masks one string. Rules (docs/siem.md):

- Fields named in ALLOWED_FIELDS pass as they are (ids, hashes, statuses, counts, times).
- Fields whose name says they hold a secret (password, token, secret, authorization, cookie, ...) or a person
  (name, address, phone, e-mail, IBAN, national id, ...) are replaced whole by their kind.
- Every other string goes through the detectors: secrets written as `key=value` / `Authorization: Bearer ...`,
  e-mail addresses, IBANs (ISO 13616 mod-97 check), card numbers (Luhn), TC Kimlik No (its two check digits,
  so a random 11-digit number is not masked), phone numbers (Turkish and international) and, with
  `mask_ips=True`, IPv4 and IPv6 addresses.
- UUIDs, long hex strings (sha256, request ids) are found first and never masked, so a detector cannot
  take a run of digits inside an id for a phone or card number.

Standard library only: core imports no other app, and the logging formatter runs it on every line.
"""

import functools
import ipaddress
import re

EMAIL = "[EMAIL]"
PHONE = "[PHONE]"
IBAN = "[IBAN]"
TCKN = "[TCKN]"
CARD = "[CARD]"
SECRET = "[SECRET]"
IP = "[IP]"
PERSONAL = "[PERSONAL]"

# Fields that pass unchanged: identifiers, hashes and bookkeeping that hold no personal data.
ALLOWED_FIELDS = frozenset(
    """
    id pk seq v version schema_ver event_id eid event action status state level svc host logger ts time
    created_at updated_at occurred_at sealed_at tree_size head_hash merkle_root chain_hash prev_hash
    record_sha256 payload_sha256 sha256 key_id signature tsa_token fingerprint retired request_id req_id
    trace_id span_id job_id job_uuid tenant tenant_id object_type object_id profile_id sync_id attempt
    attempts count suppressed direction kind reason_code http_status
    """.split()  # noqa: SIM905
)

# Fields replaced whole. Matched on the lower-cased name with `-` read as `_`; a name that contains one of
# SECRET_WORDS is a secret (api_token, x_api_key, client_secret ...).
SECRET_WORDS = ("password", "passwd", "secret", "token", "authorization", "cookie", "api_key", "apikey",
                "private_key", "otp", "totp", "session", "csrf", "credential", "bearer")  # fmt: skip
PERSONAL_FIELDS = frozenset(
    """
    name first_name last_name full_name ad soyad ad_soyad customer_name contact_name contact username address
    adres street sokak mahalle city_address postal_address billing_address shipping_address email e_mail
    eposta e_posta phone telefon mobile gsm tel iban tckn tc_kimlik tc_kimlik_no national_id identity_number
    birth_date dogum_tarihi card card_number pan musteri müşteri customer
    """.split()  # noqa: SIM905
)

# ---------------------------------------------------------------- ids that are never masked

_PROTECTED = re.compile(
    r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"  # UUID
    r"|\b[0-9a-fA-F]{32,}\b"  # uuid4().hex request ids, sha256/sha512 hex
    r"|(?<![\w+/])[A-Za-z0-9+/]{40,}={0,2}"  # base64 signatures and RFC 3161 tokens (checkpoint witnesses)
)

# ---------------------------------------------------------------- detectors

_AUTH_HEADER = re.compile(r"(?i)\b(authorization|proxy-authorization)(\s*[:=]\s*)(\"?)[^\r\n\",;}]+")
_BEARER = re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9._~+/=-]{8,}")
_KEY_VALUE = re.compile(
    r"(?i)\b([\w-]*(?:password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|sessionid|csrftoken|cookie)"
    r"[\w-]*)(\"?'?\s*[:=]\s*\"?'?)([^\s\"'&,;}\]]+)"
)
_URL_CREDENTIALS = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)([^\s/:@]+):([^\s/@]+)@")
_EMAIL_RE = re.compile(r"(?i)\b[a-z0-9._%+-]+@(?:[a-z0-9-]+\.)+[a-z]{2,}\b")
_IBAN_RE = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b")
_CARD_RE = re.compile(r"(?<![\w.-])\d(?:[ -]?\d){12,18}(?![\w-])")
_TCKN_RE = re.compile(r"(?<![\w.+-])[1-9]\d{10}(?![\w-])")
# Turkish: +90 / 0090 / 0 then a 3-digit area or mobile code, or a bare 10-digit mobile number (5xx).
_PHONE_TR = re.compile(
    r"(?<![\w+])(?:(?:\+|00)90[\s.-]?|0[\s.-]?)\(?[2-5]\d{2}\)?[\s.-]?\d{3}[\s.-]?\d{2}[\s.-]?\d{2}(?![\w-])"
    r"|(?<![\w+.-])\(?5\d{2}\)?[\s.-]?\d{3}[\s.-]?\d{2}[\s.-]?\d{2}(?![\w-])"
)
# International: + or 00, a country code, then 6 to 14 more digits in groups.
_PHONE_INTL = re.compile(r"(?<![\w+])(?:\+|00)[1-9]\d{0,2}(?:[\s.-]?\(?\d{1,4}\)?){2,5}(?![\w-])")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")
_IPV6 = re.compile(r"(?<![\w:])(?:[0-9a-fA-F]{0,4}:){2,7}[0-9a-fA-F]{0,4}(?![\w:])")


def iban_valid(text: str) -> bool:
    compact = text.replace(" ", "").upper()
    if not 15 <= len(compact) <= 34:
        return False
    moved = compact[4:] + compact[:4]
    digits = "".join(str(int(c, 36)) for c in moved)
    return int(digits) % 97 == 1


def luhn_valid(digits: str) -> bool:
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def tckn_valid(digits: str) -> bool:
    """The TC Kimlik No rule: 11 digits, no leading 0, and its 10th and 11th digits are check digits."""
    if len(digits) != 11 or not digits.isdigit() or digits[0] == "0":
        return False
    d = [int(c) for c in digits]
    if ((d[0] + d[2] + d[4] + d[6] + d[8]) * 7 - (d[1] + d[3] + d[5] + d[7])) % 10 != d[9]:
        return False
    return sum(d[:10]) % 10 == d[10]


def _sub_checked(pattern, text, label, check):
    def repl(match):
        return label if check(match.group(0)) else match.group(0)

    return pattern.sub(repl, text)


def _sub_prefix(pattern, text, label, check):
    """Like _sub_checked, but a match that fails its check is tried again shorter (a greedy match may have
    taken the next word or number too): the longest valid prefix is masked, the rest kept."""

    def repl(match):
        found = match.group(0)
        for end in range(len(found), 0, -1):
            if end < len(found) and found[end - 1] in " -":
                continue
            if check(found[:end]):
                return label + found[end:]
        return found

    return pattern.sub(repl, text)


def _card_valid(text: str) -> bool:
    digits = _digits(text)
    return 13 <= len(digits) <= 19 and luhn_valid(digits)


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _ip_valid(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


_SECRET_HINTS = ("auth", "bearer", "basic", "pass", "pwd", "secret", "token", "key", "session", "csrf", "cookie", "://")
_HAS_DIGIT = re.compile(r"\d")


def _mask_secrets(text: str) -> str:
    lower = text.lower()
    if not any(hint in lower for hint in _SECRET_HINTS):
        return text
    text = _URL_CREDENTIALS.sub(lambda m: f"{m.group(1)}{SECRET}@", text)
    text = _AUTH_HEADER.sub(lambda m: f"{m.group(1)}{m.group(2)}{m.group(3)}{SECRET}", text)
    text = _BEARER.sub(lambda m: f"{m.group(1)}{m.group(2)}{SECRET}", text)
    return _KEY_VALUE.sub(lambda m: f"{m.group(1)}{m.group(2)}{SECRET}", text)


def _mask_plain(text: str, mask_ips: bool) -> str:
    # Cheap tests first: most strings (names of actions, statuses, words) hold no digit and no @.
    if "@" in text:
        text = _EMAIL_RE.sub(EMAIL, text)
    if not _HAS_DIGIT.search(text):
        if mask_ips and ":" in text:
            text = _sub_checked(_IPV6, text, IP, lambda s: s.count(":") >= 2 and _ip_valid(s))
        return text
    text = _sub_prefix(_IBAN_RE, text, IBAN, iban_valid)
    text = _sub_prefix(_CARD_RE, text, CARD, _card_valid)
    text = _sub_checked(_TCKN_RE, text, TCKN, tckn_valid)
    text = _PHONE_TR.sub(PHONE, text)
    text = _sub_checked(_PHONE_INTL, text, PHONE, lambda s: 8 <= len(_digits(s)) <= 15)
    if mask_ips:
        text = _sub_checked(_IPV4, text, IP, _ip_valid)
        text = _sub_checked(_IPV6, text, IP, lambda s: s.count(":") >= 2 and _ip_valid(s))
    return text


def mask_text(text: str, *, mask_ips: bool = False) -> str:
    """`text` with every detected secret and piece of personal data replaced by its kind ([EMAIL], ...)."""
    if not text:
        return text
    # Secrets first, on the whole text: a token is often hex or base64, which the id rule below keeps.
    text = _mask_secrets(text)
    out, last = [], 0
    for match in _PROTECTED.finditer(text):
        out.append(_mask_plain(text[last : match.start()], mask_ips))
        out.append(match.group(0))
        last = match.end()
    out.append(_mask_plain(text[last:], mask_ips))
    return "".join(out)


@functools.lru_cache(maxsize=4096)
def _field_kind(name: str) -> str | None:
    key = name.lower().replace("-", "_")
    if key in ALLOWED_FIELDS:
        return "allowed"
    if any(word in key for word in SECRET_WORDS):
        return SECRET
    if key in PERSONAL_FIELDS or key.endswith(("_email", "_phone", "_iban", "_address", "_tckn")):
        return PERSONAL
    if key in ("ip", "client_ip", "remote_addr", "ip_address", "x_forwarded_for"):
        return "ip"
    return None


def mask(value, *, mask_ips: bool = False):
    """A copy of `value` (JSON-like: dicts, lists, strings, numbers) with personal data and secrets masked."""
    if isinstance(value, dict):
        result = {}
        for key, item in value.items():
            kind = _field_kind(str(key))
            if kind == "allowed":
                result[key] = item
            elif kind in (SECRET, PERSONAL):
                result[key] = kind if item not in (None, "", [], {}) else item
            elif kind == "ip":
                result[key] = IP if mask_ips and item else item
            else:
                result[key] = mask(item, mask_ips=mask_ips)
        return result
    if isinstance(value, list | tuple):
        return [mask(item, mask_ips=mask_ips) for item in value]
    if isinstance(value, str):
        return mask_text(value, mask_ips=mask_ips)
    if isinstance(value, int) and not isinstance(value, bool) and value >= 10**10:
        # A phone, card or national id stored as a number.
        masked = mask_text(str(value), mask_ips=mask_ips)
        return value if masked == str(value) else masked
    return value
