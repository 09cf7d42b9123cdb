"""Tezgah settings: one module, every knob an environment variable (README lists them all).

Secrets may come from files: `NAME_FILE=/run/secrets/name` is read instead of `NAME`.
A `.env` file in the project root is read when present (`make run` writes one); `TEZGAH_DOTENV` names
another file, or none when empty (the test suite sets it empty: config/pytest_environment.py).
"""

import os
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path

import csp.constants as _csp
import environ
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from apps.core.spreadsheet_safety import SafeCSV, SafeXLSX
from config.vault import VaultAwareMapping, VaultUnavailable

BASE_DIR = Path(__file__).resolve().parent.parent


class StrictEnv(environ.FileAwareEnv):
    """django-environ with `NAME_FILE` support that refuses values it cannot parse.

    issue 19: with VAULT_ADDR set, a variable neither set nor named by `NAME_FILE` comes from the Vault / OpenBao
    KV v2 secret VAULT_MOUNT/VAULT_PATH (config/vault.py); an unreadable Vault stops the start-up, loudly.
    """

    ENVIRON = VaultAwareMapping()

    def get_value(self, var, *args, **kwargs):
        try:
            return super().get_value(var, *args, **kwargs)
        except VaultUnavailable as exc:
            raise ImproperlyConfigured(f"{var}: {exc}") from None

    _TRUE = {"1", "true", "yes", "on"}
    _FALSE = {"0", "false", "no", "off", ""}

    def bool(self, var, default=environ.Env.NOTSET):
        raw = self.str(var, default=None)
        if raw is None:
            if default is environ.Env.NOTSET:
                raise ImproperlyConfigured(f"Set the {var} environment variable")
            return default
        value = raw.strip().lower()
        if value in self._TRUE:
            return True
        if value in self._FALSE:
            return False
        raise ImproperlyConfigured(f"{var}={raw!r} is not a boolean (use true/false, 1/0, yes/no, on/off)")

    def _number(self, var, default, cast, what):
        raw = self.str(var, default=None)
        if raw is None:
            if default is environ.Env.NOTSET:
                raise ImproperlyConfigured(f"Set the {var} environment variable")
            return default
        try:
            return cast(raw.strip())
        except ValueError:
            raise ImproperlyConfigured(f"{var}={raw!r} is not {what}") from None

    def int(self, var, default=environ.Env.NOTSET):
        return self._number(var, default, int, "a whole number")

    def float(self, var, default=environ.Env.NOTSET):
        return self._number(var, default, float, "a number")

    def seconds_list(self, var, default):
        """A comma-separated list of positive whole seconds, e.g. `5,15,45`."""
        raw = self.str(var, default=None)
        if raw is None:
            return list(default)
        try:
            values = [int(x) for x in raw.split(",") if x.strip()]
        except ValueError:
            raise ImproperlyConfigured(f"{var}={raw!r} is not a list of whole seconds like 5,15,45") from None
        if not values or any(v <= 0 for v in values):
            raise ImproperlyConfigured(f"{var}={raw!r} needs at least one positive number of seconds")
        return values


env = StrictEnv()
# Variables already in the environment win over the file's.
_DOTENV = env.str("TEZGAH_DOTENV", default=str(BASE_DIR / ".env"))
if _DOTENV and Path(_DOTENV).is_file():
    env.read_env(_DOTENV, overwrite=False)


# ---------------------------------------------------------------- GENERAL
DEBUG = env.bool("DJANGO_DEBUG", default=False)
VAR_DIR = Path(env.str("TEZGAH_VAR_DIR", default=str(BASE_DIR / "var")))
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("Set DJANGO_SECRET_KEY (or DJANGO_SECRET_KEY_FILE); `make run` writes one to .env")
    SECRET_KEY = "insecure-development-key-only-for-DEBUG"
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "apps.accounts.apps.TezgahAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_otp",
    "apps.core.vendor_apps.TotpConfig",
    "apps.core.vendor_apps.StaticConfig",
    # issue 14: passkeys / security keys (WebAuthn) as a second factor beside TOTP (apps/accounts/passkeys.py).
    "django_otp_webauthn",
    "guardian",
    "rest_framework",
    "apps.core.vendor_apps.KnoxConfig",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "apps.core.vendor_apps.ScheduledTasksConfig",
    "import_export",
    "csp",
    "apps.core",
    "apps.accounts",
    "apps.audit",
    "apps.catalog",
    "apps.jobs",
    "apps.billing",
    "apps.events",
    "apps.erp",
    "apps.reporting",
    "apps.security",
    "apps.siem",
    "apps.observability",
    # issue 14: sign-in lockout (django-axes; its failure counter is apps/security/lockout.py's).
    "axes",
    # issue 14: feature flags (django-waffle, with apps.flags' model: deterministic percentage buckets).
    "waffle",
    "apps.flags",
    "apps.governance",
    "apps.recon",
    # Above every other app: it seeds them all (`seed_demo`) and prints `make run`'s welcome.
    "apps.demo",
    # issue 19: compliance evidence packages (DESIGN.md's governance; see docs/architecture.md).
    "apps.compliance",
]

MIDDLEWARE = [
    "apps.core.middleware.RequestContextMiddleware",
    # issue 15: request count and latency per view and tenant; times every middleware below it.
    "apps.observability.middleware.RequestMetricsMiddleware",
    # issue 14: the IP allow/block lists, right after the client IP is known (one cache read).
    "apps.security.middleware.IPFilterMiddleware",
    "django.middleware.security.SecurityMiddleware",
    # issue 11: Content-Security-Policy on every page (nonces for the few inline blocks), and no-store on
    # authenticated and API answers; static files (WhiteNoise, below) keep their long cache.
    "csp.middleware.CSPMiddleware",
    "apps.core.middleware.NoStoreMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    # issue 14: a session's last activity for the session list (one UPDATE a minute per session).
    "apps.security.sessions.SessionActivityMiddleware",
    # issue 5: refused addresses never reach the admin login; login/upload throttles before the views.
    "apps.security.middleware.AdminIPAllowlistMiddleware",
    "apps.accounts.middleware.AdminMFAMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "apps.security.middleware.RateLimitMiddleware",
    # issue 14: the device cookie after a full sign-in (the lockout counts that browser's failures apart).
    "apps.security.middleware.DeviceCookieMiddleware",
    # issue 5: the lock answers before an Idempotency-Key is claimed, so a locked request stores nothing.
    "apps.core.incident_lock.IncidentLockMiddleware",
    "apps.core.idempotency.IdempotencyMiddleware",
    # issue 14: answers a request that locked its (username, address) pair with the lockout page or problem.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
            ],
        },
    },
]

# ---------------------------------------------------------------- DATABASES
DATABASES = {"default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'tezgah.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # web, worker and beat share one file: WAL and IMMEDIATE transactions avoid "database is locked".
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 30,
            "transaction_mode": "IMMEDIATE",
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if env.bool("DATABASE_PREPARED_STATEMENTS", default=True):
        # Parameters bound by the server and statements prepared after 5 uses per connection: PostgreSQL then
        # parses and plans a hot query once, not on every request (half its CPU on the ERP inbound path,
        # docs/benchmarks.md). Turn off behind a transaction-mode PgBouncer without max_prepared_statements.
        DATABASES["default"].setdefault("OPTIONS", {}).update(server_side_binding=True, prepare_threshold=5)

# ---------------------------------------------------------------- CACHES
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": REDIS_URL}}
else:
    # Throttle counters must be shared by every process on the machine, so not LocMem.
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }

# ---------------------------------------------------------------- SECURITY
AUTHENTICATION_BACKENDS = [
    # issue 14: first, so a locked-out (username, address) pair is refused before its password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=not DEBUG)
SECURE_HSTS_SECONDS = env.int("DJANGO_SECURE_HSTS_SECONDS", default=0 if DEBUG else 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = env.bool("DJANGO_SECURE_HSTS_PRELOAD", default=SECURE_HSTS_SECONDS > 0)
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https") if env.bool("DJANGO_BEHIND_TLS_PROXY", default=False) else None
)
SECURE_REDIRECT_EXEMPT = [r"^health/"]
SESSION_COOKIE_SECURE = env.bool("DJANGO_SESSION_COOKIE_SECURE", default=not DEBUG)
CSRF_COOKIE_SECURE = env.bool("DJANGO_CSRF_COOKIE_SECURE", default=not DEBUG)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = env.int("DJANGO_SESSION_COOKIE_AGE", default=8 * 3600)
X_FRAME_OPTIONS = "DENY"
# issue 11: Content-Security-Policy (django-csp). Scripts and style sheets only from our own origin (static
# files) or an element carrying the request's nonce (`nonce="{{ request.csp_nonce }}"`); inline style
# *attributes* are allowed (the admin's widgets, ECharts tooltips), inline event handlers and javascript:
# URLs are not. docs/architecture.md lists what this asks of templates.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [_csp.SELF],
        "script-src": [_csp.SELF, _csp.NONCE],
        "style-src": [_csp.SELF, _csp.NONCE],
        "style-src-elem": [_csp.SELF, _csp.NONCE],
        "style-src-attr": [_csp.UNSAFE_INLINE],
        "img-src": [_csp.SELF, "data:"],
        "font-src": [_csp.SELF, "data:"],
        "connect-src": [_csp.SELF],
        "object-src": [_csp.NONE],
        "base-uri": [_csp.SELF],
        "form-action": [_csp.SELF],
        "frame-ancestors": [_csp.NONE],
    }
}
# Addresses of reverse proxies whose X-Forwarded-For is believed (CIDR list); empty trusts none.
TRUSTED_PROXIES = env.list("TRUSTED_PROXIES", default=[])

# MFA (django-otp): every admin URL needs password + TOTP.
OTP_TOTP_ISSUER = env.str("ADMIN_MFA_ISSUER", default="Tezgah")
# Never show TOTP keys or backup codes in the admin after enrolment.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
MFA_BACKUP_CODE_COUNT = env.int("MFA_BACKUP_CODE_COUNT", default=10)
MFA_STEPUP_TTL_SECONDS = env.int("MFA_STEPUP_TTL_SECONDS", default=300)
# Seconds a password-checked login may wait for its TOTP code before it must start again.
MFA_PENDING_TTL_SECONDS = env.int("MFA_PENDING_TTL_SECONDS", default=300)
# Key ring for TOTP secrets (encrypted) and backup codes (keyed hashes) in the database: comma-separated
# urlsafe-base64 32-byte keys, the first one current (apps/accounts/otp_secrets.py). Required unless DEBUG.
OTP_ENCRYPTION_KEY = env.str("OTP_ENCRYPTION_KEY", default="")

# issue 14: passkeys (django-otp-webauthn). A passkey is bound to the relying party id, the host name the
# browser shows (never an IP address: `make run` users open http://localhost:8000/admin/ to use one).
# Changing the id orphans every registered passkey. Allowed origins are the exact scheme://host:port the
# browser reports; only https, or http on localhost, is accepted by the library's checks.
# Default: the first host name in DJANGO_ALLOWED_HOSTS (no IP address, no wildcard), so `localhost` in development.
_RP_ID_DEFAULT = next(
    (h.lstrip(".") for h in ALLOWED_HOSTS if h != "*" and not re.fullmatch(r"[\d.]+|\[.*\]", h.lstrip("."))),
    "localhost",
)
OTP_WEBAUTHN_RP_ID = env.str("WEBAUTHN_RP_ID", default=_RP_ID_DEFAULT)
OTP_WEBAUTHN_RP_NAME = env.str("WEBAUTHN_RP_NAME", default="Tezgah")
OTP_WEBAUTHN_ALLOWED_ORIGINS = env.list(
    "WEBAUTHN_ALLOWED_ORIGINS",
    default=["http://localhost:8000"] if OTP_WEBAUTHN_RP_ID == "localhost" else [f"https://{OTP_WEBAUTHN_RP_ID}"],
)
# Passkeys are a second factor here, after the password; never a way in on their own.
OTP_WEBAUTHN_ALLOW_PASSWORDLESS_LOGIN = False

# guardian: tenant scoping uses direct foreign-key object permission tables.
GUARDIAN_RAISE_403 = True
ANONYMOUS_USER_NAME = None

# ---------------------------------------------------------------- INTERNATIONALISATION
LANGUAGE_CODE = "tr"
LANGUAGES = [("tr", _("Turkish")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
USE_TZ = True
# Stored in UTC (USE_TZ); shown in Istanbul time.
TIME_ZONE = "Europe/Istanbul"

# ---------------------------------------------------------------- STATIC AND MEDIA
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("DJANGO_STATIC_ROOT", default=str(VAR_DIR / "static")))
STATICFILES_DIRS = [BASE_DIR / "static"]
MEDIA_ROOT = Path(env.str("DJANGO_MEDIA_ROOT", default=str(VAR_DIR / "media")))
MEDIA_URL = "media/"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if env.bool("DJANGO_STATIC_MANIFEST", default=not DEBUG)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG
# Front-end files from npm (package.json + package-lock.json, installed by `make install`): only these
# files of node_modules become static files (apps.reporting.staticfinders).
NPM_ROOT = Path(env.str("NPM_ROOT", default=str(BASE_DIR / "node_modules")))
NPM_STATIC_FILES = {
    "vendor/echarts/echarts.min.js": "echarts/dist/echarts.min.js",
    "vendor/echarts/langTR.js": "echarts/i18n/langTR.js",
}
STATICFILES_FINDERS = [
    "django.contrib.staticfiles.finders.FileSystemFinder",
    "django.contrib.staticfiles.finders.AppDirectoriesFinder",
    "apps.reporting.staticfinders.NpmFilesFinder",
]

# ---------------------------------------------------------------- API
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # issue 11: JSON nested too deeply is a 400 problem, not a RecursionError (apps/core/parsers.py).
    "DEFAULT_PARSER_CLASSES": [
        "apps.core.parsers.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_SCHEMA_CLASS": "apps.core.openapi.QualifiedNameAutoSchema",
    "EXCEPTION_HANDLER": "apps.core.problems.drf_exception_handler",
    "DEFAULT_THROTTLE_RATES": {
        "token": env.str("THROTTLE_TOKEN_RATE", default="5/min"),
        # issue 5/14: admin sign-in steps per (client IP, account) and, above that, per client IP: the ceiling is
        # sized for a shift change behind one NAT (50 people x 2 steps, with room for retries and enrolment);
        # file uploads (imports) per user, ERP inbound per profile.
        "login_user": env.str("THROTTLE_LOGIN_USER_RATE", default="10/min"),
        "login": env.str("THROTTLE_LOGIN_RATE", default="300/min"),
        "upload": env.str("THROTTLE_UPLOAD_RATE", default="30/hour"),
        "erp_inbound": env.str("THROTTLE_ERP_INBOUND_RATE", default="6000/min"),
    },
    "NUM_PROXIES": None,
    # `?format=` belongs to our endpoints (e.g. the forensic export's csv|json), not to DRF's renderers.
    "URL_FORMAT_OVERRIDE": None,
}
REST_KNOX = {
    "TOKEN_TTL": __import__("datetime").timedelta(hours=env.int("API_TOKEN_TTL_HOURS", default=10)),
    "AUTO_REFRESH": False,
    "TOKEN_LIMIT_PER_USER": env.int("API_TOKEN_LIMIT_PER_USER", default=5),
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Tezgah API",
    "DESCRIPTION": "Jobs, ERP/MES sync and reporting for a manufacturer's operations portal.",
    # Choice sets used by several fields or named alike in several apps get one stable component name each.
    "ENUM_NAME_OVERRIDES": {
        "RetentionDataClassEnum": "apps.governance.registry.CLASS_CHOICES",
        "LegalHoldScopeEnum": "apps.governance.models.HoldScope",
        "IpListScopeEnum": "apps.security.models.Scope",
    },
    "VERSION": "1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "COMPONENT_SPLIT_REQUEST": True,
    # Swagger UI served from our static files (drf-spectacular-sidecar), never from a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # issue 5: problem+json errors, Idempotency-Key and X-Request-Id documented on every endpoint.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "apps.core.openapi.add_shared_contract",
    ],
    # issue 5: the ERP's inbound bearer token (an integration profile's, or ERP_BEARER_TOKEN).
    "APPEND_COMPONENTS": {
        "securitySchemes": {
            "erpBearer": {"type": "http", "scheme": "bearer", "description": "Integration profile inbound token"}
        }
    },
}
API_PAGE_SIZE = env.int("API_PAGE_SIZE", default=50)
API_MAX_PAGE_SIZE = env.int("API_MAX_PAGE_SIZE", default=500)
# Problem type URIs are `urn:tezgah:problem:<slug>`; docs/api.md lists every slug.
PROBLEM_TYPE_PREFIX = "urn:tezgah:problem:"

# ---------------------------------------------------------------- AUDIT
# Ed25519 key that signs audit checkpoints (PEM, or base64 of the 32 raw bytes); keep it out of the
# database. With DEBUG and no key, one is generated under TEZGAH_VAR_DIR.
AUDIT_SIGNING_KEY = env.str("AUDIT_SIGNING_KEY", default="")
AUDIT_CHECKPOINT_EVERY = env.int("AUDIT_CHECKPOINT_EVERY", default=1000)
AUDIT_CHECKPOINT_MINUTES = env.int("AUDIT_CHECKPOINT_MINUTES", default=10)
# Database connections `verify_audit_chain` (and "verify now") checks chunks on at once (docs/audit.md).
AUDIT_VERIFY_CONNECTIONS = env.int("AUDIT_VERIFY_CONNECTIONS", default=2)
# RFC 3161 time-stamping authority for checkpoints (empty: none) and how long to wait for it.
AUDIT_TSA_URL = env.str("AUDIT_TSA_URL", default="")
AUDIT_TSA_TIMEOUT_SECONDS = env.int("AUDIT_TSA_TIMEOUT_SECONDS", default=10)
# The latest signed checkpoint, written by the sealer and read by verify_audit_chain, so a tail cut off the
# database (checkpoints included) still fails verification; keep a copy off this host. Empty: none.
AUDIT_WITNESS_FILE = env.str("AUDIT_WITNESS_FILE", default=str(VAR_DIR / "audit-witness.json"))


# ---------------------------------------------------------------- INCIDENT LOCK, IDEMPOTENCY, ADMIN ADDRESSES (issue 5)
def _cidr_list(name):
    import ipaddress

    values = env.list(name, default=[])
    for value in values:
        try:
            ipaddress.ip_network(value.strip(), strict=False)
        except ValueError:
            raise ImproperlyConfigured(f"{name}: {value!r} is not an address or CIDR network") from None
    return [v.strip() for v in values if v.strip()]


# Holds the incident lock on from boot (read-only mode) whatever the admin switch says.
INCIDENT_LOCK_ENABLED = env.bool("INCIDENT_LOCK_ENABLED", default=False)
# Emergency operations that still run while locked (docs/incident-lock.md lists the names).
INCIDENT_LOCK_EMERGENCY_OPS = env.list(
    "INCIDENT_LOCK_EMERGENCY_OPS",
    default=["incident_lock", "auth.token_revoke", "erp.rotate_keys", "accounts.unlock"],
)
if env.bool("INCIDENT_LOCK_ALLOW_ERP_INBOUND", default=False):
    INCIDENT_LOCK_EMERGENCY_OPS = [*INCIDENT_LOCK_EMERGENCY_OPS, "erp.inbound"]
# How long a stored Idempotency-Key answer is replayed, and after how long an unanswered claim is abandoned.
IDEMPOTENCY_KEY_TTL_SECONDS = env.int("IDEMPOTENCY_KEY_TTL_SECONDS", default=24 * 3600)
IDEMPOTENCY_CLAIM_TIMEOUT_SECONDS = env.int("IDEMPOTENCY_CLAIM_TIMEOUT_SECONDS", default=60)
# Seconds a process remembers which ERP profile and keys an inbound bearer token stands for (changes made
# through the app take effect at once; see apps/erp/inbound_services.py).
ERP_INBOUND_AUTH_CACHE_SECONDS = env.int("ERP_INBOUND_AUTH_CACHE_SECONDS", default=5)
# issue 11: how far a signed X-Signature-Timestamp may be from now (Standard Webhooks' five minutes).
ERP_INBOUND_SIGNATURE_TOLERANCE_SECONDS = env.int("ERP_INBOUND_SIGNATURE_TOLERANCE_SECONDS", default=300)
if ERP_INBOUND_SIGNATURE_TOLERANCE_SECONDS < 1:
    raise ImproperlyConfigured("ERP_INBOUND_SIGNATURE_TOLERANCE_SECONDS must be at least 1")
# issue 11: /metrics and the details of /internal/erp/health need this bearer token or one of these addresses.
INTERNAL_TOKEN = env.str("INTERNAL_TOKEN", default="")
INTERNAL_ALLOWED_IPS = _cidr_list("INTERNAL_ALLOWED_IPS")
# Every staff surface (/admin, /panel, the reports API, API tokens, /forensics; apps/security/middleware.py)
# only from these CIDRs (client IP by the TRUSTED_PROXIES rule); empty: no restriction.
ADMIN_IP_ALLOWLIST = _cidr_list("ADMIN_IP_ALLOWLIST")
# issue 11: one audit entry per refused address per this many seconds (all refusals are counted in /metrics).
ADMIN_IP_REFUSAL_AUDIT_SECONDS = env.int("ADMIN_IP_REFUSAL_AUDIT_SECONDS", default=300)


# ---------------------------------------------------------------- OUTBOUND CALLS (issue 11)
def _outbound_allowlist(name):
    """Hosts a guarded outbound call may reach although they are not public (apps/core/outbound_url.py)."""
    from apps.core.outbound_url import parse_entry

    values = [v.strip() for v in env.list(name, default=[]) if v.strip()]
    for value in values:
        try:
            parse_entry(value)
        except ValueError:
            raise ImproperlyConfigured(
                f"{name}: {value!r} is not a host name, IP address or CIDR network (optionally with :port)"
            ) from None
    return values


# Alert webhooks and ERP base URLs reach only public addresses, except the hosts listed here (names,
# addresses or CIDRs, each optionally with :port). `make run`'s .env allows the mock ERP on 127.0.0.1:8081.
ALERT_WEBHOOK_ALLOWED_HOSTS = _outbound_allowlist("ALERT_WEBHOOK_ALLOWED_HOSTS")
ERP_ALLOWED_HOSTS = _outbound_allowlist("ERP_ALLOWED_HOSTS")

# ---------------------------------------------------------------- EVENTS (transactional outbox)
# A relay holding an event for longer than this has died; the sweep takes the event over.
OUTBOX_CLAIM_SECONDS = env.int("OUTBOX_CLAIM_SECONDS", default=60)
OUTBOX_MAX_ATTEMPTS = env.int("OUTBOX_MAX_ATTEMPTS", default=10)
OUTBOX_RETRY_MAX_SECONDS = env.int("OUTBOX_RETRY_MAX_SECONDS", default=300)
OUTBOX_SWEEP_SECONDS = env.int("OUTBOX_SWEEP_SECONDS", default=5)

# ---------------------------------------------------------------- ERP / MES
# Defaults for tenants without an integration profile of their own (the admin's "ERP profiles" win).
ERP_BASE_URL = env.str("ERP_BASE_URL", default="")
ERP_SHARED_SECRET = env.str("ERP_SHARED_SECRET", default="")
ERP_BEARER_TOKEN = env.str("ERP_BEARER_TOKEN", default="")
ERP_IP_ALLOWLIST = env.list("ERP_IP_ALLOWLIST", default=[])
# Key ring defaults: outbound signs with CURRENT (else ERP_SHARED_SECRET); inbound accepts CURRENT and NEXT.
KEYRING_CURRENT = env.str("KEYRING_CURRENT", default="")
KEYRING_NEXT = env.str("KEYRING_NEXT", default="")
# Fernet key (urlsafe base64 of 32 bytes) that encrypts key-ring secrets stored in the database;
# empty derives one from DJANGO_SECRET_KEY.
ERP_KEYRING_ENCRYPTION_KEY = env.str("ERP_KEYRING_ENCRYPTION_KEY", default="")
ERP_CONNECT_TIMEOUT_SECONDS = env.float("ERP_CONNECT_TIMEOUT_SECONDS", default=3.0)
ERP_READ_TIMEOUT_SECONDS = env.float("ERP_READ_TIMEOUT_SECONDS", default=10.0)
# Seconds after the first attempt's failure to each retry (at most len() retries), and their jitter.
ERP_RETRY_SCHEDULE = env.seconds_list("ERP_RETRY_SCHEDULE", default=[5, 15, 45, 120, 300])
ERP_RETRY_JITTER = env.float("ERP_RETRY_JITTER", default=0.1)
# A Retry-After longer than the schedule's step is honoured up to this many seconds.
ERP_RETRY_AFTER_CAP_SECONDS = env.int("ERP_RETRY_AFTER_CAP_SECONDS", default=900)
# Circuit breaker: opens after this many consecutive transport failures, probes after the cool-down.
ERP_BREAKER_FAILURES = env.int("ERP_BREAKER_FAILURES", default=5)
ERP_BREAKER_COOLDOWN_SECONDS = env.int("ERP_BREAKER_COOLDOWN_SECONDS", default=30)
# Re-drive of DLQ entries an outage caused, once the breaker closes: at most this many per minute.
ERP_REDRIVE_PER_MINUTE = env.int("ERP_REDRIVE_PER_MINUTE", default=120)
# Reconciler: outbound rows unacknowledged this long are re-enqueued, at most ERP_RECONCILE_MAX times.
ERP_RECONCILE_AFTER_MINUTES = env.int("ERP_RECONCILE_AFTER_MINUTES", default=10)
ERP_RECONCILE_MAX = env.int("ERP_RECONCILE_MAX", default=3)
# Prometheus multi-process files (web, workers) live here; /metrics sums them.
PROMETHEUS_MULTIPROC_DIR = env.str("PROMETHEUS_MULTIPROC_DIR", default=str(VAR_DIR / "prometheus"))
# prometheus_client reads this when it is first imported, which is after settings.
os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", PROMETHEUS_MULTIPROC_DIR)
Path(PROMETHEUS_MULTIPROC_DIR).mkdir(parents=True, exist_ok=True)
# ---------------------------------------------------------------- REPORTING
# Summary, key figures, breakdowns and trend from the trigger-kept rollups (docs/reporting.md); false: scan
# jobs_job as before (same numbers, slower; bench_reporting's "before" runs).
REPORTING_ROLLUP = env.bool("REPORTING_ROLLUP", default=True)
# Seconds a signed export download link stays valid.
EXPORT_SIGNED_URL_TTL = env.int("EXPORT_SIGNED_URL_TTL", default=900)
# Where export files go: the "exports" storage. Default: the filesystem under DJANGO_MEDIA_ROOT/exports;
# with EXPORT_S3_BUCKET set, S3 or an S3-compatible store such as MinIO (django-storages).
EXPORT_S3_BUCKET = env.str("EXPORT_S3_BUCKET", default="")
if EXPORT_S3_BUCKET:
    STORAGES["exports"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": EXPORT_S3_BUCKET,
            "endpoint_url": env.str("EXPORT_S3_ENDPOINT_URL", default="") or None,
            "region_name": env.str("EXPORT_S3_REGION", default="") or None,
            "access_key": env.str("EXPORT_S3_ACCESS_KEY_ID", default="") or None,
            "secret_key": env.str("EXPORT_S3_SECRET_ACCESS_KEY", default="") or None,
            "default_acl": None,
            # Files are served through our signed links only, never by a public or presigned S3 URL.
            "querystring_auth": True,
            "file_overwrite": False,
        },
    }
else:
    STORAGES["exports"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT / "exports"), "base_url": None},
    }
# Where an admin upload's bytes wait for the worker that loads them (deleted once loaded); web and worker
# must share it (one host, or a shared volume).
STORAGES["recon_uploads"] = {
    "BACKEND": "django.core.files.storage.FileSystemStorage",
    "OPTIONS": {
        "location": env.str("RECON_UPLOAD_DIR", default=str(MEDIA_ROOT / "recon-uploads")),
        "base_url": None,
        "file_permissions_mode": 0o600,
    },
}
# Seconds to wait for an alert webhook to answer.
ALERT_WEBHOOK_TIMEOUT_SECONDS = env.int("ALERT_WEBHOOK_TIMEOUT_SECONDS", default=5)
# Sender of alert e-mails (and Django's other mail); the backend is Django's (EMAIL_BACKEND and EMAIL_* below).
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="tezgah@localhost")
EMAIL_HOST = env.str("EMAIL_HOST", default="")
# No SMTP server named: mail goes to files under var/mail/ (one .log file per connection), where a user of
# the zero-setup `make run` can read the first alert, instead of "Connection refused" from localhost:25.
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.smtp.EmailBackend"
    if EMAIL_HOST
    else "django.core.mail.backends.filebased.EmailBackend",
)
EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", default=str(VAR_DIR / "mail"))
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)

# ---------------------------------------------------------------- DEMO
# Password `seed_demo` gives the demo users (`make run`); never used outside demo data.
DEMO_PASSWORD = env.str("DEMO_PASSWORD", default="tezgah-demo-2026")

# ---------------------------------------------------------------- ADMIN
# Changelists count at most this many rows; beyond it they say "more than N".
ADMIN_COUNT_LIMIT = env.int("ADMIN_COUNT_LIMIT", default=10000)
IMPORT_EXPORT_USE_TRANSACTIONS = True
IMPORT_EXPORT_SKIP_ADMIN_LOG = False
IMPORT_EXPORT_IMPORT_PERMISSION_CODE = "import"
IMPORT_EXPORT_EXPORT_PERMISSION_CODE = "export"
# The library's own escaping only strips "="; apps.core.spreadsheet_safety quotes every formula trigger.
IMPORT_EXPORT_ESCAPE_FORMULAE_ON_EXPORT = False
IMPORT_EXPORT_ESCAPE_ILLEGAL_CHARS_ON_EXPORT = True
IMPORT_EXPORT_FORMATS = [SafeCSV, SafeXLSX]

# ---------------------------------------------------------------- CELERY
# "localhost" only so that kombu does not warn "No hostname was supplied" in every process: the
# filesystem transport ignores it.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://localhost/")
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The zero-setup broker: a folder every local process shares, so no Redis or RabbitMQ is needed.
    _broker_dir = VAR_DIR / "broker"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir / "out"),
        "data_folder_out": str(_broker_dir / "out"),
        "processed_folder": str(_broker_dir / "processed"),
        "control_folder": str(_broker_dir / "control"),
        "store_processed": False,
    }
    for _sub in ("out", "processed", "control"):
        (_broker_dir / _sub).mkdir(parents=True, exist_ok=True)
# Celery logs through LOGGING below (config/celery.py), so worker, beat and web write the same JSON lines.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Celery's Django fixup closes the database connection around every task unless told otherwise; a
# reconnect per task cost more than the task itself (docs/benchmarks.md). Django's CONN_MAX_AGE and
# health checks still retire old or broken connections.
CELERY_DB_REUSE_MAX = env.int("CELERY_DB_REUSE_MAX", default=1000)
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "UTC"
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
CELERY_BEAT_SCHEDULE = {
    "expire-licenses": {"task": "apps.billing.tasks.expire_licenses", "schedule": 3600.0},
    "seal-audit-log": {"task": "apps.audit.tasks.seal_audit_log", "schedule": 5.0},
    "audit-checkpoint": {"task": "apps.audit.tasks.checkpoint_audit_log", "schedule": 60.0},
    "expire-idempotency-keys": {
        "task": "apps.core.tasks.expire_idempotency_keys",
        "schedule": float(env.int("IDEMPOTENCY_EXPIRY_INTERVAL_SECONDS", default=3600)),
    },
    "relay-outbox": {"task": "apps.events.tasks.relay_outbox", "schedule": float(OUTBOX_SWEEP_SECONDS)},
    "erp-deliver-due": {"task": "apps.erp.tasks.deliver_due", "schedule": float(OUTBOX_SWEEP_SECONDS)},
    "erp-reconcile": {"task": "apps.erp.tasks.reconcile_outbound", "schedule": 300.0},
    "erp-redrive": {"task": "apps.erp.tasks.redrive_after_outage", "schedule": 60.0},
    "evaluate-alert-rules": {"task": "apps.reporting.tasks.evaluate_alert_rules", "schedule": 60.0},
}

# ---------------------------------------------------------------- ACCOUNT AND NETWORK SECURITY (issue 14)
# Sign-in lockout (django-axes, apps/security/lockout.py): failures per (username, client IP) over every sign-in
# step; then LOCKOUT_DURATION_MINUTES, doubled for each earlier lockout of the pair in 24 h (at most
# LOCKOUT_MAX_MINUTES); LOCKOUT_IP_BLOCK_AFTER lockouts from one address in 24 h block it for IP_AUTO_BLOCK_HOURS.
MAX_LOGIN_ATTEMPTS = env.int("MAX_LOGIN_ATTEMPTS", default=5)
LOCKOUT_DURATION_MINUTES = env.int("LOCKOUT_DURATION_MINUTES", default=15)
LOCKOUT_MAX_MINUTES = env.int("LOCKOUT_MAX_MINUTES", default=24 * 60)
LOCKOUT_IP_BLOCK_AFTER = env.int("LOCKOUT_IP_BLOCK_AFTER", default=3)
IP_AUTO_BLOCK_HOURS = env.int("IP_AUTO_BLOCK_HOURS", default=24)
AXES_ENABLED = env.bool("AXES_ENABLED", default=True)
AXES_FAILURE_LIMIT = MAX_LOGIN_ATTEMPTS
# Stated, not axes' lazy default (the custom User signs in by username), so the settings compare equal across processes.
AXES_USERNAME_FORM_FIELD = "username"
# (username, device) for a browser with its valid device cookie, else (username, address): lockout.py.
AXES_LOCKOUT_PARAMETERS = "apps.security.lockout.lockout_parameters"
AXES_HANDLER = "apps.security.lockout.TezgahAxesHandler"
AXES_COOLOFF_TIME = "apps.security.lockout.cool_off"
AXES_CLIENT_IP_CALLABLE = "apps.security.lockout.axes_client_ip"
AXES_LOCKOUT_CALLABLE = "apps.security.lockout.lockout_response"
AXES_RESET_ON_SUCCESS = True
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
AXES_DISABLE_ACCESS_LOG = True
AXES_ENABLE_ADMIN = False
AXES_VERBOSE = False
AXES_SENSITIVE_PARAMETERS = ["password", "token", "confirm_code"]
# Device cookie (OWASP "device cookies"): a signed, HttpOnly cookie given after a full sign-in; the failures of a
# browser that carries a valid one for the username count against (username, device), not the shared address.
DEVICE_COOKIE_NAME = env.str("DEVICE_COOKIE_NAME", default="tezgah_device")
DEVICE_COOKIE_DAYS = env.int("DEVICE_COOKIE_DAYS", default=180)
DEVICE_COOKIE_SECURE = env.bool("DEVICE_COOKIE_SECURE", default=not DEBUG)
# IP lists (apps/security/iplists.py): "blacklist" (block entries apply) or "whitelist" (only allowed addresses
# pass, on a scope that has allow entries); each process re-reads them at least this often (changes apply at once).
IP_FILTER_MODE = env.str("IP_FILTER_MODE", default="blacklist")
if IP_FILTER_MODE not in ("blacklist", "whitelist"):
    raise ImproperlyConfigured("IP_FILTER_MODE must be blacklist or whitelist")
IP_LISTS_CACHE_SECONDS = env.int("IP_LISTS_CACHE_SECONDS", default=300)
# Break-glass bypass of ADMIN_IP_ALLOWLIST: at most this long per approved request.
BREAK_GLASS_MAX_MINUTES = env.int("BREAK_GLASS_MAX_MINUTES", default=120)
# Sessions: signing in beyond this many live sessions ends the oldest (0: no cap); per role as "role=n,...".
MAX_CONCURRENT_SESSIONS = env.int("MAX_CONCURRENT_SESSIONS", default=5)
MAX_CONCURRENT_SESSIONS_PER_ROLE = {
    name.strip(): int(value)
    for name, _sep, value in (item.partition("=") for item in env.list("MAX_CONCURRENT_SESSIONS_PER_ROLE", default=[]))
    if name.strip()
}
# Feature flags (apps/flags): waffle's model and cache; a flag change is seen by every process at once (the
# cached entries are deleted), an unchanged flag is re-read from the database every FEATURE_FLAGS_CACHE_TTL s.
FEATURE_FLAGS_CACHE_TTL = env.int("FEATURE_FLAGS_CACHE_TTL", default=60)
CACHES["flags"] = {**CACHES["default"], "TIMEOUT": FEATURE_FLAGS_CACHE_TTL, "KEY_PREFIX": "flags"}
WAFFLE_FLAG_MODEL = "flags.FeatureFlag"
WAFFLE_CACHE_NAME = "flags"
WAFFLE_ENABLE_ADMIN_PAGES = False
WAFFLE_FLAG_DEFAULT = False
CELERY_BEAT_SCHEDULE["security-purge-ip-lists"] = {
    "task": "apps.security.tasks.purge_expired_ip_entries",
    "schedule": 3600.0,
}

# ---------------------------------------------------------------- LOGGING
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"request_context": {"()": "apps.core.logging.RequestContextFilter"}},
    "formatters": {"json": {"()": "apps.core.logging.JsonFormatter"}},
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "json", "filters": ["request_context"]},
    },
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}


# ---------------------------------------------------------------- SIEM FEED (issue 15; docs/siem.md)
# Where audit entries and signed checkpoints are shipped: tls://host:port (RFC 5425) or tcp://host:port; empty: off.
SIEM_ENDPOINT = env.str("SIEM_ENDPOINT", default="")
if SIEM_ENDPOINT and not re.fullmatch(r"(tcp|tls)://(\[[0-9a-fA-F:.]+\]|[^/:\s\[\]]+):\d{1,5}/?", SIEM_ENDPOINT):
    raise ImproperlyConfigured("SIEM_ENDPOINT must look like tls://siem.example.com:6514 or tcp://host:514")
# A SIEM on a loopback or private address is refused unless its host or network is listed (outbound guard).
SIEM_ALLOWED_HOSTS = _outbound_allowlist("SIEM_ALLOWED_HOSTS")
# CA bundle the SIEM's certificate is checked against (empty: the system's CAs); optional client certificate.
SIEM_CA_FILE = env.str("SIEM_CA_FILE", default="")
SIEM_CLIENT_CERT_FILE = env.str("SIEM_CLIENT_CERT_FILE", default="")
SIEM_CLIENT_KEY_FILE = env.str("SIEM_CLIENT_KEY_FILE", default="")
SIEM_TIMEOUT_SECONDS = env.float("SIEM_TIMEOUT_SECONDS", default=5.0)
# At most this long a TLS connection waits after the handshake for the SIEM to refuse the client (docs/siem.md).
SIEM_TLS_SETTLE_SECONDS = env.float("SIEM_TLS_SETTLE_SECONDS", default=0.5)
SIEM_BATCH_SIZE = env.int("SIEM_BATCH_SIZE", default=1000)
# How often the beat task sends what waits; how long and how much one run (one connection) may go on sending.
SIEM_SHIP_SECONDS = env.float("SIEM_SHIP_SECONDS", default=5.0)
SIEM_SHIP_MAX_SECONDS = env.float("SIEM_SHIP_MAX_SECONDS", default=20.0)
SIEM_SHIP_MAX_RECORDS = env.int("SIEM_SHIP_MAX_RECORDS", default=50000)
SIEM_BREAKER_FAILURES = env.int("SIEM_BREAKER_FAILURES", default=3)
SIEM_BREAKER_COOLDOWN_SECONDS = env.float("SIEM_BREAKER_COOLDOWN_SECONDS", default=30.0)
# Personal data and secrets are masked before egress (on by default); client IPs too when SIEM_MASK_IPS is true.
SIEM_MASK_PII = env.bool("SIEM_MASK_PII", default=True)
SIEM_MASK_IPS = env.bool("SIEM_MASK_IPS", default=False)
# The application's own JSON log lines go through the same masker.
LOG_MASK_PII = env.bool("LOG_MASK_PII", default=True)
SIEM_APP_NAME = env.str("SIEM_APP_NAME", default="tezgah")
SIEM_HOSTNAME = env.str("SIEM_HOSTNAME", default="")  # empty: the machine's host name
SIEM_FACILITY = env.int("SIEM_FACILITY", default=13)  # 13: log audit
SIEM_SD_ID = env.str("SIEM_SD_ID", default="tezgah@32473")  # 32473: RFC 5612's example enterprise number
CELERY_BEAT_SCHEDULE["ship-siem"] = {"task": "apps.siem.tasks.ship_siem", "schedule": SIEM_SHIP_SECONDS}
# For a Fluent Bit sidecar (deploy/fluent-bit/): also write the JSON log lines to this file.
LOG_FILE = env.str("LOG_FILE", default="")
if LOG_FILE:
    LOGGING["handlers"]["file"] = {
        "class": "logging.handlers.WatchedFileHandler", "filename": LOG_FILE, "formatter": "json",
        "filters": ["request_context"],
    }  # fmt: skip
    LOGGING["root"]["handlers"].append("file")
# ---------------------------------------------------------------- OBSERVABILITY (issue 15)
# Request count and latency per view and tenant on /metrics; off removes the middleware.
OBSERVABILITY_REQUEST_METRICS = env.bool("OBSERVABILITY_REQUEST_METRICS", default=True)
# Stored per-tenant request statistics (the SLA source): on/off, bucket size, flush interval, retention.
OBSERVABILITY_REQUEST_STATS = env.bool("OBSERVABILITY_REQUEST_STATS", default=True)
OBSERVABILITY_STATS_BUCKET_SECONDS = env.int("OBSERVABILITY_STATS_BUCKET_SECONDS", default=300)
if OBSERVABILITY_STATS_BUCKET_SECONDS <= 0 or 86400 % OBSERVABILITY_STATS_BUCKET_SECONDS:
    raise ImproperlyConfigured("OBSERVABILITY_STATS_BUCKET_SECONDS must divide a day (60, 300, 900, 3600, ...)")
OBSERVABILITY_STATS_FLUSH_SECONDS = env.float("OBSERVABILITY_STATS_FLUSH_SECONDS", default=10.0)
OBSERVABILITY_STATS_RETENTION_DAYS = env.int("OBSERVABILITY_STATS_RETENTION_DAYS", default=400)
# Distinct tenant label values per process on /metrics; later tenants are counted as "other".
OBSERVABILITY_TENANT_LABEL_LIMIT = env.int("OBSERVABILITY_TENANT_LABEL_LIMIT", default=100)
# /readyz: seconds each dependency may take; SIEM backlog age above which it reports "warn".
OBSERVABILITY_READYZ_TIMEOUT_SECONDS = env.float("OBSERVABILITY_READYZ_TIMEOUT_SECONDS", default=2.0)
OBSERVABILITY_READYZ_SIEM_MAX_AGE_SECONDS = env.int("OBSERVABILITY_READYZ_SIEM_MAX_AGE_SECONDS", default=900)
# OpenTelemetry: Django is instrumented and spans exported over OTLP/HTTP only when the endpoint is set
# (the exporter reads the other standard OTEL_EXPORTER_OTLP_* variables itself).
OTEL_EXPORTER_OTLP_ENDPOINT = env.str("OTEL_EXPORTER_OTLP_ENDPOINT", default="")
OTEL_SERVICE_NAME = env.str("OTEL_SERVICE_NAME", default="tezgah")
CELERY_BEAT_SCHEDULE["purge-request-stats"] = {
    "task": "apps.observability.tasks.purge_request_stats",
    "schedule": 86400.0,
}
# ---------------------------------------------------------------- ERP DELIVERY (issue 13)
# Batch delivery (apps/erp/delivery.py, docs/erp.md): messages claimed per round, sending threads per worker,
# how long one wake-up task may loop before it hands over to a fresh one.
ERP_DELIVERY_BATCH = env.int("ERP_DELIVERY_BATCH", default=200)
ERP_DELIVERY_THREADS = env.int("ERP_DELIVERY_THREADS", default=8)
ERP_PUMP_SECONDS = env.float("ERP_PUMP_SECONDS", default=10.0)
# Rounds of follow-up delivery the outbox relay runs after sending what it handed on (apps/erp/delivery.py).
ERP_FOLLOW_UP_ROUNDS = env.int("ERP_FOLLOW_UP_ROUNDS", default=2)
OUTBOX_RELAY_BATCH = env.int("OUTBOX_RELAY_BATCH", default=200)
OUTBOX_PUMP_SECONDS = env.float("OUTBOX_PUMP_SECONDS", default=10.0)
# A commit wakes a relay at most once per ENQUEUE_KICK_TTL_SECONDS while one is pending (apps/events/kick.py);
# after a failed publish no publish is tried for ENQUEUE_BROKER_BACKOFF_SECONDS (the sweep delivers).
ENQUEUE_KICK_TTL_SECONDS = env.int("ENQUEUE_KICK_TTL_SECONDS", default=2)
ENQUEUE_BROKER_BACKOFF_SECONDS = env.float("ENQUEUE_BROKER_BACKOFF_SECONDS", default=5.0)
# A publish from a commit must fail fast when the broker is unreachable (no publish retries on that path).
CELERY_BROKER_CONNECTION_TIMEOUT = env.float("CELERY_BROKER_CONNECTION_TIMEOUT", default=1.0)
if CELERY_BROKER_URL.startswith("filesystem://"):
    # The zero-setup broker polls its folder; kombu's default second was the default set-up's latency.
    CELERY_BROKER_TRANSPORT_OPTIONS["polling_interval"] = env.float("CELERY_BROKER_POLL_SECONDS", default=0.1)
elif CELERY_BROKER_URL.startswith(("redis://", "rediss://")):
    # kombu retries a failed connect once after 2 s by default: a publish then blocked the commit 2 s.
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "socket_connect_timeout": CELERY_BROKER_CONNECTION_TIMEOUT,
        "max_retries": 1,
        "interval_start": 0,
        "interval_step": 0.2,
        "interval_max": 0.5,
    }
# ---------------------------------------------------------------- RECON (issue 18)
# Folders under which a profile's versioned config may name drop folders that beat polls (comma-separated).
ERP_DROP_DIRS = env.list("ERP_DROP_DIRS", default=[])
RECON_DROP_POLL_SECONDS = env.int("RECON_DROP_POLL_SECONDS", default=60)
RECON_SUPPRESSION_SWEEP_SECONDS = env.int("RECON_SUPPRESSION_SWEEP_SECONDS", default=300)
# Largest ERP export accepted by upload (admin and API), in bytes.
RECON_MAX_FILE_BYTES = env.int("RECON_MAX_FILE_BYTES", default=200 * 1024 * 1024)
# An open break older than this many days is past its SLA (the break queue's age buckets say which are).
RECON_SLA_DAYS = env.int("RECON_SLA_DAYS", default=7)
# PostgreSQL work_mem for a run's comparison (its transaction only); empty keeps the server's.
RECON_WORK_MEM = env.str("RECON_WORK_MEM", default="64MB")
CELERY_BEAT_SCHEDULE["recon-poll-drop-folders"] = {
    "task": "apps.recon.tasks.poll_drop_folders",
    "schedule": float(RECON_DROP_POLL_SECONDS),
}
CELERY_BEAT_SCHEDULE["recon-expire-suppressions"] = {
    "task": "apps.recon.tasks.expire_suppressions",
    "schedule": float(RECON_SUPPRESSION_SWEEP_SECONDS),
}

# ---------------------------------------------------------------- BILLING: USAGE, PRICING, INVOICES (issue 19)
# Currency of a report with no pricing version yet; versions say their own (TRY, EUR or USD).
BILLING_DEFAULT_CURRENCY = env.str("BILLING_DEFAULT_CURRENCY", default="TRY")
if BILLING_DEFAULT_CURRENCY not in ("TRY", "EUR", "USD"):
    raise ImproperlyConfigured(f"BILLING_DEFAULT_CURRENCY={BILLING_DEFAULT_CURRENCY!r}: use TRY, EUR or USD")
# Tax on usage invoices (KDV), as a fraction.
try:
    BILLING_TAX_RATE = Decimal(env.str("BILLING_TAX_RATE", default="0.20"))
except InvalidOperation:
    raise ImproperlyConfigured("BILLING_TAX_RATE is not a decimal fraction like 0.20") from None
# Days of a month that pass before last month's usage invoices are drafted (late events still arrive).
BILLING_GRACE_DAYS = env.int("BILLING_GRACE_DAYS", default=3)
# An invoice covers the events recorded up to this many seconds before it was drafted (open transactions settle).
BILLING_CUTOFF_SETTLE_SECONDS = env.int("BILLING_CUTOFF_SETTLE_SECONDS", default=60)
# The API call counter of each process is written as usage events after this many seconds or calls.
BILLING_API_FLUSH_SECONDS = env.int("BILLING_API_FLUSH_SECONDS", default=30)
BILLING_API_FLUSH_CALLS = env.int("BILLING_API_FLUSH_CALLS", default=1000)
BILLING_PRICING_FILE = env.str("BILLING_PRICING_FILE", default=str(BASE_DIR / "configs" / "pricing.yaml"))
MIDDLEWARE.append("apps.billing.metering.UsageMeteringMiddleware")
CELERY_BEAT_SCHEDULE["billing-draft-usage-invoices"] = {
    "task": "apps.billing.tasks.draft_monthly_invoices",
    "schedule": 3600.0,
}

# ---------------------------------------------------------------- COMPLIANCE EVIDENCE (issue 19)
# Framework content (controls, Statement of Applicability, mappings, records of processing) as YAML files.
COMPLIANCE_CONTENT_DIR = env.str("COMPLIANCE_CONTENT_DIR", default=str(BASE_DIR / "configs" / "compliance"))
# Where generated evidence zips are written.
COMPLIANCE_PACKAGE_DIR = env.str("COMPLIANCE_PACKAGE_DIR", default=str(VAR_DIR / "compliance"))
# An ERP profile's current key older than this is flagged in the key-rotation evidence.
COMPLIANCE_KEY_MAX_AGE_DAYS = env.int("COMPLIANCE_KEY_MAX_AGE_DAYS", default=90)
# Backups are the operator's (pg_dump, volume snapshots); declare them here so the evidence can state them.
COMPLIANCE_BACKUP_SCHEDULE = env.str("COMPLIANCE_BACKUP_SCHEDULE", default="")
COMPLIANCE_BACKUP_RETENTION_DAYS = env.int("COMPLIANCE_BACKUP_RETENTION_DAYS", default=0)
COMPLIANCE_BACKUP_LOCATION = env.str("COMPLIANCE_BACKUP_LOCATION", default="")

# ---------------------------------------------------------------- SECRETS FROM VAULT (issue 19)
# Read by config/vault.py when the first variable is missing from the environment; listed here so they are
# documented settings too (and the test suite's isolation clears them). Empty VAULT_ADDR: no Vault.
VAULT_ADDR = env.str("VAULT_ADDR", default="")
VAULT_MOUNT = env.str("VAULT_MOUNT", default="secret")
VAULT_PATH = env.str("VAULT_PATH", default="tezgah")
VAULT_NAMESPACE = env.str("VAULT_NAMESPACE", default="")
VAULT_CACERT = env.str("VAULT_CACERT", default="")
VAULT_TIMEOUT_SECONDS = env.float("VAULT_TIMEOUT_SECONDS", default=5.0)
# Whether a token is set (VAULT_TOKEN or VAULT_TOKEN_FILE); the token itself is not kept in settings.
VAULT_TOKEN_SET = bool(env.str("VAULT_TOKEN", default=""))

VAR_DIR.mkdir(parents=True, exist_ok=True)
STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# ---------------------------------------------------------------- GOVERNANCE (issue 17)
# Retention by beat, legal holds, data subject requests (docs/governance.md).
DATA_GOVERNANCE_ENABLED = env.bool("DATA_GOVERNANCE_ENABLED", default=True)
# Data subject requests (GDPR) may be created and processed, and personal values in new audit payloads are
# encrypted under per-subject keys (crypto-shredding: erasure destroys the key).
GDPR_COMPLIANCE_MODE = env.bool("GDPR_COMPLIANCE_MODE", default=True)
# Payload keys whose values are personal (at any depth of an audit payload), comma-separated.
AUDIT_PERSONAL_PAYLOAD_KEYS = env.list(
    "AUDIT_PERSONAL_PAYLOAD_KEYS",
    default=["email", "username", "first_name", "last_name", "full_name", "phone", "repr"],
)
# Wraps the per-subject audit keys; keep it out of the database and its backups (default: derived from
# DJANGO_SECRET_KEY).
AUDIT_SUBJECT_KEY_SECRET = env.str("AUDIT_SUBJECT_KEY_SECRET", default="")
# Default retention of data classes without a default of their own (the policy rows are edited in the admin).
DEFAULT_RETENTION_DAYS = env.int("DEFAULT_RETENTION_DAYS", default=365)
# The audit trail's default retention: 7 years.
AUDIT_RETENTION_DAYS = env.int("AUDIT_RETENTION_DAYS", default=7 * 365)
# Rows deleted (and archived) per transaction.
GOVERNANCE_RETENTION_BATCH = env.int("GOVERNANCE_RETENTION_BATCH", default=5000)
# Seconds between beat runs of retention.
GOVERNANCE_RETENTION_INTERVAL_SECONDS = env.int("GOVERNANCE_RETENTION_INTERVAL_SECONDS", default=3600)
CELERY_BEAT_SCHEDULE["governance-apply-retention"] = {
    "task": "apps.governance.tasks.apply_retention",
    "schedule": float(GOVERNANCE_RETENTION_INTERVAL_SECONDS),
}
