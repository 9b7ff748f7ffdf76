"""A REAL production server for tests that call the API over HTTP: gunicorn with DEBUG off, its own
migrated and seeded database, production settings from the environment only.

`production_server(tmp, ...)` is a context manager yielding a `Server`. The database is SQLite
(by SQLITE_PATH, or by a sqlite:/// DATABASE_URL: both must give the same tuned engine) unless the
test run has a DATABASE_URL (the PostgreSQL pass), in which case the server gets a database of its
own on that PostgreSQL, created here and dropped at the end. Workers are gunicorn's sync workers
or gthread (threads in each worker), which operators pick.

Crash drills: `start_worker=True` also starts `manage.py db_worker` with the same environment.
Each process runs in a session (process group) of its own, so `srv.kill("gunicorn")` SIGKILLs the
master and all its workers at once and `srv.kill("worker")` the task worker; `srv.start(name)`
starts it again on the same database, and `srv.manage(...)` runs a management command there.
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from bench.harness import LOOPBACK_SMS_ENV

REPO = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).parent / "gunicorn"


@dataclass
class Response:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


@dataclass
class Server:
    host: str
    port: int
    creds: dict
    log_path: Path
    seen: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    env: dict = field(default_factory=dict)
    procs: dict = field(default_factory=dict)  # "gunicorn", "worker" → subprocess.Popen
    starters: dict = field(default_factory=dict)  # name → function that (re)starts it

    def start(self, name: str) -> subprocess.Popen:
        """(Re)start "gunicorn" (waits until it answers) or "worker" on the same database."""
        proc = self.procs.get(name)
        if proc is not None and proc.poll() is None:
            raise AssertionError(f"{name} is still running (pid {proc.pid})")
        self.procs[name] = self.starters[name]()
        return self.procs[name]

    def kill(self, name: str) -> None:
        """SIGKILL the process and everything in its process group (gunicorn's master and workers)."""
        proc = self.procs[name]
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def manage(self, *args: str, check: bool = True, timeout: float = 600, env: dict | None = None):
        """`manage.py args…` with the server's environment (or that plus `env`); stdout and stderr captured."""
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPO,
            env={**self.env, **(env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"manage.py {' '.join(args)} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
        return done

    def request(self, method: str, path: str, body=None, *, token=None, headers=None) -> Response:
        hdrs = dict(headers or {})
        if token:
            hdrs["Authorization"] = f"Bearer {token}"
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            hdrs.setdefault("Content-Type", "application/json")
        elif isinstance(body, str):
            body = body.encode()
            hdrs.setdefault("Content-Type", "application/json")
        for attempt in range(20):
            conn = http.client.HTTPConnection(self.host, self.port, timeout=120)
            try:
                conn.request(method, path, body=body, headers=hdrs)
                r = conn.getresponse()
                resp = Response(r.status, {k.lower(): v for k, v in r.getheaders()}, r.read())
                break
            except ConnectionRefusedError:
                # Refused before the request was sent: it never reached a view, so a retry is safe.
                time.sleep(0.05 * (attempt + 1))
            finally:
                conn.close()
        else:
            raise AssertionError(f"{method} {path}: no answer after 20 attempts")
        with self.lock:
            self.seen.append((method, path, resp.status, resp.body))
        return resp

    def get(self, path, **kw) -> Response:
        return self.request("GET", path, **kw)

    def post(self, path, body=None, **kw) -> Response:
        return self.request("POST", path, body, **kw)

    def token(self, phone: str, password: str | None = None) -> str:
        r = self.post("/api/v1/auth/token", {"phone": phone, "password": password or self.creds["password"]})
        assert r.status == 200, r.body
        return r.json()["token"]

    def issue_tokens(self, phones: list[str]) -> list[tuple[str, int]]:
        """[(bearer token, user id)] for these accounts, issued in one `manage.py shell` on the server's
        database instead of one password login each (production's hasher costs ~0.3 s a login)."""
        code = (
            "import json, sys; from accounts.models import User; from accounts.services import issue_token; "
            "from core import pii; phones = json.loads(sys.stdin.read()); "
            "users = [User.objects.get(phone_hash=pii.phone_index(p)) for p in phones]; "
            "print(json.dumps([[issue_token(u)[0], u.pk] for u in users]))"
        )
        done = subprocess.run(
            [sys.executable, "manage.py", "shell", "-c", code],
            cwd=REPO,
            env=self.env,
            input=json.dumps(phones),
            capture_output=True,
            text=True,
            timeout=300,
            check=True,
        )
        return [(t, uid) for t, uid in json.loads(done.stdout.strip().splitlines()[-1])]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def in_parallel(fn, items, threads: int = 16) -> list:
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return list(pool.map(fn, items))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def production_env(tmp: Path) -> dict[str, str]:
    """The test run's environment less everything UnionHome reads, plus production settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("UNIONHOME_", "DJANGO_", "SQLITE_")) and k not in ("DATABASE_URL", "DEBUG", "SECRET_KEY")
    }
    env.update(
        DJANGO_SETTINGS_MODULE="config.settings",
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        UNIONHOME_HTTPS="0",
        UNIONHOME_PII_KEY=base64.b64encode(os.urandom(32)).decode(),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        UNIONHOME_VAR_DIR=str(tmp / "var"),
        UNIONHOME_DEV_KEY_PATH=str(tmp / "no-dev-key"),
        LOG_LEVEL="INFO",
        PYTHONUNBUFFERED="1",
        **LOOPBACK_SMS_ENV,
    )
    return env


def _pg_admin_url(url: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path="/postgres"))


@contextlib.contextmanager
def production_server(
    tmp: Path,
    *,
    seed_members: int = 500,
    worker_class: str = "sync",
    workers: int = 2,
    threads: int = 4,
    sqlite_by: str = "path",
    extra_env: dict[str, str] | None = None,
    start_worker: bool = False,
) -> Iterator[Server]:
    tmp.mkdir(parents=True, exist_ok=True)
    creds_path = tmp / "credentials.json"
    log_path = tmp / "server.log"
    env = production_env(tmp)
    env.update(extra_env or {})
    pg_url = os.environ.get("DATABASE_URL", "")
    pg_db = None
    if pg_url:
        import psycopg

        parts = urlsplit(pg_url)
        pg_db = f"{parts.path.lstrip('/') or 'unionhome'}_srv_{os.getpid()}_{secrets.token_hex(3)}"
        with psycopg.connect(_pg_admin_url(pg_url), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{pg_db}"')
        env["DATABASE_URL"] = urlunsplit(parts._replace(path="/" + pg_db))
    elif sqlite_by == "url":
        env["DATABASE_URL"] = f"sqlite:///{tmp / 'server.sqlite3'}"
    else:
        env["SQLITE_PATH"] = str(tmp / "server.sqlite3")

    def run(args: list[str]) -> None:
        subprocess.run(args, cwd=REPO, env=env, check=True, stdout=log, stderr=subprocess.STDOUT, timeout=600)

    srv = None
    log = open(log_path, "ab")  # noqa: SIM115 - closed in the finally below
    try:
        python = sys.executable
        run([python, "manage.py", "migrate", "--no-input", "-v", "0"])
        run([python, "manage.py", "seed_demo", "--members", str(seed_members), "--credentials-out", str(creds_path)])
        creds = json.loads(creds_path.read_text(encoding="utf-8"))
        port = free_port()
        argv = [str(GUNICORN), "config.wsgi", "-w", str(workers), "-b", f"127.0.0.1:{port}", "--timeout", "120"]
        if worker_class == "gthread":
            argv += ["-k", "gthread", "--threads", str(threads)]
        argv += ["--access-logfile", "-", "--error-logfile", "-", "--backlog", "2048"]
        srv = Server("127.0.0.1", port, creds, log_path, env=env)

        def start_gunicorn() -> subprocess.Popen:
            proc = subprocess.Popen(
                argv, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline:
                try:
                    if srv.get("/api/v1/health").status == 200:
                        return proc
                except (OSError, AssertionError):  # refused 20 times: still importing Django
                    pass
                time.sleep(0.2)
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
            pytest.fail("gunicorn exited early or did not answer within 60 s:\n" + srv.log()[-3000:])

        def start_db_worker() -> subprocess.Popen:
            return subprocess.Popen(
                [python, "manage.py", "db_worker", "--interval", "0.2", "--no-startup-delay", "--no-reload"],
                cwd=REPO,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

        srv.starters.update(gunicorn=start_gunicorn, worker=start_db_worker)
        srv.start("gunicorn")
        if start_worker:
            srv.start("worker")
        yield srv
    finally:
        for proc in srv.procs.values() if srv is not None else ():
            if proc.poll() is not None:
                continue
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        log.close()
        if pg_db:
            import psycopg

            with psycopg.connect(_pg_admin_url(pg_url), autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{pg_db}" WITH (FORCE)')
