"""Benchmark harness: a production server on loopback, a seeded database, tokens, wrk, results.

Importable by every benchmark in bench/. Everything targets 127.0.0.1 only, and every loop
here is bounded in count and in time.

    from bench import harness
    with harness.database("sqlite") as db:
        harness.migrate(db.env)
        creds = harness.seed_demo(db.env, members=20_000)
        with harness.Server(db.env, workers=3) as srv:
            tokens = harness.fetch_tokens(srv.url, harness.token_users(creds, 64))
            lua = harness.write_token_lua(tokens)
            print(harness.run_wrk(srv.url + "/api/v1/me", lua=lua))
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import json
import os
import platform
import re
import resource
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
OUT = BENCH / "out"  # scratch files (git-ignored)
RESULTS = BENCH / "RESULTS.md"
PYTHON = ROOT / ".venv" / "bin" / "python"
GUNICORN = ROOT / ".venv" / "bin" / "gunicorn"
HOST = "127.0.0.1"

# A fixed, public, bench-only PII key: benchmark data is synthetic, and a fixed key lets a
# database seeded by one run be read by the next.
# Debug off refuses the development SMS backend: the real gateway's protocol, aimed at a loopback
# port where nothing listens (benchmarks and server tests sign in with passwords or issued tokens).
LOOPBACK_SMS_ENV = {
    "UNIONHOME_SMS_BACKEND": "accounts.sms.AliyunSmsBackend",
    "UNIONHOME_SMS_GATEWAY_URL": "http://127.0.0.1:9/",
    "UNIONHOME_SMS_ACCESS_KEY_ID": "none",
    "UNIONHOME_SMS_ACCESS_KEY_SECRET": "none",
    "UNIONHOME_SMS_TEMPLATE_CODE": "none",
}
BENCH_PII_KEY = base64.b64encode(b"unionhome-bench-only-pii-key-32b").decode()
assert len(base64.b64decode(BENCH_PII_KEY)) == 32


def log(msg: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --- machine facts ----------------------------------------------------------------------------


def machine() -> dict[str, Any]:
    """nproc, CPU model, memory and date: stamped on every result row."""
    cpu = platform.processor() or "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gb = 0.0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_gb = int(line.split()[1]) / 1024 / 1024
                break
    return {
        "date": dt.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %z"),
        "commit": code_version(),
        "nproc": os.cpu_count() or 0,
        "cpu": re.sub(r"\s+", " ", cpu),
        "mem_gb": round(mem_gb, 1),
        "python": platform.python_version(),
    }


def code_version() -> str:
    """The app code measured: HEAD's short hash, '+dirty' when tracked files outside bench/ differ."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no", "--", ".", ":!bench"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return (head or "unknown") + ("+dirty" if dirty else "")


def machine_str(m: dict[str, Any] | None = None) -> str:
    m = m or machine()
    return f"{m['nproc']} CPU · {m['cpu']} · {m['mem_gb']:.0f} GB"


# --- environment and databases ----------------------------------------------------------------


def base_env(**extra: str) -> dict[str, str]:
    """Production settings for a loopback run: DEBUG off, a random secret, the bench PII key."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "SQLITE_PATH", "UNIONHOME_VAR_DIR")}
    env.update(
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        UNIONHOME_PII_KEY=BENCH_PII_KEY,
        UNIONHOME_HTTPS="0",
        ALLOWED_HOSTS=HOST,
        LOG_LEVEL="WARNING",
        **LOOPBACK_SMS_ENV,
        PYTHONUNBUFFERED="1",
        DJANGO_SETTINGS_MODULE="config.settings",
    )
    env.update(extra)
    return env


@dataclass
class Database:
    kind: str  # "sqlite" | "postgres"
    env: dict[str, str]
    var_dir: Path
    url: str = ""  # PostgreSQL URL of the bench database
    label: str = ""


def _pg_server_url() -> str:
    """DATABASE_URL from the environment, else start the loopback cluster with scripts/pg.sh."""
    url = os.environ.get("DATABASE_URL", "")
    if url:
        return url
    out = subprocess.run(
        ["bash", str(ROOT / "scripts" / "pg.sh"), "start"], capture_output=True, text=True, timeout=300, check=True
    ).stdout
    m = re.search(r"DATABASE_URL=(\S+)", out)
    if not m:
        raise RuntimeError(f"scripts/pg.sh start printed no DATABASE_URL: {out!r}")
    return m.group(1)


def _pg_admin(url: str, sql: str) -> None:
    """Run one statement (CREATE/DROP DATABASE) on the server's maintenance database."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    from_url = conninfo_to_dict(url)
    from_url["dbname"] = "postgres"
    with psycopg.connect(make_conninfo(**from_url), autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql)


def _with_dbname(url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


@contextlib.contextmanager
def database(kind: str, *, keep: bool = False) -> Iterator[Database]:
    """A fresh, empty database for one benchmark: SQLite in a temp var dir, or a new PostgreSQL database."""
    if kind not in ("sqlite", "postgres"):
        raise ValueError(f"--db must be sqlite or postgres, not {kind!r}")
    var_dir = Path(tempfile.mkdtemp(prefix=f"unionhome-bench-{kind}-"))
    if kind == "sqlite":
        env = base_env(UNIONHOME_VAR_DIR=str(var_dir), SQLITE_PATH=str(var_dir / "db.sqlite3"))
        db = Database(kind, env, var_dir, label="SQLite (WAL)")
    else:
        server = _pg_server_url()
        name = f"unionhome_bench_{int(time.time())}_{secrets.token_hex(3)}"
        _pg_admin(server, f'CREATE DATABASE "{name}"')
        url = _with_dbname(server, name)
        env = base_env(UNIONHOME_VAR_DIR=str(var_dir), DATABASE_URL=url)
        db = Database(kind, env, var_dir, url=url, label="PostgreSQL")
        log(f"PostgreSQL bench database {name}")
    try:
        yield db
    finally:
        if not keep:
            if kind == "postgres":
                with contextlib.suppress(Exception):
                    _pg_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            shutil.rmtree(var_dir, ignore_errors=True)


def manage(env: dict[str, str], *args: str, timeout: float = 1800) -> str:
    proc = subprocess.run(
        [str(PYTHON), "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return proc.stdout


def migrate(env: dict[str, str]) -> None:
    t = time.monotonic()
    manage(env, "migrate", "--noinput", "-v0")
    # DEBUG=0 serves pages with the hashed static manifest: without it every page is a 500.
    manage(env, "collectstatic", "--noinput", "-v0")
    log(f"migrated (and static files collected) in {time.monotonic() - t:.1f} s")


def seed_demo(env: dict[str, str], members: int, seed: int = 1) -> dict[str, Any]:
    """seed_demo --members N; returns the credentials JSON."""
    out = Path(env["UNIONHOME_VAR_DIR"]) / "bench-credentials.json"
    t = time.monotonic()
    manage(env, "seed_demo", "--members", str(members), "--seed", str(seed), "--credentials-out", str(out))
    log(f"seed_demo --members {members} in {time.monotonic() - t:.1f} s")
    return json.loads(out.read_text(encoding="utf-8"))


# --- the server ---------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """gunicorn config.wsgi on 127.0.0.1, optionally with `manage.py db_worker` beside it."""

    env: dict[str, str]
    workers: int = 3
    threads: int = 1
    worker_class: str = "sync"
    with_db_worker: bool = False
    cpus: str | None = None  # taskset list (e.g. "0"): the server's CPUs, all of them when None
    port: int = 0
    timeout: float = 60.0
    procs: list[subprocess.Popen] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def describe(self) -> str:
        kind = self.worker_class if self.threads == 1 else f"gthread×{self.threads}"
        return f"gunicorn {self.workers} {kind} workers"

    def _spawn(self, name: str, argv: list[str]) -> None:
        OUT.mkdir(parents=True, exist_ok=True)
        path = OUT / f"{name}-{self.port}.log"
        fh = open(path, "wb")  # noqa: SIM115 - lives as long as the process
        self.logs.append(path)
        self.procs.append(
            subprocess.Popen(argv, cwd=ROOT, env=self.env, stdout=fh, stderr=subprocess.STDOUT, start_new_session=True)
        )

    def start(self) -> Server:
        self.port = self.port or free_port()
        argv = [
            str(GUNICORN),
            "config.wsgi",
            "--bind",
            f"{HOST}:{self.port}",
            "--workers",
            str(self.workers),
            "--worker-class",
            "gthread" if self.threads > 1 else self.worker_class,
            "--threads",
            str(self.threads),
            "--backlog",
            "2048",
            "--timeout",
            "120",
            "--log-level",
            "warning",
        ]
        self._spawn("gunicorn", pinned(argv, self.cpus))
        if self.with_db_worker:
            self._spawn("db_worker", [str(PYTHON), "manage.py", "db_worker", "--queue-name", "default"])
        self.wait_healthy()
        return self

    def wait_healthy(self) -> None:
        deadline = time.monotonic() + self.timeout
        while time.monotonic() < deadline:
            for p in self.procs:
                if p.poll() is not None:
                    raise RuntimeError(f"server process exited ({p.returncode}); see {', '.join(map(str, self.logs))}")
            with contextlib.suppress(OSError), urllib.request.urlopen(self.url + "/api/v1/health", timeout=2) as r:
                if r.status == 200:
                    return
            time.sleep(0.2)
        raise RuntimeError(f"{self.url}/api/v1/health did not answer within {self.timeout:.0f} s")

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, 15)
        for p in self.procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(p.pid, 9)
                p.wait(timeout=5)
        self.procs.clear()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


# --- HTTP helpers -------------------------------------------------------------------------------


def http_json(
    method: str, url: str, body: Any = None, *, token: str = "", timeout: float = 60
) -> tuple[int, dict[str, Any]]:
    assert url.startswith(f"http://{HOST}:"), "benchmarks only call the loopback server"
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"{}")


def token_users(creds: dict[str, Any], k: int) -> list[str]:
    """K phones, alternating followers and certified members (each phone signs in once)."""
    followers = [u["phone"] for u in creds.get("followers", [])]
    members = [u["phone"] for u in creds.get("members", [])]
    phones: list[str] = []
    for i in range(max(len(followers), len(members))):
        for pool in (followers, members):
            if i < len(pool):
                phones.append(pool[i])
    return phones[:k]


def fetch_tokens(base_url: str, phones: list[str], password: str = "Union@2026", parallel: int = 4) -> list[str]:
    """POST /api/v1/auth/token for each phone (the password hasher makes this ~0.3 s a login)."""

    def one(phone: str) -> str:
        status, body = http_json("POST", base_url + "/api/v1/auth/token", {"phone": phone, "password": password})
        if status != 200:
            raise RuntimeError(f"token for {phone[:3]}… failed: {status} {body}")
        return body["token"]

    t = time.monotonic()
    with ThreadPoolExecutor(parallel) as pool:
        tokens = list(pool.map(one, phones))
    log(f"{len(tokens)} tokens in {time.monotonic() - t:.1f} s")
    return tokens


# --- wrk ----------------------------------------------------------------------------------------


def ensure_wrk() -> str:
    path = shutil.which("wrk")
    if path:
        return path
    if os.geteuid() != 0:
        raise RuntimeError("wrk is not installed; run as root: apt-get install -y wrk")
    log("installing wrk (apt-get install -y wrk)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, timeout=600)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True, env=env, timeout=600)
    path = shutil.which("wrk")
    if not path:
        raise RuntimeError("apt-get install wrk did not provide a wrk binary")
    return path


def write_token_lua(tokens: list[str], path: Path | None = None) -> Path:
    """A wrk script that sends a different bearer token on each request (round robin per wrk thread)."""
    OUT.mkdir(parents=True, exist_ok=True)
    path = path or OUT / f"tokens-{os.getpid()}.lua"
    items = ",\n".join(f'  "{t}"' for t in tokens)
    path.write_text(
        f"""-- generated by bench/harness.py: rotate bearer tokens per request
local tokens = {{
{items}
}}
local n = #tokens
local i = 0
function setup(thread)
  thread:set("offset", math.random(n))
end
function init(args)
  i = offset or 0
end
function request()
  i = (i % n) + 1
  wrk.headers["Authorization"] = "Bearer " .. tokens[i]
  return wrk.format()
end
function done(summary, latency, requests)
  io.write(string.format("BENCH non2xx_or_errors=%d\\n", summary.errors.status + summary.errors.connect
    + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
""",
        encoding="utf-8",
    )
    return path


_UNITS = {"us": 1e-3, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def _ms(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text.strip())
    if not m:
        raise ValueError(f"cannot read wrk latency {text!r}")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_wrk(out: str) -> dict[str, Any]:
    """requests/sec, p50/p90/p99 (ms), requests, errors from `wrk --latency` output."""
    res: dict[str, Any] = {"raw": out}
    m = re.search(r"Requests/sec:\s*([\d.]+)", out)
    res["rps"] = float(m.group(1)) if m else 0.0
    m = re.search(r"(\d+) requests in ([\d.]+\w+)", out)
    res["requests"] = int(m.group(1)) if m else 0
    for pct in ("50", "75", "90", "99"):
        m = re.search(rf"^\s*{pct}(?:\.000)?%\s+(\S+)", out, re.M)
        if m:
            res[f"p{pct}"] = _ms(m.group(1))
    m = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
    res["non2xx"] = int(m.group(1)) if m else 0
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["socket_errors"] = sum(int(x) for x in m.groups()) if m else 0
    return res


def run_wrk(
    url: str,
    *,
    lua: Path | None = None,
    threads: int = 2,
    connections: int = 32,
    duration: int = 15,
    timeout_s: int = 10,
    cpus: str | None = None,
) -> dict[str, Any]:
    assert url.startswith(f"http://{HOST}:"), "benchmarks only target 127.0.0.1"
    wrk = ensure_wrk()
    argv = [wrk, f"-t{threads}", f"-c{connections}", f"-d{duration}s", f"--timeout={timeout_s}s", "--latency"]
    if lua:
        argv += ["-s", str(lua)]
    argv.append(url)
    argv = pinned(argv, cpus)
    before, cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN), cpu_snapshot()
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60)
    after, cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN), cpu_snapshot()
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed: {proc.stderr}")
    res = parse_wrk(proc.stdout)
    # The load generator shares the machine's CPUs with the server: what it used is reported.
    res["client_cpu_s"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    res["cpu"] = cpu_used(cpu_before, cpu_after, res.get("requests", 0))
    res["wrk"] = f"wrk -t{threads} -c{connections} -d{duration}s"
    return res


_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def cpu_snapshot() -> dict[str, float]:
    """CPU seconds used so far: by the web server (every process of a session whose leader runs
    gunicorn), by PostgreSQL's processes, and the machine's idle time (Linux /proc)."""
    out = {"server": 0.0, "postgres": 0.0, "idle": 0.0, "total": 0.0}
    with contextlib.suppress(OSError):
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
        ticks = [int(x) for x in fields]
        out["idle"] = (ticks[3] + ticks[4]) / _TICK
        out["total"] = sum(ticks[:8]) / _TICK
    leaders: dict[int, str] = {}
    stats: list[tuple[str, int, float]] = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError, IndexError, ValueError):
            raw = (proc / "stat").read_text()
            name = raw[raw.index("(") + 1 : raw.rindex(")")]
            rest = raw[raw.rindex(")") + 2 :].split()
            session, cpu = int(rest[3]), (int(rest[11]) + int(rest[12])) / _TICK
            if int(proc.name) == session:
                leaders[session] = (proc / "cmdline").read_bytes().decode(errors="replace")
            stats.append((name, session, cpu))
    for name, session, cpu in stats:
        if "gunicorn" in leaders.get(session, ""):
            out["server"] += cpu
        elif name.startswith("postgres"):
            out["postgres"] += cpu
    return out


def cpu_used(before: dict[str, float], after: dict[str, float], requests: int) -> str:
    """ "server 812 µs, postgres 203 µs CPU a request; machine 4% idle" between two snapshots."""
    n = max(requests, 1)
    idle = (after["idle"] - before["idle"]) / max(after["total"] - before["total"], 1e-9) * 100
    parts = [f"server {(after['server'] - before['server']) / n * 1e6:.0f} µs"]
    if after["postgres"] - before["postgres"] > 0.01:
        parts.append(f"postgres {(after['postgres'] - before['postgres']) / n * 1e6:.0f} µs")
    return ", ".join(parts) + f" CPU a request; machine {idle:.0f}% idle"


def wrk_seconds(res: dict[str, Any]) -> float:
    """The run's real length from wrk's "N requests in Xs" line (a rate divides by it)."""
    m = re.search(r"requests in ([\d.]+)(us|ms|s|m)", res["raw"])
    return _ms(m.group(1) + m.group(2)) / 1000 if m else 0.0


def warm_up(url: str, lua: Path | None = None, seconds: int = 3, cpus: str | None = None) -> None:
    """A short untimed run so every worker has its connection, caches and imports ready."""
    run_wrk(url, lua=lua, threads=1, connections=8, duration=seconds, cpus=cpus)


# --- CPU topology -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Topology:
    """Which CPUs the web server and wrk run on, and which PostgreSQL's processes run on (None: all).

    Shared: everything on every CPU, so each CPU-second PostgreSQL spends on an operation is taken
    from the server, while /health costs PostgreSQL nothing. Split: PostgreSQL on CPUs of its own,
    as a deployment's database server has, and the server and wrk on the rest, for /health and the
    operation alike."""

    server: str | None = None
    postgres: str | None = None

    def describe(self) -> str:
        if self.postgres is None:
            return "server, wrk and database share every CPU"
        return f"PostgreSQL on CPU {self.postgres} of its own, server and wrk on CPU {self.server} (taskset)"


def topology(db_kind: str, postgres_cpu: str) -> Topology:
    """`postgres_cpu` "own": a quarter of the CPUs (at least one) for PostgreSQL, the rest for the
    server and wrk; "shared" (or SQLite, which runs inside the server, or one CPU): all for all."""
    n = os.cpu_count() or 1
    if db_kind != "postgres" or postgres_cpu != "own" or n < 2 or not shutil.which("taskset"):
        return Topology()
    k = max(1, n // 4)
    return Topology(server=_cpu_range(0, n - k - 1), postgres=_cpu_range(n - k, n - 1))


def _cpu_range(first: int, last: int) -> str:
    return str(first) if first == last else f"{first}-{last}"


def pinned(argv: list[str], cpus: str | None) -> list[str]:
    return argv if cpus is None else ["taskset", "-c", cpus, *argv]


def _postgres_pids() -> list[int]:
    pids = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError):
                if (proc / "comm").read_text().strip() == "postgres":
                    pids.append(int(proc.name))
    return pids


def _set_affinity(pids: list[int], cpus: str) -> None:
    for pid in pids:
        # A backend may end meanwhile; its siblings are still pinned.
        subprocess.run(["taskset", "-a", "-p", "-c", cpus, str(pid)], capture_output=True, check=False)


@contextlib.contextmanager
def postgres_on(cpus: str | None) -> Iterator[None]:
    """Every running PostgreSQL process on `cpus` (backends forked meanwhile inherit the
    postmaster's), and on every CPU again afterwards. Nothing when `cpus` is None, or when the
    database runs elsewhere (no local postgres process)."""
    pids = _postgres_pids() if cpus is not None else []
    if not pids:
        if cpus is not None:
            log("no local PostgreSQL process to pin: the database keeps the CPUs it has")
        yield
        return
    _set_affinity(pids, cpus)
    log(f"PostgreSQL's {len(pids)} processes pinned to CPU {cpus}")
    try:
        yield
    finally:
        _set_affinity(_postgres_pids(), _cpu_range(0, (os.cpu_count() or 1) - 1))


# --- results ------------------------------------------------------------------------------------

HEADER = (
    "| date | code | machine | db | benchmark | figures | server / config |\n"
    "| --- | --- | --- | --- | --- | --- | --- |\n"
)


def append_result(db: str, benchmark: str, figures: str, config: str, m: dict[str, Any] | None = None) -> str:
    """Append one dated row to bench/RESULTS.md (creating the table if needed)."""
    m = m or machine()
    if not RESULTS.exists():
        RESULTS.write_text(
            "# UnionHome benchmark results\n\nOne row per run, appended by the scripts in bench/ "
            "(see bench/README.md). Latencies in ms.\n\n" + HEADER,
            encoding="utf-8",
        )
    row = f"| {m['date']} | {m['commit']} | {machine_str(m)} | {db} | {benchmark} | {figures} | {config} |\n"
    with RESULTS.open("a", encoding="utf-8") as f:
        f.write(row)
    return row


# --- Django snippets in the bench database --------------------------------------------------------


def django_shell(env: dict[str, str], code: str, *, timeout: float = 1800) -> str:
    """Run Python in `manage.py shell -c` against the bench database (same env as the server)."""
    return manage(env, "shell", "-c", code, timeout=timeout)


_ISSUE_TOKENS = """
import json, sys
from pathlib import Path
from accounts.models import User
from accounts.services import issue_token
ids = json.loads(Path({path!r}).read_text())
users = {{u.pk: u for u in User.objects.filter(pk__in=ids)}}
print("TOKENS " + json.dumps([issue_token(users[i])[0] for i in ids]))
"""


def issue_tokens(env: dict[str, str], user_ids: list[int]) -> list[str]:
    """Bearer tokens minted directly in the database (accounts.services.issue_token), in the
    order of user_ids: thousands in seconds, where password logins cost ~0.3 s each."""
    t = time.monotonic()
    # The ids go through a file: tens of thousands of them overflow a command line.
    OUT.mkdir(parents=True, exist_ok=True)
    ids_file = OUT / f"token-ids-{os.getpid()}.json"
    ids_file.write_text(json.dumps(user_ids))
    try:
        out = django_shell(env, _ISSUE_TOKENS.format(path=str(ids_file)))
    finally:
        ids_file.unlink(missing_ok=True)
    line = next(ln for ln in out.splitlines() if ln.startswith("TOKENS "))
    tokens = json.loads(line[len("TOKENS ") :])
    log(f"{len(tokens)} tokens issued in the database in {time.monotonic() - t:.1f} s")
    return tokens
