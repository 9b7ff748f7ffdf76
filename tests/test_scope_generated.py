"""The scope matrix, generated from the URL resolver and the API's OpenAPI schema (ARCHITECTURE rule 1).

Every route of the four ends (/m/, /c/, /console/, the portal) and every API operation under
/api/v1/ that takes an object id is called, with that id naming an object of street B's union B1,
by four outsiders: a cadre of the sibling subtree (admin_a, role on street A), a certified member
of union A1, a follower (signed in, no membership) and an anonymous client. None of them may learn
anything: the API answers 404 (401 to the anonymous client; 403 `not_eligible` only where API.md
names it), a page answers 404, or sends the visitor to a login page, or shows the end's gate (403
for a signed-in person without the end's role) exactly as it does for a missing id.

The routes are enumerated at run time, so a new route cannot be missed: a route whose id parameter
has no object in OBJECTS fails with "route X: add an object for parameter Y to the matrix", and a
route that anyone may read by contract must be named in PUBLIC with the reason.

POST (and PUT/PATCH/DELETE for the API) is sent with an empty body and, for JSON operations, with
a minimal body built from the operation's schema; an outsider must get the same answer either way:
the scope is checked before the body.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import pytest
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils import timezone

from conftest import District, make_cadre, make_user

MISSING_ID = 987654321
ACTORS = ("sibling_cadre", "member_a1", "follower", "anonymous")
LOGIN_PATHS = ("/m/login/", "/c/login/", "/console/login/", "/console/login/code/")
PAGE_METHODS = ("GET", "POST")

# --- which object each id parameter names -------------------------------------------------------
# Keyed "end:segment:param": the literal path segment just before the parameter (after the string
# parameters below are filled in). The value names an attribute of World.

OBJECTS = {
    # member end /m/
    "member:mall:pk": "reward",
    "member:redemptions:pk": "redemption",
    "member:transfer:pk": "transfer",
    "member:lotteries:pk": "lottery",
    "member:polls:pk": "poll",
    "member:options:option_id": "poll_option",
    "member:elections:pk": "election",
    "member:activities:pk": "activity",
    "member:notices:pk": "notice",
    "member:clubs:pk": "club",
    "member:requests:user_id": "club_requester",
    "member:members:user_id": "club_member",
    "member:live:pk": "live",
    # cadre end /c/
    "cadre:joins:pk": "join_application",
    "cadre:certifications:pk": "certification_review",
    "cadre:transfers:pk": "transfer",
    "cadre:judge:pk": "contest",
    "cadre:options:option_id": "contest_option",
    "cadre:activities:pk": "activity",
    # console /console/
    "console:orgs:org_id": "org",
    "console:members:member_id": "member",
    "console:imports:job_id": "import_job",
    "console:cadres:cadre_id": "cadre_role",
    "console:join:pk": "join_application",
    "console:certification:pk": "certification_review",
    "console:transfer:pk": "transfer",
    "console:verifiers:verifier_id": "verifier",
    "console:mall:reward_id": "reward",
    "console:redemptions:redemption_id": "redemption",
    "console:polls:pk": "poll",
    "console:options:option_id": "poll_option",
    "console:elections:election_id": "election",
    "console:proposals:pk": "proposal",
    "console:activities:pk": "activity",
    "console:clubs:club_id": "club",
    "console:live:session_id": "live",
    # portal /
    "portal:lotteries:pk": "lottery",
    "portal:polls:pk": "poll",
    "portal:options:option_id": "poll_option",
    "portal:elections:pk": "election",
    # API /api/v1/
    "api:orgs:org_id": "org",
    "api:imports:job_id": "import_job",
    "api:activities:activity_id": "activity",
    "api:polls:poll_id": "poll",
    "api:rewards:reward_id": "reward",
    "api:redemptions:redemption_id": "redemption",
    "api:lotteries:lottery_id": "lottery",
    "api:elections:election_id": "election",
    "api:clubs:club_id": "club",
    "api:live:session_id": "live",
}

# Routes whose id names a more particular object than the generic rule gives (a contest's pages, a
# proposal's decision, a proposed club's decision): "route|param" → World attribute.
OVERRIDES = {
    "c/activities/<int:pk>/decide/|pk": "proposal",
    "c/activities/<int:pk>/review/|pk": "proposal",
    "console/polls/<int:pk>/criteria/|pk": "contest",
    "console/polls/<int:pk>/judges/|pk": "contest",
    "console/polls/<int:pk>/ranking/|pk": "contest",
    "console/polls/<int:pk>/publish/|pk": "contest",
    "console/clubs/<int:club_id>/decide/|club_id": "proposed_club",
    "/api/v1/activities/{activity_id}/decision|activity_id": "proposal",
    "/api/v1/polls/{poll_id}/judges|poll_id": "contest",
    "/api/v1/polls/{poll_id}/criteria|poll_id": "contest",
    "/api/v1/polls/{poll_id}/scores|poll_id": "contest",
    "/api/v1/polls/{poll_id}/ranking|poll_id": "contest",
    "/api/v1/polls/{poll_id}/awards|poll_id": "contest",
    "/api/v1/clubs/{club_id}/decision|club_id": "proposed_club",
}


def _org_actions() -> list[str]:
    from ends.console.views.orgs import ORG_ACTIONS

    return sorted(ORG_ACTIONS)


# String parameters: every value the view accepts ("route|param" → values).
STRINGS = {
    "console/orgs/<int:org_id>/<str:action>/|action": _org_actions,
    "console/requests/<str:kind>/<int:pk>/|kind": lambda: ["join", "certification", "transfer"],
}

# Routes anyone may read by contract: outsiders get 200 here. "route" → (who, reason). Each is
# checked not to show what its contract keeps back (see _check_public).
PUBLIC = {
    "GET /api/v1/orgs/{org_id}": ("signed in", "API.md: anyone signed in reads an org's id, name, kind and parent"),
    "GET /api/v1/orgs/{org_id}/children": ("signed in", "API.md: anyone signed in lists an org's children"),
    "lotteries/<int:pk>/": ("anyone", "a lottery's public record: entries (masked) and the seed's commitment"),
    "lotteries/<int:pk>/record.json": ("anyone", "a lottery's public record, for verify_lottery"),
    "GET /api/v1/lotteries/{lottery_id}/record": ("anyone", "a lottery's public record, for verify_lottery"),
}

# Public records: anyone, signed in or not, reads them once the poll or election is sealed. The
# world's objects are open, so each must answer 404 to everyone (no receipts, no tally, no
# turnout before the close).
PUBLIC_WHEN_SEALED = {
    "polls/<int:pk>/": "a sealed poll's tally",
    "polls/<int:pk>/receipts/": "a sealed poll's receipts",
    "polls/<int:pk>/recount/": "a sealed poll's recount",
    "polls/<int:pk>/record.json": "a sealed poll's record",
    "polls/<int:pk>/options/<int:option_id>/photo/": "a sealed poll's candidate photos",
    "elections/<int:pk>/": "a closed election's record",
    "elections/<int:pk>/recount/": "a closed election's recount",
    "elections/<int:pk>/record.json": "a closed election's record",
    "GET /api/v1/polls/{poll_id}/receipts": "a sealed poll's receipts",
    "GET /api/v1/elections/{election_id}/record": "a closed election's record",
    "GET /api/v1/elections/{election_id}/recount": "a closed election's recount",
}

# API.md names 403 `not_eligible` for these writes (a signed-in person the object is not for).
NOT_ELIGIBLE_403 = {
    "POST /api/v1/polls/{poll_id}/ballots",
    "POST /api/v1/elections/{election_id}/ballots",
    "POST /api/v1/activities/{activity_id}/signups",
    "POST /api/v1/rewards/{reward_id}/redemptions",
}

# Pages that send a signed-in visitor somewhere other than a login page for any id they may not
# open, the same for a missing id (nothing is learnt): "route" → reason.
SAME_AS_MISSING_REDIRECT = {
    "m/notices/<int:pk>/": "a notice not the visitor's own goes back to their notices list, as a missing one",
    "m/redemptions/<int:pk>/cancel/": "back to the visitor's redemptions with 'not found', as a missing one",
    "m/transfer/<int:pk>/cancel/": "back to the visitor's transfer page with 'not found', as a missing one",
}

# --- enumeration --------------------------------------------------------------------------------


@dataclass
class Case:
    end: str  # member, cadre, console, portal, api
    route: str  # the resolver's pattern ("m/polls/<int:pk>/") or the API path ("/api/v1/polls/{poll_id}")
    method: str
    params: dict[str, str] = field(default_factory=dict)  # param → World attribute (ints)
    strings: dict[str, str] = field(default_factory=dict)  # param → value (strs)
    missing: list[str] = field(default_factory=list)  # params with no object: the case fails
    body: str = ""  # "", "empty", "minimal"
    json_body: dict | None = None
    public: bool = False  # API operation without auth

    @property
    def display(self) -> str:
        r = self.route if self.end == "api" else "/" + self.route
        for k, v in self.strings.items():
            r = r.replace(f"<str:{k}>", v)
        return f"{self.method} {r}" + (f" ({self.body} body)" if self.body == "minimal" else "")

    @property
    def key(self) -> str:
        return f"{self.method} {self.route}" if self.end == "api" else self.route


def _walk(patterns, prefix=""):
    for p in patterns:
        if isinstance(p, URLResolver):
            yield from _walk(p.url_patterns, prefix + str(p.pattern))
        elif isinstance(p, URLPattern):
            yield prefix + str(p.pattern), p


PARAM = re.compile(r"<(?:(\w+):)?(\w+)>")


def _end_of(route: str) -> str | None:
    if route.startswith(("api/", "^api/", "^media/", "i18n/", "dev/")):
        return None
    for prefix, end in (("m/", "member"), ("c/", "cadre"), ("console/", "console")):
        if route.startswith(prefix):
            return end
    return "portal"


def _object_for(end: str, route: str, filled: str, param: str) -> str | None:
    """The World attribute for `param` of `route` (filled: the route with its strings filled in)."""
    override = OVERRIDES.get(f"{route}|{param}")
    if override:
        return override
    m = re.search(r"([^/{}<>]+)/(?:<int:|\{)" + param + r"[>}]", filled)
    return OBJECTS.get(f"{end}:{m.group(1) if m else ''}:{param}")


def page_cases() -> list[Case]:
    cases = []
    for route, _p in _walk(get_resolver().url_patterns):
        end = _end_of(route)
        params = PARAM.findall(route)
        if end is None or not any(conv == "int" for conv, _ in params):
            continue
        variants: list[dict[str, str]] = [{}]
        missing: list[str] = []
        for conv, name in params:
            if conv != "int":
                values = STRINGS.get(f"{route}|{name}")
                if values is None:
                    missing.append(name)
                    continue
                variants = [{**v, name: s} for v in variants for s in values()]
        for strings in variants:
            filled = route
            for k, v in strings.items():
                filled = filled.replace(f"<str:{k}>", v)
            objs, miss = {}, list(missing)
            for conv, name in params:
                if conv == "int":
                    obj = _object_for(end, route, filled, name)
                    if obj is None:
                        miss.append(name)
                    else:
                        objs[name] = obj
            for method in PAGE_METHODS:
                cases.append(Case(end, route, method, objs, strings, miss))
    return cases


def _schema_example(schema: dict, defs: dict, depth: int = 0):
    """A minimal value that the JSON schema accepts (required properties only)."""
    if "$ref" in schema:
        return _schema_example(defs[schema["$ref"].rsplit("/", 1)[-1]], defs, depth)
    for combo in ("allOf", "anyOf", "oneOf"):
        if combo in schema:
            options = [s for s in schema[combo] if s.get("type") != "null"] or schema[combo]
            return _schema_example(options[0], defs, depth)
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    kind = schema.get("type", "object")
    if kind == "object":
        props = schema.get("properties", {})
        return {k: _schema_example(props.get(k, {}), defs, depth + 1) for k in schema.get("required", [])}
    if kind == "array":
        n = schema.get("minItems", 0)
        return [_schema_example(schema.get("items", {}), defs, depth + 1) for _ in range(n)]
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return 1
    if kind == "boolean":
        return False
    if schema.get("format") == "date-time":
        return (timezone.now() + dt.timedelta(days=1)).isoformat()
    if schema.get("format") == "date":
        return timezone.now().date().isoformat()
    return "x" * max(1, schema.get("minLength", 1))


def api_schema() -> dict:
    from api.api import api

    return api.get_openapi_schema(path_prefix="/api/v1")


def api_cases() -> list[Case]:
    schema = api_schema()
    defs = schema.get("components", {}).get("schemas", {})
    cases = []
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            ints = [p["name"] for p in op.get("parameters", []) if p["in"] == "path"]
            if not ints:
                continue
            objs, missing = {}, []
            for name in ints:
                obj = _object_for("api", path, path, name)
                (objs.__setitem__(name, obj) if obj else missing.append(name))
            public = not op.get("security")
            common = dict(end="api", route=path, method=method.upper(), params=objs, missing=missing, public=public)
            if method == "get":
                cases.append(Case(**common))
                continue
            cases.append(Case(**common, body="empty"))
            content = (op.get("requestBody") or {}).get("content", {})
            if "application/json" in content:
                example = _schema_example(content["application/json"]["schema"], defs)
                cases.append(Case(**common, body="minimal", json_body=example))
    return cases


def all_cases() -> list[Case]:
    return page_cases() + api_cases()


def _id(case: Case, actor: str) -> str:
    return f"{case.display} as {actor}"


def _params():
    out = []
    for case in all_cases():
        for actor in ACTORS:
            out.append(pytest.param(case, actor, id=_id(case, actor)))
    return out


# --- the world: one object of every kind in union B1 / street B ----------------------------------


class World(District):
    def __init__(self):
        super().__init__()
        from activities.services import activities as acts
        from activities.services import signups
        from clubs.services import clubs
        from elections.tests import builders as eb
        from live.models import LiveSession
        from members import services as members
        from members.models import CertificationReview, ImportJob
        from notifications.models import Notification
        from notifications.services import notices
        from orgs.models import CadreRole
        from points.services import budgets
        from points.tests.helpers import fund
        from rewards.services import lottery, mall, verifiers
        from votes.tests import builders as vb

        now = timezone.now()
        b1, admin_b = self.union_b1, self.admin_b
        # the outsiders
        self.member_a1_user = vb.member(self.union_a1, "甲一会员").user
        self.follower_user = make_user("关注者")
        # people of union B1
        m = vb.member(b1, "乙一会员")
        self.member = m.pk
        self.org = b1.pk
        proposer = vb.member(b1, "乙一发起人").user
        requester = vb.member(b1, "乙一申请人").user
        roster = vb.member(b1, "乙一名册", certified=False)
        # cadres and helpers of B1
        chair = make_cadre(b1, "admin", "乙一主席")
        self.cadre_role = CadreRole.objects.get(user=chair, org=b1).pk
        self.verifier = verifiers.add_verifier(admin_b, b1.pk, make_user("乙一商户").phone, "乙一商户").pk
        self.import_job = ImportJob.objects.create(org=b1, actor=admin_b, filename="名册.xlsx").pk
        # members' requests decided by B1's cadres
        self.join_application = members.apply_to_join(make_user("申请入会"), b1, "申请人", _id_number()).pk
        self.transfer = members.request_transfer(vb.member(b1, "转出人").user, self.street_b, "工作调动").pk
        self.certification_review = CertificationReview.objects.create(
            user=make_user("认证人"), member=roster, org=b1
        ).pk
        notices.notify([m.user_id], kind="test.scope", title="乙一通知", url="/m/")
        self.notice = Notification.objects.filter(user_id=m.user_id).latest("id").pk
        # votes
        poll = vb.poll(admin_b, b1, title="乙一投票")
        self.poll, self.poll_option = poll.pk, vb.option_ids(poll)[0]
        contest = vb.poll(
            admin_b, b1, kind="contest", title="乙一大赛", vote_weight=40, prize_tiers=[{"name": "一等奖", "count": 1}]
        )
        self.contest, self.contest_option = contest.pk, vb.option_ids(contest)[0]
        self.election = eb.election(admin_b, b1).pk
        # activities
        activity = acts.create_activity(
            admin_b,
            b1,
            title="乙一羽毛球赛",
            starts_at=now + dt.timedelta(days=2),
            ends_at=now + dt.timedelta(days=2, hours=3),
            capacity=5,
        )
        self.activity = activity.pk
        signups.sign_up(m.user, activity.pk)
        self.proposal = acts.create_activity(
            m.user,
            b1,
            title="乙一会员提议",
            starts_at=now + dt.timedelta(days=3),
            ends_at=now + dt.timedelta(days=3, hours=2),
            capacity=5,
        ).pk
        # clubs
        club = clubs.propose(proposer, name="乙一登山联盟", description="每月一次", join_policy="approval")
        clubs.decide(admin_b, club.pk, approve=True)
        clubs.join(requester, club.pk)
        self.club, self.club_member, self.club_requester = club.pk, proposer.pk, requester.pk
        self.proposed_club = clubs.propose(requester, name="乙一读书会", description="每周一本书").pk
        # live
        self.live = LiveSession.objects.create(
            org=b1,
            title="乙一讲座",
            speaker="王老师",
            stream_url="https://live.example.com/app/b1.m3u8",
            starts_at=now + dt.timedelta(hours=1),
            ends_at=now + dt.timedelta(hours=2),
            created_by=admin_b,
        ).pk
        # points: B1's budget, a member's balance, a reward, a redemption, a lottery
        fund(b1, 10_000, self.district_admin)
        budgets.grant(admin_b, b1, [m.user_id], 1_000, "测试发放")
        reward = mall.create_reward(admin_b, b1, title="乙一保温杯", cost=10, stock=5)
        self.reward = reward.pk
        self.redemption = mall.redeem(m.user, reward.pk).pk
        self.lottery = lottery.create_lottery(
            admin_b,
            b1,
            title="乙一抽奖",
            entry_cost=10,
            prizes=[("一等奖", 1)],
            opens_at=now - dt.timedelta(hours=1),
            closes_at=now + dt.timedelta(days=1),
        ).pk


def _id_number() -> str:
    from conftest import unique_id_number

    return unique_id_number()


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker):
    """One world for the whole module, inside a transaction rolled back at its end; each test runs
    in a savepoint of its own (the `db` fixture), so a leaking write cannot reach the next test."""
    from accounts.services import issue_token
    from conftest import forget_remembered_reads

    with django_db_blocker.unblock():
        outer = transaction.atomic()
        outer.__enter__()
        try:
            forget_remembered_reads()
            w = World()
            w.users = {"sibling_cadre": w.admin_a, "member_a1": w.member_a1_user, "follower": w.follower_user}
            w.tokens = {name: issue_token(u)[0] for name, u in w.users.items()}
            w.pages = {"anonymous": Client()}
            for name, u in w.users.items():
                w.pages[name] = Client()
                w.pages[name].force_login(u)  # a full console sign-in (conftest), second factor included
            yield w
        finally:
            transaction.set_rollback(True)
            outer.__exit__(None, None, None)


# --- calling a route ----------------------------------------------------------------------------


def _url(case: Case, values: dict[str, int]) -> str:
    if case.end == "api":
        url = case.route
        for k, v in values.items():
            url = url.replace("{" + k + "}", str(v))
        return url
    url = "/" + case.route
    for k, v in values.items():
        url = url.replace(f"<int:{k}>", str(v))
    for k, v in case.strings.items():
        url = url.replace(f"<str:{k}>", v)
    return url


def _call(world: World, case: Case, actor: str, values: dict[str, int]):
    url = _url(case, values)
    if case.end == "api":
        client = Client()
        headers = {"HTTP_AUTHORIZATION": f"Bearer {world.tokens[actor]}"} if actor != "anonymous" else {}
        method = getattr(client, case.method.lower())
        if case.method == "GET":
            return method(url, **headers)
        data = case.json_body if case.body == "minimal" else {}
        return method(url, data, content_type="application/json", **headers)
    client = world.pages[actor]
    return client.get(url) if case.method == "GET" else client.post(url, {})


def _location(response) -> str:
    return urlsplit(response.get("Location", "")).path


def _describe(r) -> str:
    body = r.content[:300].decode("utf-8", "replace")
    where = f" → {r['Location']}" if r.has_header("Location") else ""
    return f"{r.status_code}{where} {body!r}"


# --- the tests ----------------------------------------------------------------------------------


def test_every_api_route_with_an_id_is_in_the_schema():
    """The matrix reads API operations from the OpenAPI schema: a route hidden from it would be missed."""
    schema_paths = {re.sub(r"\{(\w+)\}", r"<int:\1>", p.removeprefix("/api/v1")) for p in api_schema()["paths"]}
    resolved = {
        "/" + r.removeprefix("api/v1/") for r, _ in _walk(get_resolver().url_patterns) if r.startswith("api/v1/")
    }
    hidden = sorted(r for r in resolved if "<int:" in r and r not in schema_paths)
    assert not hidden, f"API routes missing from the OpenAPI schema, so from the matrix: {hidden}"


def test_the_allowlists_name_routes_that_exist():
    keys = {c.key for c in all_cases()}
    named = [*PUBLIC, *PUBLIC_WHEN_SEALED, *NOT_ELIGIBLE_403, *SAME_AS_MISSING_REDIRECT]
    stale = [k for k in named if k not in keys]
    stale += [k.split("|")[0] for k in [*OVERRIDES, *STRINGS] if k.split("|")[0] not in {c.route for c in all_cases()}]
    assert not stale, f"allowlist entries naming no route: {stale}"


@pytest.mark.parametrize(("case", "actor"), _params())
def test_an_outsider_learns_nothing_about_another_subtrees_object(world, db, case: Case, actor: str):
    for name in case.missing:
        pytest.fail(f"route {case.route}: add an object for parameter {name} to the matrix (OBJECTS in {__name__})")
    for name, attr in case.params.items():
        if not hasattr(world, attr):
            pytest.fail(f"route {case.route}: add an object for parameter {name} to the matrix (World.{attr})")
    values = {name: getattr(world, attr) for name, attr in case.params.items()}
    r = _call(world, case, actor, values)
    what = f"{case.display} as {actor} with {values}: {_describe(r)}"
    assert r.status_code < 500, "server error: " + what
    if case.key in PUBLIC and (actor != "anonymous" or PUBLIC[case.key][0] == "anyone"):
        _check_public(world, case, r, what)
        return
    if case.end == "api":
        _check_api(world, case, actor, r, what)
    else:
        _check_page(world, case, actor, r, what)


def _check_public(world: World, case: Case, r, what: str) -> None:
    """A public route answers, and shows no more than its contract: an org's own fields; a lottery
    that has not been drawn without its seed."""
    assert r.status_code == 200, what
    if "/orgs/" in case.route:
        body = r.json()
        items = body.get("items", [body])
        assert all(set(i) <= {"id", "name", "kind", "parent_id", "is_active"} for i in items), what
        return
    record = r.json() if r["Content-Type"].startswith("application/json") else r.context["record"]
    assert record["id"] == world.lottery and record.get("seed") is None, "an undrawn lottery's seed: " + what
    assert not record.get("winners"), what


def _check_api(world: World, case: Case, actor: str, r, what: str) -> None:
    if r.status_code == 404:
        assert r.json()["error"]["code"] == "not_found", what
        return
    if actor == "anonymous" and not case.public:
        assert r.status_code == 401, what
        return
    if r.status_code == 403 and case.key in NOT_ELIGIBLE_403:
        assert r.json()["error"]["code"] == "not_eligible", what
        return
    if r.status_code == 422:
        # django-ninja validates the body before the view runs, so a bad body is refused before the
        # scope is checked. Allowed only when the answer is exactly that for an id naming nothing.
        missing = _call(world, case, actor, {name: MISSING_ID for name in case.params})
        assert (missing.status_code, missing.json()["error"]) == (422, r.json()["error"]), (
            f"a 422 that differs from a missing id's ({_describe(missing)}): " + what
        )
        return
    assert r.status_code == 403, "leak or wrong status (expected 404): " + what
    # A gate before any lookup (e.g. 403 not_a_member for joining a club as a follower): the same
    # answer as for an id that names nothing.
    missing = _call(world, case, actor, {name: MISSING_ID for name in case.params})
    assert (missing.status_code, missing.json()["error"]["code"]) == (403, r.json()["error"]["code"]), (
        f"answers differ from a missing id's ({_describe(missing)}): " + what
    )


def _check_page(world: World, case: Case, actor: str, r, what: str) -> None:
    if r.status_code == 404:
        return
    if r.status_code in (301, 302) and _location(r) in LOGIN_PATHS:
        return
    assert r.status_code in (302, 403, 405), "leak or wrong status (expected 404 or a login page): " + what
    if r.status_code == 302:
        assert case.key in SAME_AS_MISSING_REDIRECT, "redirect to a non-login page: " + what
    # The end's gate (403), a refused method (405) or an allowlisted redirect: the same answer as
    # for an id that names nothing, so the object's existence is not told.
    missing = _call(world, case, actor, {name: MISSING_ID for name in case.params})
    assert (missing.status_code, _location(missing)) == (r.status_code, _location(r)), (
        f"answers differ from a missing id's ({_describe(missing)}): " + what
    )
