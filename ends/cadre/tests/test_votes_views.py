"""Judges' scoring in the cadre end: my contests, scores saved per candidate, each bad score named
beside its field with what was typed kept, progress, and nobody else's contest."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from conftest import make_member
from votes.models import Poll, Score
from votes.services import contest, polls

pytestmark = pytest.mark.django_db

LONG = "甲一公司工会数控车间“工匠精神”技能攻关小组（组长：欧阳晓明）"


@pytest.fixture
def judged(district):
    now = timezone.now()
    poll = polls.create_poll(
        district.admin_a,
        district.street_a,
        title="职工技能大赛",
        options=[{"title": "张三"}, {"title": LONG}],
        max_choices=1,
        opens_at=now + dt.timedelta(hours=1),
        closes_at=now + dt.timedelta(days=2),
        kind="contest",
        vote_weight=40,
    )
    Poll.objects.filter(pk=poll.pk).update(opens_at=now - dt.timedelta(hours=1))
    poll.refresh_from_db()
    contest.set_criteria(
        district.admin_a,
        poll,
        [{"name": "创新性", "max_score": 10, "weight": 2}, {"name": "实用性", "max_score": 20, "weight": 1}],
    )
    judge = make_member(district.union_a1, "评委李")
    contest.set_judges(district.admin_a, poll, [judge.user_id, district.admin_a1.pk])
    return poll, judge.user


def _fields(poll, option, a, b) -> dict:
    c1, c2 = poll.criteria.all()
    return {"option_id": option.pk, f"c{c1.pk}": a, f"c{c2.pk}": b}


def test_a_member_judge_sees_their_contests_without_a_cadre_role(client, judged):
    poll, judge = judged
    client.force_login(judge)
    html = client.get(reverse("cadre:judge_list")).content.decode()
    assert f'id="contest-{poll.pk}"' in html and "已打分 0/2" in html


def test_someone_who_judges_nothing_sees_the_empty_state(client, district):
    client.force_login(make_member(district.union_a1, "普通会员").user)
    html = client.get(reverse("cadre:judge_list")).content.decode()
    assert 'id="no-contests"' in html


def test_scores_are_saved_per_candidate_and_progress_moves(client, judged):
    poll, judge = judged
    option = poll.options.get(title=LONG)
    client.force_login(judge)
    html = client.get(reverse("cadre:judge", args=[poll.pk])).content.decode()
    assert LONG in html and "0/2" in html
    resp = client.post(reverse("cadre:judge", args=[poll.pk]), _fields(poll, option, "8.5", "19"))
    assert resp.status_code == 302 and resp["Location"].endswith(f"#option-{option.pk}")
    assert sorted(Score.objects.filter(judge__user=judge).values_list("score", flat=True)) == [
        Decimal("8.50"),
        Decimal("19.00"),
    ]
    html = client.get(resp["Location"]).content.decode()
    assert "1/2" in html and 'value="8.5"' in html and "已保存" in html
    resp = client.post(reverse("cadre:judge", args=[poll.pk]), _fields(poll, option, "9", "19"))
    assert Score.objects.filter(judge__user=judge, score=Decimal("9.00")).exists()  # replaced, not added
    assert Score.objects.filter(judge__user=judge).count() == 2


def test_bad_scores_show_beside_their_field_and_keep_what_was_typed(client, judged):
    poll, judge = judged
    option = poll.options.first()
    c1, c2 = poll.criteria.all()
    client.force_login(judge)
    resp = client.post(reverse("cadre:judge", args=[poll.pk]), _fields(poll, option, "11", "abc"))
    assert resp.status_code == 422
    html = resp.content.decode()
    assert f'id="err-{option.pk}-{c2.pk}"' in html and "请输入数字" in html
    assert 'value="11"' in html and 'value="abc"' in html
    resp = client.post(reverse("cadre:judge", args=[poll.pk]), _fields(poll, option, "11", "5"))
    assert resp.status_code == 422
    html = resp.content.decode()
    assert f'id="err-{option.pk}-{c1.pk}"' in html and "应为0到10之间的数" in html
    resp = client.post(reverse("cadre:judge", args=[poll.pk]), _fields(poll, option, "", "5"))
    assert resp.status_code == 422 and "请填写分数" in resp.content.decode()
    assert not Score.objects.exists()


def test_not_a_judge_gets_404(client, judged, district):
    poll, _judge = judged
    client.force_login(district.admin_b)
    assert client.get(reverse("cadre:judge", args=[poll.pk])).status_code == 404
    resp = client.post(reverse("cadre:judge", args=[poll.pk]), _fields(poll, poll.options.first(), "5", "5"))
    assert resp.status_code == 404
    assert not Score.objects.exists()


def test_unknown_candidate_is_404(client, judged):
    poll, judge = judged
    client.force_login(judge)
    resp = client.post(reverse("cadre:judge", args=[poll.pk]), {"option_id": "999999"})
    assert resp.status_code == 404


def test_signed_out_goes_to_the_cadre_login(client, judged):
    poll, _judge = judged
    resp = client.get(reverse("cadre:judge", args=[poll.pk]))
    assert resp.status_code == 302 and reverse("cadre:login") in resp["Location"]


def test_score_form_is_csrf_protected(judged):
    poll, judge = judged
    c = Client(enforce_csrf_checks=True)
    c.force_login(judge)
    resp = c.post(reverse("cadre:judge", args=[poll.pk]), _fields(poll, poll.options.first(), "5", "5"))
    assert resp.status_code == 403 and not Score.objects.exists()


def test_cadre_home_links_to_judging(client, district):
    client.force_login(district.admin_a1)
    assert 'id="home-judge"' in client.get(reverse("cadre:home")).content.decode()
