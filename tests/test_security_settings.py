"""Safe by default, the same however configured: debug off unless asked, no development door with
debug off, one tuned SQLite engine whatever names the file, proxies believed only when named."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import RequestFactory, override_settings

from conftest import PASSWORD, make_user
from core.audit import client_ip

REPO = Path(__file__).resolve().parent.parent
GOOD = {
    "SECRET_KEY": "x" * 50,
    "UNIONHOME_PII_KEY": "dW5pb25ob21lLXRlc3Qta2V5LTAxMjM0NTY3ODlhYmM=",
    "UNIONHOME_SMS_BACKEND": "accounts.sms.AliyunSmsBackend",
    "UNIONHOME_SMS_ACCESS_KEY_ID": "id",
    "UNIONHOME_SMS_ACCESS_KEY_SECRET": "secret",
    "UNIONHOME_SMS_TEMPLATE_CODE": "SMS_1",
}
PROBE = """
import json, django
import config.wsgi  # the web server: it refuses to start on a development part with debug off
django.setup()
from django.conf import settings
from django.urls import resolve, Resolver404
try:
    resolve("/dev/sms/"); inbox = True
except Resolver404:
    inbox = False
d = settings.DATABASES["default"]
print(json.dumps({"debug": settings.DEBUG, "engine": d["ENGINE"], "name": d["NAME"], "options": d["OPTIONS"],
                  "conn_max_age": d["CONN_MAX_AGE"], "inbox": inbox, "proxy_ssl": settings.SECURE_PROXY_SSL_HEADER,
                  "hashers": settings.PASSWORD_HASHERS[:1]}))
"""


def _settings_of(env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DJANGO_SETTINGS_MODULE": "config.settings"}
    base["UNIONHOME_VAR_DIR"] = str(tmp_path / "var")
    return subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO, env=base | env, capture_output=True, text=True, timeout=60
    )


def _ok(env, tmp_path) -> dict:
    run = _settings_of(env, tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout)


def test_debug_is_off_when_unset_and_production_starts_with_real_parts(tmp_path):
    got = _ok(GOOD, tmp_path)
    assert got["debug"] is False
    assert got["inbox"] is False  # /dev/sms/ is not even routed
    assert "MD5" not in got["hashers"][0]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"SECRET_KEY": ""}, "SECRET_KEY"),
        ({"UNIONHOME_PII_KEY": ""}, "UNIONHOME_PII_KEY"),
        ({"UNIONHOME_SMS_BACKEND": "accounts.sms.DevSmsBackend"}, "development backend"),
        ({"UNIONHOME_SMS_ACCESS_KEY_SECRET": ""}, "UNIONHOME_SMS_ACCESS_KEY_ID"),
        ({"UNIONHOME_DEV_INBOX": "1"}, "UNIONHOME_DEV_INBOX"),
        ({"UNIONHOME_FAST_HASHER": "1"}, "UNIONHOME_FAST_HASHER"),
    ],
)
def test_debug_off_refuses_to_start_on_a_development_part(change, named, tmp_path):
    run = _settings_of(GOOD | change, tmp_path)
    assert run.returncode != 0
    assert "Refusing to start with DEBUG off" in run.stderr and named in run.stderr
    for secret in ("secret", GOOD["UNIONHOME_PII_KEY"], "x" * 50):
        if secret not in change.values():
            assert secret not in run.stderr  # the refusal names settings, never their values


def test_with_nothing_set_the_app_does_not_start_in_debug_with_the_development_keys(tmp_path):
    run = _settings_of({}, tmp_path)
    assert run.returncode != 0 and "SECRET_KEY is not set" in run.stderr


def _manage(args: list[str], env: dict[str, str], tmp_path: Path) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "UNIONHOME_VAR_DIR": str(tmp_path / "var")}
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=REPO, env=base | env, capture_output=True, text=True, timeout=120
    )


def test_commands_that_serve_no_one_run_on_a_bare_checkout(tmp_path):
    # Debug off with nothing set must not stop a developer's makemigrations --check.
    run = _manage(["makemigrations", "--check", "--dry-run"], {}, tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr


def test_check_deploy_names_every_development_part(tmp_path):
    run = _manage(["check", "--deploy"], GOOD | {"UNIONHOME_DEV_INBOX": "1"}, tmp_path)
    assert run.returncode != 0 and "unionhome.E001" in run.stderr and "UNIONHOME_DEV_INBOX" in run.stderr


def test_the_demo_asks_for_debug_and_gets_the_inbox(tmp_path):
    got = _ok({"DEBUG": "1"}, tmp_path)
    assert got["debug"] is True and got["inbox"] is True


def test_a_sqlite_url_gets_exactly_the_tuned_engine_of_the_default_path(tmp_path):
    db = tmp_path / "x" / "db.sqlite3"
    by_path = _ok(GOOD | {"SQLITE_PATH": str(db)}, tmp_path)
    by_url = _ok(GOOD | {"DATABASE_URL": f"sqlite:///{db}"}, tmp_path)
    assert by_url == by_path
    assert by_url["engine"] == "core.sqlite" and by_url["name"] == str(db)
    assert by_url["options"]["transaction_mode"] == "IMMEDIATE"
    assert "journal_mode=WAL" in by_url["options"]["init_command"]


def test_a_sqlite_url_without_a_file_is_refused(tmp_path):
    run = _settings_of(GOOD | {"DATABASE_URL": "sqlite://:memory:"}, tmp_path)
    assert run.returncode != 0 and "names no SQLite file" in run.stderr


def test_the_forwarded_proto_header_is_believed_only_behind_a_named_proxy(tmp_path):
    assert _ok(GOOD, tmp_path)["proxy_ssl"] is None
    behind = _ok(GOOD | {"UNIONHOME_TRUSTED_PROXIES": "10.0.0.0/8"}, tmp_path)
    assert behind["proxy_ssl"] == ["HTTP_X_FORWARDED_PROTO", "https"]


def _request(remote: str, forwarded: str | None = None):
    extra = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded is not None else {}
    return RequestFactory().get("/", REMOTE_ADDR=remote, **extra)


def test_client_address_without_a_trusted_proxy_ignores_forwarded_headers():
    with override_settings(TRUSTED_PROXIES=[]):
        assert client_ip(_request("203.0.113.9", "1.2.3.4")) == "203.0.113.9"


def test_client_address_behind_the_trusted_proxy_is_the_nearest_untrusted_hop():
    with override_settings(TRUSTED_PROXIES=["10.0.0.0/8", "192.0.2.1"]):
        # nginx at 10.0.0.2 appended the address it saw; the client forged the first entry.
        assert client_ip(_request("10.0.0.2", "6.6.6.6, 198.51.100.7")) == "198.51.100.7"
        # two proxies in a row
        assert client_ip(_request("10.0.0.2", "198.51.100.7, 192.0.2.1")) == "198.51.100.7"
        # garbage in the chain: nothing left of it is believed
        assert client_ip(_request("10.0.0.2", "198.51.100.7, nonsense")) == "10.0.0.2"
        # a request not from the proxy: its header is the client's own writing
        assert client_ip(_request("203.0.113.9", "1.2.3.4")) == "203.0.113.9"
        assert client_ip(_request("10.0.0.2")) == "10.0.0.2"


def test_common_passwords_are_refused():
    with pytest.raises(ValidationError):
        validate_password("password123")
    validate_password("Zh4ng-San-Gonghui")


@pytest.mark.django_db
def test_sessions_live_on_the_server_and_the_cookie_carries_only_their_key(client):
    from django.contrib.sessions.models import Session

    user = make_user("会话测试")
    client.post("/console/login/", {"phone": user.phone, "password": PASSWORD})
    client.force_login(user)
    key = client.cookies["sessionid"].value
    assert Session.objects.filter(session_key=key).exists()
    assert ":" not in key and len(key) <= 40  # a signed cookie session is base64 payload + signature


@pytest.mark.django_db
def test_a_multipart_body_without_its_boundary_is_a_400_not_a_500(district, api, client):
    # Found by schemathesis: Django's parser raised MultiPartParserError, and the API answered 500.
    from accounts.services import issue_token

    raw, _ = issue_token(district.district_admin)
    r = client.post(
        f"/api/v1/orgs/{district.root.pk}/members/import?dry_run=1",
        data=b"--x\r\n",
        content_type="multipart/form-data",
        HTTP_AUTHORIZATION=f"Bearer {raw}",
    )
    assert r.status_code == 400, r.content
    assert r.json()["error"]["code"] == "bad_request"


@pytest.mark.django_db
def test_the_schedule_clears_expired_sessions():
    import datetime as dt

    from django.contrib.sessions.backends.db import SessionStore
    from django.contrib.sessions.models import Session
    from django.core.management import call_command
    from django.utils import timezone

    old, fresh = SessionStore(), SessionStore()
    old["x"], fresh["x"] = 1, 2
    old.create()
    fresh.create()
    Session.objects.filter(session_key=old.session_key).update(expire_date=timezone.now() - dt.timedelta(days=1))
    call_command("run_schedule", "--once")
    assert set(Session.objects.values_list("session_key", flat=True)) == {fresh.session_key}


def test_check_deploy_passes_in_production_mode(tmp_path):
    base = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "DJANGO_SETTINGS_MODULE": "config.settings"}
    env = base | GOOD | {"UNIONHOME_VAR_DIR": str(tmp_path / "var"), "ALLOWED_HOSTS": "union.example.org"}
    env["SECRET_KEY"] = "k" * 30 + "Zq8#vT2!mW9@xR4$pL7%nB3^cF6&hJ1*"  # long and varied, as check --deploy asks
    run = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout + run.stderr


HUGE = 10**25


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/api/v1/live/comments/moderation", {"comment_ids": [HUGE], "approve": True}),
        ("/api/v1/orgs/{root}/points/grants", {"member_ids": [HUGE], "amount": 1, "reason": "x"}),
        ("/api/v1/polls/{poll}/ballots", {"option_ids": [HUGE]}),
    ],
)
def test_an_id_past_64_bits_in_a_body_is_a_422_not_a_500(district, api, path, body):
    # Found by schemathesis: SQLite's driver raised OverflowError on comment_ids, a 500.
    import datetime as dt

    from django.utils import timezone

    from votes.services import polls

    now = timezone.now()
    poll = polls.create_poll(
        district.district_admin,
        district.root,
        title="大数",
        options=[{"title": "甲"}, {"title": "乙"}],
        max_choices=1,
        opens_at=now - dt.timedelta(hours=1),
        closes_at=now + dt.timedelta(hours=1),
    )
    r = api(district.district_admin).post(path.format(root=district.root.pk, poll=poll.pk), body)
    assert r.status_code in (403, 404, 422), r.content
    assert r.status_code < 500


@pytest.mark.django_db
def test_a_nul_character_anywhere_in_a_query_or_a_text_body_is_a_400(district, api, client):
    # Found by schemathesis on PostgreSQL: ?q= with U+0000 reached a query and answered 500.
    admin = api(district.district_admin)
    r = admin.get("/api/v1/polls/1/receipts?q=a%00b")
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"
    r = admin.post("/api/v1/clubs", {"name": "摄影\u0000社", "description": "周末"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"
    assert client.get("/polls/?q=%00").status_code == 400
    r = client.post("/m/login/", "phone=139%0000000000", content_type="application/x-www-form-urlencoded")
    assert r.status_code == 400
    # Not a false alarm: the same requests without the NUL go through to their views.
    assert admin.get("/api/v1/polls/1/receipts?q=ab").status_code == 404
    assert client.get("/api/v1/health").status_code == 200
