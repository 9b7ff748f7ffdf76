"""Settings from the environment, with safe embedded defaults for a laptop.

DEBUG is off unless asked for, and with it off the app refuses to start without SECRET_KEY and
UNIONHOME_PII_KEY, or on any development part (SMS backend, SMS inbox, test hasher). Production:
SECRET_KEY, ALLOWED_HOSTS, DATABASE_URL (PostgreSQL), UNIONHOME_PII_KEY, the SMS gateway's keys,
UNIONHOME_TRUSTED_PROXIES behind a reverse proxy, UNIONHOME_HTTPS (default on when DEBUG is off).
"""

import os
from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("UNIONHOME_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)


def env_bool(name: str, default: bool) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


# Unset means safe: debug off. scripts/run.sh turns it on for the demo, config/test_settings for tests.
DEBUG = env_bool("DEBUG", False)
_DEV_SECRET = "dev-only-insecure-secret-key-do-not-use-in-production-0123456789"
SECRET_KEY = os.environ.get("SECRET_KEY", _DEV_SECRET if DEBUG else "")
ALLOWED_HOSTS = [h for h in os.environ.get("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("CSRF_TRUSTED_ORIGINS", "").split(",") if o]

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django_tasks_db",
    "ninja",  # serves its Swagger UI from our static files, not a CDN
    "treebeard",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "core",
    "orgs",
    "accounts",
    "members",
    "points",
    "rewards",
    "votes",
    "elections",
    "notifications",
    "clubs",
    "activities",
    "live",
    "demo",
    "api",
    "ends.portal",
    "ends.member",
    "ends.cadre",
    "ends.console",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "core.nulbytes.RejectNulMiddleware",  # U+0000 anywhere in a query or a text body: 400
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",  # request.user.is_verified() for the console's second factor
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "core.idempotency.IdempotencyMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "core.context.site",
            ],
        },
    }
]

# --- Database: SQLite embedded by default, tuned for parallel writers; PostgreSQL by URL.
# Every SQLite database, named by SQLITE_PATH or by a sqlite:/// DATABASE_URL, gets the same tuned
# engine: a URL used to give Django's plain backend, which under a rush answered 500s ("database is
# locked") and could not run the ballot's immediate() transaction.
SQLITE_OPTIONS = {
    # A rush waits its turn instead of failing with "database is locked".
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    "init_command": (
        "PRAGMA journal_mode=WAL;"
        "PRAGMA synchronous=NORMAL;"
        "PRAGMA busy_timeout=20000;"
        "PRAGMA foreign_keys=ON;"
        "PRAGMA cache_size=-64000;"
        # No memory map: whenever another process has committed, SQLite drops its page
        # cache and unmaps the whole file, so under parallel writers every transaction
        # paid a munmap, an mmap and a page fault per page it touched. Plain reads into
        # the page cache measured 12% less server CPU a ballot (bench/RESULTS.md).
        "PRAGMA mmap_size=0;"
        # Checkpoints every ~40 MB of WAL instead of ~4 MB: a rush rewrites the same hot
        # pages (a reward's stock, the mall's account, index tails), and each checkpoint
        # copies them once, so ten times fewer copies; the WAL is trimmed back after.
        "PRAGMA wal_autocheckpoint=10000;"
        "PRAGMA journal_size_limit=67108864;"
    ),
}


def sqlite_database(name: str) -> dict:
    return {
        "ENGINE": "core.sqlite",  # django.db.backends.sqlite3 with writers queued on a file lock
        "NAME": name,
        "CONN_MAX_AGE": 600,
        "OPTIONS": dict(SQLITE_OPTIONS),
        "TEST": {"NAME": os.environ.get("SQLITE_TEST_PATH") or None},
    }


DATABASE_URL = os.environ.get("DATABASE_URL", "")
if DATABASE_URL and not DATABASE_URL.startswith("sqlite:"):
    # No CONN_HEALTH_CHECKS: it costs a round trip on every request; a dead connection fails one
    # request and is replaced at the next.
    DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=600)}
    if DATABASES["default"]["ENGINE"].endswith("postgresql"):
        # Lets core.sql's hot statements be prepared once per connection; Django's own queries use
        # client-side binding and stay unprepared. Set 0 behind a transaction-mode pgbouncer.
        DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
            int(os.environ.get("UNIONHOME_PG_PREPARE_THRESHOLD", "5")) or None
        )
elif DATABASE_URL:
    _name = dj_database_url.parse(DATABASE_URL)["NAME"]
    if not _name or _name == ":memory:":
        # One in-memory database per connection: every worker and thread would see its own, empty one.
        raise RuntimeError("DATABASE_URL names no SQLite file; use sqlite:////absolute/path/db.sqlite3")
    DATABASES = {"default": sqlite_database(_name)}
else:
    DATABASES = {"default": sqlite_database(os.environ.get("SQLITE_PATH", str(VAR_DIR / "db.sqlite3")))}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = ["accounts.backends.PhonePasswordBackend"]
LOGIN_URL = "member:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 8}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if env_bool("UNIONHOME_FAST_HASHER", False):
    # Tests only: the real hasher costs ~0.3 s a login, which is the point in production.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# Server-side sessions: a signed cookie is readable by whoever holds it and cannot be revoked, and a
# value in it (a nonce) can be replayed. The cookie carries only the session key.
SESSION_ENGINE = "django.contrib.sessions.backends.db"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = int(os.environ.get("UNIONHOME_SESSION_HOURS", "12")) * 3600

# --- i18n: zh-Hans first, English available. Message ids are the Chinese text.
LANGUAGE_CODE = "zh-hans"
LANGUAGES = [("zh-hans", "简体中文"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
USE_I18N = True
TIME_ZONE = "Asia/Shanghai"
USE_TZ = True

# --- Static files: vendored from npm at set-up, served by whitenoise.
STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATIC_ROOT.mkdir(exist_ok=True)  # whitenoise expects it even before collectstatic
WHITENOISE_USE_FINDERS = DEBUG
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(VAR_DIR / "media")},
    },
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
MEDIA_ROOT = VAR_DIR / "media"
MEDIA_URL = "/media/"  # uploads (poll photos, activity covers), re-encoded before they are stored
DATA_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024
ROSTER_MAX_BYTES = int(os.environ.get("UNIONHOME_ROSTER_MAX_BYTES", str(40 * 1024 * 1024)))
ROSTER_SYNC_MAX_ROWS = 5000

# --- Background work: django.tasks with a database backend; `db_worker` runs beside the web server.
TASKS = {
    "default": {
        "BACKEND": os.environ.get("UNIONHOME_TASKS_BACKEND", "django_tasks_db.DatabaseBackend"),
        "QUEUES": ["default"],
    }
}

CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
if os.environ.get("REDIS_URL"):
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": os.environ["REDIS_URL"]}
    }

# --- UnionHome.
UNIONHOME_PII_KEY = os.environ.get("UNIONHOME_PII_KEY", "")
# Hosts of streaming providers whose live URLs are accepted besides plain .m3u8 addresses.
LIVE_PROVIDER_HOSTS = [h.strip() for h in os.environ.get("UNIONHOME_LIVE_PROVIDER_HOSTS", "").split(",") if h.strip()]
UNIONHOME_SMS_BACKEND = os.environ.get("UNIONHOME_SMS_BACKEND", "accounts.sms.DevSmsBackend")
UNIONHOME_SMS_GATEWAY_URL = os.environ.get("UNIONHOME_SMS_GATEWAY_URL", "")
UNIONHOME_SMS_ACCESS_KEY_ID = os.environ.get("UNIONHOME_SMS_ACCESS_KEY_ID", "")
UNIONHOME_SMS_ACCESS_KEY_SECRET = os.environ.get("UNIONHOME_SMS_ACCESS_KEY_SECRET", "")
UNIONHOME_SMS_SIGN_NAME = os.environ.get("UNIONHOME_SMS_SIGN_NAME", "网上职工之家")
UNIONHOME_SMS_TEMPLATE_CODE = os.environ.get("UNIONHOME_SMS_TEMPLATE_CODE", "")
UNIONHOME_DEV_INBOX = env_bool("UNIONHOME_DEV_INBOX", DEBUG)
API_TOKEN_TTL_HOURS = int(os.environ.get("UNIONHOME_TOKEN_TTL_HOURS", "168"))
# Old PII keys, comma-separated: they still decrypt but never encrypt or hash; set them only while
# `manage.py rotate_pii_key` runs (README, "How keys rotate").
UNIONHOME_PII_OLD_KEYS = os.environ.get("UNIONHOME_PII_OLD_KEYS", "")
# SMS codes per client address an hour, and in all an hour (what an SMS-bombing costs at most).
UNIONHOME_SMS_IP_HOURLY_LIMIT = int(os.environ.get("UNIONHOME_SMS_IP_HOURLY_LIMIT", "20"))
UNIONHOME_SMS_GLOBAL_HOURLY_LIMIT = int(os.environ.get("UNIONHOME_SMS_GLOBAL_HOURLY_LIMIT", "2000"))
# Certification tries per client address an hour (a whole workplace behind one NAT certifies in a
# morning), and the time every step-one answer takes at least, so no answer is faster than another.
UNIONHOME_CERTIFY_IP_LIMIT = int(os.environ.get("UNIONHOME_CERTIFY_IP_LIMIT", "300"))
UNIONHOME_CERTIFY_MIN_SECONDS = float(os.environ.get("UNIONHOME_CERTIFY_MIN_SECONDS", "0.3"))
# Unmasked views of ID numbers and phones a cadre may open in the console an hour.
CONSOLE_UNMASK_LIMIT = int(os.environ.get("UNIONHOME_UNMASK_LIMIT", "30"))
# Uploads waiting for a background job (large rosters): private, never under MEDIA_ROOT.
UPLOADS_DIR = Path(os.environ.get("UNIONHOME_UPLOADS_DIR", VAR_DIR / "uploads"))
MEMBER_CARD_TTL_SECONDS = 300
SITE_NAME = _("网上职工之家")

# --- Security: production mode turns on HTTPS-only behaviour unless told it runs on loopback.
HTTPS = env_bool("UNIONHOME_HTTPS", not DEBUG)
SECURE_SSL_REDIRECT = HTTPS
SESSION_COOKIE_SECURE = HTTPS
CSRF_COOKIE_SECURE = HTTPS
SECURE_HSTS_SECONDS = 31536000 if HTTPS else 0
SECURE_HSTS_INCLUDE_SUBDOMAINS = HTTPS
SECURE_HSTS_PRELOAD = HTTPS
# The reverse proxies in front of the app (addresses or networks, comma-separated). Only requests
# arriving from one of them have their X-Forwarded-For and X-Forwarded-Proto believed
# (core.audit.client_ip; core.proxy): without a proxy, those headers are whatever the client wrote.
TRUSTED_PROXIES = [p.strip() for p in os.environ.get("UNIONHOME_TRUSTED_PROXIES", "").split(",") if p.strip()]
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if HTTPS and TRUSTED_PROXIES else None
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"
SECURE_REFERRER_POLICY = "same-origin"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {"django.db.backends": {"level": "WARNING"}},
}


# --- Refuse to serve unsafe. Debug off is production: no development key, backend or door may be in
# place, whatever else the environment says. The web server refuses to start on any of these
# (config/wsgi.py, which runserver loads too) and `check --deploy` reports them; commands that
# serve no one (makemigrations, compilemessages) still run on a bare checkout.
UNSAFE_REASONS: list[str] = []
if not DEBUG:
    _unsafe = UNSAFE_REASONS
    if not SECRET_KEY or SECRET_KEY == _DEV_SECRET:
        _unsafe.append("SECRET_KEY is not set")
    if not UNIONHOME_PII_KEY:
        _unsafe.append("UNIONHOME_PII_KEY is not set (it encrypts ID numbers and phones)")
    if UNIONHOME_SMS_BACKEND == "accounts.sms.DevSmsBackend":
        _unsafe.append("UNIONHOME_SMS_BACKEND is the development backend (it keeps codes in a readable outbox)")
    elif UNIONHOME_SMS_BACKEND == "accounts.sms.AliyunSmsBackend" and not (
        UNIONHOME_SMS_ACCESS_KEY_ID and UNIONHOME_SMS_ACCESS_KEY_SECRET and UNIONHOME_SMS_TEMPLATE_CODE
    ):
        _unsafe.append("the SMS gateway needs UNIONHOME_SMS_ACCESS_KEY_ID, _ACCESS_KEY_SECRET and _TEMPLATE_CODE")
    if UNIONHOME_DEV_INBOX:
        _unsafe.append("UNIONHOME_DEV_INBOX is on (it shows every login code to anyone)")
    if env_bool("UNIONHOME_FAST_HASHER", False):
        _unsafe.append("UNIONHOME_FAST_HASHER is on (MD5 password hashes, for tests only)")
