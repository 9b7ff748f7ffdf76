"""Lotteries over HTTP: the API's answers and error codes, a real race of two draws, the pages."""

from __future__ import annotations

import datetime as dt
import json
import threading
import urllib.error
import urllib.request

import pytest
from django.utils import timezone

from accounts.services import issue_token
from rewards.models import Lottery, LotteryStatus, Win
from rewards.services import lottery as lotteries

from .lottery_builders import close_now, members, open_lottery


@pytest.mark.django_db
def test_the_api_creates_enters_draws_and_picks_up(district, api):
    now = timezone.now()
    admin = api(district.district_admin)
    r = admin.post(
        "/api/v1/lotteries",
        {
            "org_id": district.root.pk,
            "title": "API 抽奖",
            "entry_cost": 10,
            "prizes": [{"name": "一等奖", "quantity": 1}, {"name": "二等奖", "quantity": 2}],
            "opens_at": (now - dt.timedelta(hours=1)).isoformat(),
            "closes_at": (now + dt.timedelta(days=1)).isoformat(),
        },
    )
    assert r.status_code == 201, r.content
    body = r.json()
    lid = body["id"]
    assert len(body["commitment"]) == 64 and body["seed"] is None and len(body["prizes"]) == 2

    staff_try = {
        "org_id": district.street_a.pk,
        "title": "x",
        "entry_cost": 1,
        "prizes": [{"name": "a", "quantity": 1}],
        "opens_at": now.isoformat(),
        "closes_at": (now + dt.timedelta(days=1)).isoformat(),
    }
    assert api(district.staff_a).post("/api/v1/lotteries", staff_try).status_code == 403

    ms = members(district, 3, points=15)
    first = api(ms[0].user)
    r = first.post(f"/api/v1/lotteries/{lid}/entries")
    assert r.status_code == 201 and r.json()["n"] == 1
    r = first.post(f"/api/v1/lotteries/{lid}/entries")
    assert r.status_code == 409 and r.json()["error"]["code"] == "limit_reached"
    assert api(ms[1].user).post(f"/api/v1/lotteries/{lid}/entries").status_code == 201
    detail = first.get(f"/api/v1/lotteries/{lid}").json()
    assert detail["my_entries"][0]["n"] == 1 and len(detail["entries"]) == 2

    r = admin.post(f"/api/v1/lotteries/{lid}/draw")
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_yet"
    close_now(Lottery.objects.get(pk=lid))
    r = api(ms[2].user).post(f"/api/v1/lotteries/{lid}/entries")
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_available"
    assert api(ms[0].user).post(f"/api/v1/lotteries/{lid}/draw").status_code in (403, 404)
    r = admin.post(f"/api/v1/lotteries/{lid}/draw")
    assert r.status_code == 200
    record = r.json()
    assert record["status"] == "drawn" and len(record["winners"]) == 2
    assert api().get(f"/api/v1/lotteries/{lid}/record").json() == record  # public, no token

    code = Win.objects.filter(entry__lottery_id=lid).first().code
    assert api(ms[0].user).post("/api/v1/wins/pickup", {"code": code}).status_code == 404  # a member is no cadre
    r = admin.post("/api/v1/wins/pickup", {"code": code})
    assert r.status_code == 200 and r.json()["status"] == "picked_up"
    r = admin.post("/api/v1/wins/pickup", {"code": code})
    assert r.status_code == 409 and r.json()["error"]["code"] == "already_picked_up"


@pytest.mark.django_db
def test_entering_without_points_is_a_409(district, api):
    (m,) = members(district, 1, points=0)
    lottery = open_lottery(district)
    r = api(m.user).post(f"/api/v1/lotteries/{lottery.pk}/entries")
    assert r.status_code == 409 and r.json()["error"]["code"] == "insufficient_points"


@pytest.mark.django_db(transaction=True)
def test_two_parallel_draws_give_one_200_one_409_and_one_set_of_wins(district, live_server):
    ms = members(district, 10)
    lottery = open_lottery(district, prizes=(("一等奖", 1), ("二等奖", 3)))
    for m in ms:
        lotteries.enter(m.user, lottery.pk)
    close_now(lottery)
    tokens = [issue_token(district.district_admin)[0], issue_token(district.district_admin)[0]]
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def draw(token: str) -> None:
        req = urllib.request.Request(
            f"{live_server.url}/api/v1/lotteries/{lottery.pk}/draw",
            data=b"",
            method="POST",
            headers={"Authorization": f"Bearer {token}"},
        )
        barrier.wait()
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                statuses.append(resp.status)
        except urllib.error.HTTPError as e:
            assert json.loads(e.read())["error"]["code"] == "already_drawn"
            statuses.append(e.code)

    threads = [threading.Thread(target=draw, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200, 409]
    assert Win.objects.filter(entry__lottery=lottery).count() == 4
    assert Lottery.objects.get(pk=lottery.pk).status == LotteryStatus.DRAWN


@pytest.mark.django_db
def test_the_member_pages_enter_and_show_the_prize(district, client):
    ms = members(district, 2, points=100)
    lottery = open_lottery(district, cost=30)
    client.force_login(ms[0].user)
    r = client.get("/m/lotteries/")
    assert r.status_code == 200 and "测试抽奖" in r.content.decode()
    r = client.post(f"/m/lotteries/{lottery.pk}/", follow=True)
    assert r.status_code == 200 and "参与成功" in r.content.decode()
    r = client.post(f"/m/lotteries/{lottery.pk}/")
    assert r.status_code == 409 and "已达到每人参与次数上限" in r.content.decode()
    close_now(lottery)
    lotteries.draw(None, lottery.pk)
    page = client.get(f"/m/lotteries/{lottery.pk}/").content.decode()
    win = Win.objects.get(entry__user=ms[0].user)
    assert win.code in page and "<svg" in page
    client.force_login(ms[1].user)
    assert "本次抽奖已开奖，您没有参与" in client.get(f"/m/lotteries/{lottery.pk}/").content.decode()


@pytest.mark.django_db
def test_a_lottery_of_another_subtree_is_not_found_on_the_member_end(district, client):
    (m,) = members(district, 1, org=district.union_b1)
    lottery = open_lottery(district, org=district.street_a)
    client.force_login(m.user)
    assert client.get(f"/m/lotteries/{lottery.pk}/").status_code == 404
    assert client.get("/m/lotteries/").content.decode().count("测试抽奖") == 0



@pytest.mark.django_db
def test_a_follower_finds_only_everyone_lotteries(district, api, client):
    from conftest import make_user

    members_only = open_lottery(district, org=district.union_b1)
    everyone = open_lottery(district, org=district.union_b1, eligibility="everyone")
    follower = make_user("粉丝")
    missing = api(follower).get("/api/v1/lotteries/987654321")
    r = api(follower).get(f"/api/v1/lotteries/{members_only.pk}")
    assert (r.status_code, r.json()) == (404, missing.json())
    r = api(follower).post(f"/api/v1/lotteries/{members_only.pk}/entries")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    assert api(follower).get(f"/api/v1/lotteries/{everyone.pk}").status_code == 200
    client.force_login(follower)
    assert client.get(f"/m/lotteries/{members_only.pk}/").status_code == 404
    assert client.post(f"/m/lotteries/{members_only.pk}/").status_code == 404
    assert client.get(f"/m/lotteries/{everyone.pk}/").status_code == 200
    assert not members_only.entries.exists()

@pytest.mark.django_db
def test_the_public_page_shows_commitment_then_seed_and_winners(district, client):
    ms = members(district, 3)
    lottery = open_lottery(district)
    for m in ms:
        lotteries.enter(m.user, lottery.pk)
    page = client.get(f"/lotteries/{lottery.pk}/").content.decode()
    assert lottery.commitment in page and 'id="seed-pending"' in page and "verify_lottery" in page
    close_now(lottery)
    lottery = lotteries.draw(None, lottery.pk)
    page = client.get(f"/lotteries/{lottery.pk}/").content.decode()
    assert lottery.seed in page and 'id="winners"' in page
    assert client.get("/lotteries/999999/").status_code == 404
