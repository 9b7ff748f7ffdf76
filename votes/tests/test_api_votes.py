"""API.md "Votes" over the test client: shapes, every error code, nothing recorded on bad input."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from votes.models import Ballot, BallotBucket, OptionCount, Poll, VoidBatch
from votes.tests import builders as b


def _err(resp) -> str:
    return resp.json()["error"]["code"]


def _body(org, **kw) -> dict:
    now = timezone.now()
    body = {
        "org_id": org.pk,
        "title": "最美职工",
        "options": [{"title": "张三"}, {"title": "李四"}, {"title": "王五"}],
        "max_choices": 1,
        "eligibility": "members",
        "opens_at": (now - dt.timedelta(hours=1)).isoformat(),
        "closes_at": (now + dt.timedelta(days=1)).isoformat(),
    }
    body.update(kw)
    return body


def _state() -> tuple:
    return (
        Ballot.objects.count(),
        sum(OptionCount.objects.values_list("votes", flat=True)),
        BallotBucket.objects.count(),
    )


def _putter(api_client):
    """PUT as the api fixture's user (the shared fixture speaks GET, POST and DELETE)."""
    from django.test import Client

    client = Client()
    return lambda path, data: client.put(path, data, content_type="application/json", **api_client.headers)


@pytest.fixture
def poll_json(api, district):
    r = api(district.admin_a).post("/api/v1/polls", _body(district.street_a))
    assert r.status_code == 201, r.content
    return r.json()


@pytest.mark.django_db
def test_create_poll_answers_201_with_id_and_options(api, district):
    r = api(district.admin_a).post("/api/v1/polls", _body(district.street_a, ballots_per_day=2, results="after_close"))
    assert r.status_code == 201
    body = r.json()
    assert Poll.objects.filter(pk=body["id"]).exists()
    assert [o["title"] for o in body["options"]] == ["张三", "李四", "王五"]
    assert all(isinstance(o["id"], int) for o in body["options"])
    assert body["ballots_per_day"] == 2 and body["results"] == "after_close" and body["status"] == "open"


@pytest.mark.django_db
def test_create_poll_errors(api, district):
    admin = api(district.admin_a)
    now = timezone.now()
    assert admin.post("/api/v1/polls", _body(district.street_b)).status_code == 404
    assert api(district.staff_a).post("/api/v1/polls", _body(district.street_a)).status_code == 403
    assert api().post("/api/v1/polls", _body(district.street_a)).status_code == 401
    r = admin.post("/api/v1/polls", _body(district.street_a, closes_at=(now - dt.timedelta(minutes=1)).isoformat()))
    assert r.status_code == 422 and "closes_at" in r.json()["error"]["fields"]
    r = admin.post(
        "/api/v1/polls",
        _body(
            district.street_a,
            opens_at=(now + dt.timedelta(days=2)).isoformat(),
            closes_at=(now + dt.timedelta(days=1)).isoformat(),
        ),
    )
    assert r.status_code == 422 and "closes_at" in r.json()["error"]["fields"]
    body = _body(district.street_a)
    del body["title"], body["max_choices"]
    r = admin.post("/api/v1/polls", body)
    assert r.status_code == 422 and {"title", "max_choices"} <= set(r.json()["error"]["fields"])
    r = admin.post("/api/v1/polls", _body(district.street_a, max_choices="2", options="x"))
    assert r.status_code == 422 and {"max_choices", "options"} <= set(r.json()["error"]["fields"])
    r = admin.post("/api/v1/polls", _body(district.street_a, options=[{"title": "甲"}, {"title": "甲"}]))
    assert r.status_code == 422 and "options.1.title" in r.json()["error"]["fields"]
    r = admin.post("/api/v1/polls", _body(district.street_a, eligibility="all", max_choices=5))
    assert r.status_code == 422 and {"eligibility", "max_choices"} <= set(r.json()["error"]["fields"])
    r = admin.post("/api/v1/polls", "{not json")
    assert r.status_code == 400
    assert Poll.objects.count() == 0


@pytest.mark.django_db
def test_get_poll_with_options_and_my_state(api, district, poll_json):
    m = b.member(district.union_a1).user
    r = api(m).get(f"/api/v1/polls/{poll_json['id']}")
    assert r.status_code == 200
    body = r.json()
    assert body["title"] == "最美职工" and len(body["options"]) == 3 and body["status"] == "open"
    assert body["me"]["can_vote"] is True and body["me"]["left_today"] == 1
    assert api(b.member(district.union_b1).user).get(f"/api/v1/polls/{poll_json['id']}").status_code == 404
    assert api(b.follower()).get(f"/api/v1/polls/{poll_json['id']}").status_code == 404
    assert api(m).get("/api/v1/polls/999999").status_code == 404
    listed = api(m).get("/api/v1/polls").json()
    assert listed["count"] == 1 and listed["items"][0]["id"] == poll_json["id"]


@pytest.mark.django_db
def test_ballot_201_receipt_then_409_already_voted(api, district, poll_json):
    c = api(b.member(district.union_a1).user)
    url = f"/api/v1/polls/{poll_json['id']}/ballots"
    r = c.post(url, {"option_ids": [poll_json["options"][1]["id"]]})
    assert r.status_code == 201 and len(r.json()["receipt"]) == 12
    assert Ballot.objects.get().receipt == r.json()["receipt"]
    before = _state()
    r = c.post(url, {"option_ids": [poll_json["options"][0]["id"]]})
    assert r.status_code == 409 and _err(r) == "already_voted"
    assert _state() == before
    res = c.get(f"/api/v1/polls/{poll_json['id']}/results").json()
    assert res["total_ballots"] == 1
    assert {o["id"]: o["votes"] for o in res["options"]}[poll_json["options"][1]["id"]] == 1


@pytest.mark.django_db
def test_ballot_errors_and_nothing_recorded(api, district, poll_json):
    ids = [o["id"] for o in poll_json["options"]]
    url = f"/api/v1/polls/{poll_json['id']}/ballots"
    c = api(b.member(district.union_a1).user)
    before = _state()
    for body, status, code in [
        ({"option_ids": []}, 422, "invalid_choice"),
        ({"option_ids": [ids[0], ids[0]]}, 422, "invalid_choice"),
        ({"option_ids": ids[:2]}, 422, "invalid_choice"),  # max_choices 1
        ({"option_ids": [999999]}, 422, "invalid_choice"),
        ({"option_ids": ["a"]}, 422, "invalid_choice"),
        ({"option_ids": [1.5]}, 422, "invalid_choice"),
        ({"option_ids": [True]}, 422, "invalid_choice"),
        ({}, 422, "invalid"),
        ({"option_ids": "1"}, 422, "invalid"),
    ]:
        r = c.post(url, body)
        assert r.status_code == status and _err(r) == code, (body, r.content)
        assert r.json()["error"]["fields"].get("option_ids"), body
    assert c.post(url, "[not json").status_code == 400
    assert api().post(url, {"option_ids": [ids[0]]}).status_code == 401
    r = api(b.follower()).post(url, {"option_ids": [ids[0]]})
    assert r.status_code == 403 and _err(r) == "not_eligible"
    r = api(b.member(district.union_b1).user).post(url, {"option_ids": [ids[0]]})
    assert r.status_code == 403 and _err(r) == "not_eligible"
    assert c.post("/api/v1/polls/999999/ballots", {"option_ids": [ids[0]]}).status_code == 404
    assert _state() == before


@pytest.mark.django_db
def test_ballot_window_and_daily_limit(api, district):
    admin = api(district.admin_a)
    now = timezone.now()
    later = admin.post(
        "/api/v1/polls",
        _body(district.street_a, opens_at=(now + dt.timedelta(hours=2)).isoformat(), title="未开始"),
    ).json()
    daily = admin.post("/api/v1/polls", _body(district.street_a, ballots_per_day=2, title="每天两票")).json()
    c = api(b.member(district.union_a1).user)
    r = c.post(f"/api/v1/polls/{later['id']}/ballots", {"option_ids": [later["options"][0]["id"]]})
    assert r.status_code == 409 and _err(r) == "poll_not_open"
    url = f"/api/v1/polls/{daily['id']}/ballots"
    one = {"option_ids": [daily["options"][0]["id"]]}
    assert [c.post(url, one).status_code for _ in range(2)] == [201, 201]
    r = c.post(url, one)
    assert r.status_code == 409 and _err(r) == "daily_limit_reached"
    Poll.objects.filter(pk=daily["id"]).update(closes_at=now - dt.timedelta(seconds=1))
    r = c.post(url, one)
    assert r.status_code == 409 and _err(r) == "poll_closed"
    assert Ballot.objects.count() == 2


@pytest.mark.django_db
def test_rate_limited_429_with_retry_after(api, district, settings, poll_json):
    settings.VOTE_ACCOUNT_LIMIT = 2
    c = api(b.member(district.union_a1).user)
    url = f"/api/v1/polls/{poll_json['id']}/ballots"
    one = {"option_ids": [poll_json["options"][0]["id"]]}
    assert [c.post(url, one).status_code for _ in range(2)] == [201, 409]
    r = c.post(url, one)
    assert r.status_code == 429 and _err(r) == "rate_limited"
    assert 1 <= int(r["Retry-After"]) <= 61


@pytest.mark.django_db
def test_ballot_with_idempotency_key_is_counted_once(api, district, poll_json):
    c = api(b.member(district.union_a1).user)
    url = f"/api/v1/polls/{poll_json['id']}/ballots"
    one = {"option_ids": [poll_json["options"][0]["id"]]}
    first = c.post(url, one, HTTP_IDEMPOTENCY_KEY="k-1")
    again = c.post(url, one, HTTP_IDEMPOTENCY_KEY="k-1")
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert Ballot.objects.count() == 1


@pytest.mark.django_db
def test_results_hidden_until_close_then_public_receipts_and_recount(api, district):
    admin = api(district.admin_a)
    poll = admin.post("/api/v1/polls", _body(district.street_a, results="after_close")).json()
    pid = poll["id"]
    m = b.member(district.union_a1).user
    c = api(m)
    receipt = c.post(f"/api/v1/polls/{pid}/ballots", {"option_ids": [poll["options"][2]["id"]]}).json()["receipt"]
    r = c.get(f"/api/v1/polls/{pid}/results")
    assert r.status_code == 403 and _err(r) == "results_hidden"
    assert admin.get(f"/api/v1/polls/{pid}/results").json()["total_ballots"] == 1
    assert api(district.admin_b).get(f"/api/v1/polls/{pid}/results").status_code == 404
    r = api().get(f"/api/v1/polls/{pid}/receipts")
    assert r.status_code == 404 and _err(r) == "not_found"  # an open poll's record is not public yet
    assert c.get(f"/api/v1/polls/{pid}/recount").status_code == 409
    assert api(district.staff_a).post(f"/api/v1/polls/{pid}/close").status_code == 403
    assert api(district.admin_b).post(f"/api/v1/polls/{pid}/close").status_code == 404
    closed = admin.post(f"/api/v1/polls/{pid}/close")
    assert closed.status_code == 200 and closed.json()["status"] == "closed" and closed.json()["closed_early"]
    assert closed.json()["sealed"] and closed.json()["tally"]["total_ballots"] == 1
    r = admin.post(f"/api/v1/polls/{pid}/close")
    assert r.status_code == 409 and _err(r) == "already_closed"
    assert c.get(f"/api/v1/polls/{pid}/results").json()["total_ballots"] == 1
    page = api().get(f"/api/v1/polls/{pid}/receipts").json()
    assert page["count"] == 1 and page["items"][0]["receipt"] == receipt
    assert page["items"][0]["choices"] == [poll["options"][2]["id"]] and page["items"][0]["voided"] is False
    found = api().get(f"/api/v1/polls/{pid}/receipts", data={"q": receipt[:4] + "-" + receipt[4:].lower()}).json()
    assert found["count"] == 1 and found["items"][0]["receipt"] == receipt
    assert api().get(f"/api/v1/polls/{pid}/receipts", data={"q": "NOPE"}).json() == {"items": [], "count": 0}
    rc = c.get(f"/api/v1/polls/{pid}/recount").json()
    assert rc["tally_matches"] and rc["chain_matches"] and rc["chain_head"] == rc["published_head"]


@pytest.mark.django_db
def test_monitor_and_voids_for_cadres(api, district, poll_json):
    pid = poll_json["id"]
    ids = [o["id"] for o in poll_json["options"]]
    for _ in range(3):
        api(b.member(district.union_a1).user).post(f"/api/v1/polls/{pid}/ballots", {"option_ids": [ids[0]]})
    mon = api(district.staff_a).get(f"/api/v1/polls/{pid}/monitor")
    assert mon.status_code == 200 and mon.json()["total_ballots"] == 3
    assert mon.json()["clusters"]["prefixes"][0]["prefix"] == "127.0.0.0/24"
    assert api(b.member(district.union_a1).user).get(f"/api/v1/polls/{pid}/monitor").status_code == 404
    assert api(district.admin_b).get(f"/api/v1/polls/{pid}/monitor").status_code == 404
    url = f"/api/v1/polls/{pid}/voids"
    r = api(district.staff_a).post(url, {"reason": "x", "ip_prefix": "127.0.0.0/24"})
    assert r.status_code == 403
    r = api(district.admin_a).post(url, {"ip_prefix": "127.0.0.0/24"})
    assert r.status_code == 422 and "reason" in r.json()["error"]["fields"]
    r = api(district.admin_a).post(url, {"reason": "   ", "ip_prefix": "127.0.0.0/24"})
    assert r.status_code == 422 and _err(r) == "reason_required"
    r = api(district.admin_a).post(url, {"reason": "全部作废？"})
    assert r.status_code == 422 and _err(r) == "criteria_required"
    r = api(district.admin_a).post(url, {"reason": "测试", "ip_prefix": "10.9.9.0/24"})
    assert r.status_code == 409 and _err(r) == "nothing_to_void"
    assert VoidBatch.objects.count() == 0
    r = api(district.admin_a).post(url, {"reason": "同一网段集中投票", "ip_prefix": "127.0.0.0/24"})
    assert r.status_code == 201 and r.json()["ballots"] == 3
    assert api(district.admin_a).get(f"/api/v1/polls/{pid}/results").json()["total_ballots"] == 0
    assert api(district.staff_a).get(url).json()["count"] == 1


@pytest.mark.django_db
def test_contest_endpoints(api, district):
    admin = api(district.admin_a)
    body = _body(
        district.street_a,
        kind="contest",
        vote_weight=50,
        prize_tiers=[{"name": "一等奖", "count": 1}, {"name": "二等奖", "count": 1}],
        title="技能大赛",
    )
    poll = admin.post("/api/v1/polls", body).json()
    pid, ids = poll["id"], [o["id"] for o in poll["options"]]
    judge = b.member(district.union_a2).user  # a member of a union under the poll's org
    put = _putter(admin)
    r = put(f"/api/v1/polls/{pid}/judges", {"user_ids": [judge.pk]})
    assert r.status_code == 200 and r.json()["items"][0]["user_id"] == judge.pk
    # Someone outside the street and an id that does not exist: one answer, and no names back.
    outsider = b.member(district.union_b1, "乙街道的人").user
    outside = put(f"/api/v1/polls/{pid}/judges", {"user_ids": [judge.pk, outsider.pk]})
    missing = put(f"/api/v1/polls/{pid}/judges", {"user_ids": [judge.pk, 10**9]})
    assert outside.status_code == missing.status_code == 422
    assert _err(outside) == _err(missing) == "invalid_judges"
    assert outside.json()["error"]["message"].replace(str(outsider.pk), "#") == missing.json()["error"][
        "message"
    ].replace(str(10**9), "#")
    assert "乙街道的人" not in outside.content.decode()
    names = [i["name"] for i in admin.get(f"/api/v1/polls/{pid}/judges").json()["items"]]
    assert names == [judge.name or judge.member.name]
    r = put(f"/api/v1/polls/{pid}/criteria", {"criteria": [{"name": "技艺", "max_score": 10, "weight": 2}]})
    assert r.status_code == 200
    crit = r.json()["items"][0]["id"]
    j = api(judge)
    assert j.get(f"/api/v1/polls/{pid}/criteria").status_code == 200  # judges reach their contest
    r = j.post(f"/api/v1/polls/{pid}/scores", {"option_id": ids[0], "scores": {str(crit): 11}})
    assert r.status_code == 422 and _err(r) == "invalid_score"
    r = api(b.member(district.union_a1).user).post(
        f"/api/v1/polls/{pid}/scores", {"option_id": ids[0], "scores": {str(crit): 5}}
    )
    assert r.status_code == 403 and _err(r) == "not_a_judge"
    for i, s in zip(ids, [9, 7, 5], strict=True):
        r = j.post(f"/api/v1/polls/{pid}/scores", {"option_id": i, "scores": {str(crit): s}})
        assert r.status_code == 200, r.content
    ranking = admin.get(f"/api/v1/polls/{pid}/ranking").json()
    assert [row["option_id"] for row in ranking["items"]] == ids and ranking["items"][0]["tier"] == "一等奖"
    r = admin.post(f"/api/v1/polls/{pid}/awards", {})
    assert r.status_code == 409 and _err(r) == "not_closed"
    admin.post(f"/api/v1/polls/{pid}/close")
    r = admin.post(f"/api/v1/polls/{pid}/awards", {})
    assert r.status_code == 201 and [a["tier"] for a in r.json()["items"]] == ["一等奖", "二等奖"]
    assert (
        api(b.member(district.union_a1).user).get(f"/api/v1/polls/{pid}/awards").json()["items"][0]["option_id"]
        == ids[0]
    )
    r = admin.post(f"/api/v1/polls/{pid}/awards", {})
    assert r.status_code == 409 and _err(r) == "awards_published"


@pytest.mark.django_db
def test_device_limit_needs_an_identified_device(api, district, settings):
    settings.VOTE_DEVICE_LIMIT = 1
    poll = api(district.admin_a).post("/api/v1/polls", _body(district.street_a, eligibility="everyone")).json()
    url = f"/api/v1/polls/{poll['id']}/ballots"
    one = {"option_ids": [poll["options"][0]["id"]]}
    # Without X-Device-Id the same User-Agent and address are one fallback hash: recorded, not limited.
    assert [api(b.follower()).post(url, one).status_code for _ in range(3)] == [201, 201, 201]
    assert api(b.follower()).post(url, one, HTTP_X_DEVICE_ID="phone-1").status_code == 201
    r = api(b.follower()).post(url, one, HTTP_X_DEVICE_ID="phone-1")
    assert r.status_code == 429 and _err(r) == "rate_limited" and int(r["Retry-After"]) >= 1
    devices = set(Ballot.objects.values_list("device", flat=True))
    assert len(devices) == 2 and "phone-1" not in devices  # stored as hashes


@pytest.mark.django_db
def test_new_accounts_refused_with_their_own_message(api, district):
    poll = (
        api(district.admin_a)
        .post("/api/v1/polls", _body(district.street_a, eligibility="everyone", block_new_accounts=True))
        .json()
    )
    r = api(b.follower()).post(f"/api/v1/polls/{poll['id']}/ballots", {"option_ids": [poll["options"][0]["id"]]})
    assert r.status_code == 403 and _err(r) == "not_eligible" and "注册" in r.json()["error"]["message"]
    assert Ballot.objects.count() == 0
    # The account's creation time comes with the bearer token's lookup: an older account may vote.
    veteran = b.follower()
    type(veteran).objects.filter(pk=veteran.pk).update(date_joined=timezone.now() - dt.timedelta(days=30))
    r = api(veteran).post(f"/api/v1/polls/{poll['id']}/ballots", {"option_ids": [poll["options"][0]["id"]]})
    assert r.status_code == 201, r.content
    assert list(Ballot.objects.values_list("voter_id", "new_account")) == [(veteran.pk, False)]


@pytest.mark.django_db
def test_public_receipts_page_by_keyset_and_the_recount_is_the_stored_one(api, district, monkeypatch):
    from votes.services import polls, tally

    p = b.poll(district.admin_a, district.street_a)
    option = b.option_ids(p)[0]
    receipts = [polls.cast_ballot(b.member(district.union_a1).user, p.pk, [option]).receipt for _ in range(5)]
    polls.close_poll(district.admin_a, p)
    anon = api()
    url = f"/api/v1/polls/{p.pk}/receipts"
    first = anon.get(url, data={"page_size": 2}).json()
    assert [i["receipt"] for i in first["items"]] == receipts[:2] and first["count"] == 5
    seen, cursor = [], first["next_after"]
    seen += [i["receipt"] for i in first["items"]]
    while cursor is not None:
        page = anon.get(url, data={"page_size": 2, "after": cursor}).json()
        seen += [i["receipt"] for i in page["items"]]
        cursor = page["next_after"]
    assert seen == receipts and page["prev_before"] is not None
    back = anon.get(url, data={"page_size": 2, "before": page["prev_before"]}).json()
    assert [i["receipt"] for i in back["items"]] == receipts[2:4]
    for bad in ({"after": "x"}, {"before": -5}):
        r = anon.get(url, data=bad)
        assert r.status_code == 422 and r.json()["error"]["fields"], bad
    # The recount comes from the poll, counted at the seal: a request never reads every ballot.
    c = api(b.member(district.union_a1).user)
    monkeypatch.setattr(tally, "compute", None)  # any call would fail
    rc = c.get(f"/api/v1/polls/{p.pk}/recount").json()
    assert rc["tally_matches"] and rc["chain_matches"] and rc["ballots"] == 5 and rc["recounted_at"]
