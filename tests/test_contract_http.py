"""The API contract against a REAL production server: gunicorn, DEBUG off, its own seeded database.

Runs on SQLite by default (a temp file); when DATABASE_URL is set (the PostgreSQL pass) the server
gets its own database on that PostgreSQL, created and dropped by tests/prodserver.py.
Many requests come from a thread pool at once; none may be a 500, and no response body or
server log line may carry a full phone number.
"""

from __future__ import annotations

import time
import uuid

import pytest

from tests.helpers import HEADER, good_rows, xlsx_bytes
from tests.prodserver import Response, production_server
from tests.prodserver import in_parallel as _in_parallel

pytestmark = pytest.mark.server

THREADS = 16
SEED_MEMBERS = 500


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with production_server(tmp_path_factory.mktemp("contract"), seed_members=SEED_MEMBERS) as srv:
        yield srv


def in_parallel(fn, items, threads: int = THREADS) -> list:
    return _in_parallel(fn, items, threads)


def assert_error(r: Response, status: int, code: str) -> dict:
    assert r.status == status, (r.status, r.body[:500])
    body = r.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    return body["error"]


@pytest.fixture(scope="module")
def tokens(server):
    """Tokens for the district admin and the first cadres, signed in concurrently."""
    c = server.creds
    people = [("district_admin", c["district_admin"]["phone"])] + [
        (f"cadre{i}", cadre["phone"]) for i, cadre in enumerate(c["cadres"][:6])
    ]
    got = in_parallel(lambda p: (p[0], server.token(p[1])), people)
    return dict(got)


# --- the tests -------------------------------------------------------------------------------------


def test_health_answers_under_concurrent_load(server):
    results = in_parallel(lambda _: server.get("/api/v1/health"), range(200))
    assert all(r.status == 200 and r.json() == {"status": "ok"} for r in results)


def test_production_mode_is_on(server):
    r = server.get("/api/v1/nope")
    assert_error(r, 404, "not_found")
    assert b"Traceback" not in r.body and b"DEBUG" not in r.body
    assert r.headers.get("x-content-type-options") == "nosniff"
    # A host outside ALLOWED_HOSTS is refused (not a 500).
    r = server.get("/api/v1/health", headers={"Host": "evil.example"})
    assert r.status == 400


def test_cadres_sign_in_and_me_shows_their_roles(server, tokens):
    c = server.creds
    me = server.get("/api/v1/me", token=tokens["district_admin"]).json()
    assert set(me) == {"id", "name", "phone_masked", "certified", "org", "roles", "points_balance"}
    assert {"org_id": c["district_admin"]["org_id"], "role": "admin"} in me["roles"]
    phone = c["district_admin"]["phone"]
    assert me["phone_masked"] == phone[:3] + "****" + phone[-4:]

    def me_of(i):
        return i, server.get("/api/v1/me", token=tokens[f"cadre{i}"])

    for i, r in in_parallel(me_of, range(6)):
        assert r.status == 200
        cadre = c["cadres"][i]
        assert {"org_id": cadre["org_id"], "role": cadre["role"]} in r.json()["roles"]


def test_the_member_list_pages_through_the_whole_district(server, tokens):
    root = server.creds["district_admin"]["org_id"]
    tok = tokens["district_admin"]
    first = server.get(f"/api/v1/orgs/{root}/members?page_size=200", token=tok).json()
    count = first["count"]
    assert count >= SEED_MEMBERS
    assert len(first["items"]) == 200
    assert set(first["items"][0]) == {"id", "name", "phone_masked", "id_number_masked", "certified", "org_id"}
    pages = (count + 199) // 200
    results = in_parallel(
        lambda p: server.get(f"/api/v1/orgs/{root}/members?page={p}&page_size=200", token=tok), range(1, pages + 1)
    )
    ids = [i["id"] for r in results for i in r.json()["items"]]
    assert all(r.status == 200 for r in results)
    assert len(ids) == count == len(set(ids))
    capped = server.get(f"/api/v1/orgs/{root}/members?page_size=5000", token=tok).json()
    assert len(capped["items"]) == 200


def test_scopes_do_not_cross_subtrees(server, tokens):
    c = server.creds
    admins = [(i, cadre) for i, cadre in enumerate(c["cadres"][:6]) if cadre["role"] == "admin"][:3]
    assert len(admins) >= 2

    def probe(pair):
        (i, mine), (_, other) = pair
        tok = tokens[f"cadre{i}"]
        return (
            server.get(f"/api/v1/orgs/{mine['org_id']}/members", token=tok),
            server.get(f"/api/v1/orgs/{other['org_id']}/members", token=tok),
            server.get(f"/api/v1/orgs/{other['org_id']}", token=tok),
        )

    pairs = [(a, b) for a in admins for b in admins if a[0] != b[0] and a[1]["org_id"] != b[1]["org_id"]]
    for own, foreign, detail in in_parallel(probe, pairs * 3):
        assert own.status == 200
        assert_error(foreign, 404, "not_found")
        assert detail.status == 200  # any signed-in user may read an org itself
    member_tok = server.token(c["members"][0]["phone"])
    assert_error(server.get(f"/api/v1/orgs/{c['members'][0]['org_id']}/members", token=member_tok), 404, "not_found")
    assert_error(server.get(f"/api/v1/orgs/{c['district_admin']['org_id']}/members"), 401, "not_authenticated")


def test_bad_requests_have_the_documented_shapes(server, tokens):
    cases = [
        ("POST", "/api/v1/auth/token", '{"phone": ', 400, "bad_request"),
        ("POST", "/api/v1/auth/token", {}, 422, "invalid"),
        ("POST", "/api/v1/auth/token", {"phone": 1, "password": []}, 422, "invalid"),
        ("POST", "/api/v1/orgs", {"parent_id": "x"}, 422, "invalid"),
        ("GET", "/api/v1/me", None, 401, "not_authenticated"),
        ("GET", "/api/v1/orgs/99999999/children", None, 404, "not_found"),
        ("GET", f"/api/v1/orgs/{server.creds['district_admin']['org_id']}/children?page=abc", None, 422, "invalid"),
    ]

    def call(case):
        method, path, body, _, _ = case
        tok = None if path == "/api/v1/me" else tokens["district_admin"]
        return case, server.request(method, path, body, token=tok)

    for (_, path, _, status, code), r in in_parallel(call, cases * 5):
        err = assert_error(r, status, code)
        if status == 422 and path.endswith("/token") and code == "invalid":
            assert set(err["fields"]) == {"phone", "password"}
        if path == "/api/v1/orgs":
            assert set(err["fields"]) == {"parent_id", "name", "kind"}


def test_five_failures_throttle_one_phone_with_retry_after(server):
    c = server.creds
    victim = c["members"][-1]["phone"]
    bystander = c["members"][-2]["phone"]
    failures = in_parallel(
        lambda _: server.post("/api/v1/auth/token", {"phone": victim, "password": "wrong"}), range(5)
    )
    assert {r.status for r in failures} <= {401, 429}
    assert sum(r.status == 401 for r in failures) >= 1
    r = server.post("/api/v1/auth/token", {"phone": victim, "password": c["password"]})
    assert_error(r, 429, "too_many_attempts")
    assert 1 <= int(r.headers["retry-after"]) <= 901
    # Another phone from the same address still signs in.
    assert server.post("/api/v1/auth/token", {"phone": bystander, "password": c["password"]}).status == 200


def _multipart(filename: str, content: bytes) -> tuple[bytes, str]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f"--{boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: application/vnd.openxmlformats-officedocument.spreadsheetml.sheet\r\n\r\n"
        ).encode()
        + content
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


IMPORTED_PHONES: list[str] = []


def test_importing_a_small_roster_over_multipart(server, tokens):
    c = server.creds
    grassroots = next(m["org_id"] for m in c["members"])
    tok = tokens["district_admin"]
    rows = good_rows(5, "契约")
    IMPORTED_PHONES.extend(r[1] for r in rows)
    content = xlsx_bytes([HEADER, *rows, ["坏行", "123", "1", "", "", ""]])
    body, ctype = _multipart("花名册.xlsx", content)
    url = f"/api/v1/orgs/{grassroots}/members/import"
    before = server.get(f"/api/v1/orgs/{grassroots}/members?direct=1", token=tok).json()["count"]

    dry = server.post(url + "?dry_run=1", body, token=tok, headers={"Content-Type": ctype})
    assert dry.status == 200, dry.body
    r = server.post(url, body, token=tok, headers={"Content-Type": ctype})
    assert r.status == 200, r.body
    got = r.json()
    assert got == dry.json()
    assert (got["created"], got["updated"], got["unchanged"]) == (5, 0, 0)
    assert {(e["row"], e["code"]) for e in got["errors"]} == {(7, "invalid_phone"), (7, "invalid_length")}
    after = server.get(f"/api/v1/orgs/{grassroots}/members?direct=1&page_size=200", token=tok).json()
    assert after["count"] == before + 5
    # The same file again, from several threads at once: nothing is created twice.
    again = in_parallel(lambda _: server.post(url, body, token=tok, headers={"Content-Type": ctype}), range(4), 4)
    for a in again:
        assert a.status == 200, a.body
        assert a.json()["created"] == 0 and a.json()["unchanged"] == 5
    assert server.get(f"/api/v1/orgs/{grassroots}/members?direct=1", token=tok).json()["count"] == before + 5
    # A wrong file is a specific 422.
    bad, bad_type = _multipart("roster.csv", b"a,b,c\n")
    assert_error(server.post(url, bad, token=tok, headers={"Content-Type": bad_type}), 422, "invalid_file_type")


def test_a_mixed_rush_from_many_threads_has_no_500(server, tokens):
    c = server.creds
    root = c["district_admin"]["org_id"]
    tok = tokens["district_admin"]
    paths = [
        ("GET", "/api/v1/health", None, None),
        ("GET", "/api/v1/me", None, tok),
        ("GET", f"/api/v1/orgs/{root}", None, tok),
        ("GET", f"/api/v1/orgs/{root}/children?page_size=20", None, tok),
        ("GET", f"/api/v1/orgs/{root}/members?page=3&page_size=50", None, tok),
        ("GET", f"/api/v1/orgs/{c['cadres'][0]['org_id']}/members", None, tokens["cadre1"]),
        ("POST", "/api/v1/auth/token", {"phone": "13000000000", "password": "x"}, None),
        ("POST", "/api/v1/auth/token", "not json", None),
    ]
    results = in_parallel(
        lambda i: server.request(*paths[i % len(paths)][:3], token=paths[i % len(paths)][3]), range(320)
    )
    assert all(r.status < 500 for r in results), [r.body[:200] for r in results if r.status >= 500]


def test_no_response_was_a_500_and_no_full_phone_leaked(server):
    assert server.seen, "the tests above made requests"
    assert len(server.seen) > 300
    fives = [(m, p, s) for m, p, s, _ in server.seen if s >= 500]
    assert not fives
    c = server.creds
    phones = (
        [c["district_admin"]["phone"]]
        + [x["phone"] for x in c["cadres"]]
        + [x["phone"] for x in c["members"]]
        + [x["phone"] for x in c["followers"]]
        + IMPORTED_PHONES
    )
    assert len(phones) > 900
    bodies = b"\n".join(body for *_, body in server.seen).decode("utf-8", errors="replace")
    time.sleep(0.5)  # let the server flush its log
    log = server.log_path.read_text(encoding="utf-8", errors="replace")
    assert '"POST /api/v1/auth/token' in log and '"GET /api/v1/me' in log  # the access log was captured
    # The log holds the seeding run's output too; only phones matter, not its length.
    assert " 500 " not in "\n".join(line for line in log.splitlines() if '"GET ' in line or '"POST ' in line)
    for phone in phones:
        assert phone not in bodies, "a full phone number in a response body"
        assert phone not in log, "a full phone number in the server log"
