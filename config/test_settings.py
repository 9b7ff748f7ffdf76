"""Settings for the test suite: the real settings, with a fixed PII key, a fast password hasher,
and tasks run in-process (a test asserts on the outcome of an import without a worker)."""

import base64
import os

# Tests see the development configuration (dev SMS inbox, finders for static files); the contract
# tests start their own DEBUG=0 server with production settings.
os.environ.setdefault("DEBUG", "1")
os.environ.setdefault("UNIONHOME_FAST_HASHER", "1")
# Playwright's sync API runs an event loop in the test thread; the ORM calls beside it are still sync.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
os.environ.setdefault("UNIONHOME_PII_KEY", base64.b64encode(b"unionhome-test-key-0123456789abc").decode())
os.environ.setdefault("UNIONHOME_TASKS_BACKEND", "django.tasks.backends.immediate.ImmediateBackend")

from config.settings import *  # noqa: F403

ALLOWED_HOSTS = ["*"]

if "sqlite" in DATABASES["default"]["ENGINE"]:  # noqa: F405
    # A file, not :memory:, so the live server's request threads get connections of their own
    # (an in-memory test database is one connection shared by every thread).
    DATABASES["default"]["TEST"] = {"NAME": f"/tmp/unionhome-test-{os.getpid()}.sqlite3"}  # noqa: F405
else:
    # One test database per run: parallel runs (developers, helpers, CI) must not drop each other's.
    DATABASES["default"]["TEST"] = {"NAME": f"test_unionhome_{os.getpid()}"}  # noqa: F405
