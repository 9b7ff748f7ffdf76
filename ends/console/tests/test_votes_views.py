"""Console polls: the list in scope, creating a poll (errors beside the fields, input kept), the
detail with live counts, closing early, photos, the monitor and the bulk void with its preview,
scope (404 outside the subtree) and CSRF."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from conftest import make_member
from votes.models import Ballot, Poll, VoidBatch
from votes.services import polls

pytestmark = pytest.mark.django_db

LONG = "甲街道第一届职工技能大赛暨“匠心筑梦”优秀班组长网络评选（含各社区、企业工会推荐人选）"


def _local(value: dt.datetime) -> str:
    return timezone.localtime(value).strftime("%Y-%m-%dT%H:%M")


def _poll(district, org=None, **kw) -> Poll:
    now = timezone.now()
    org = org or district.street_a
    actor = district.admin_b if org.path.startswith(district.street_b.path) else district.admin_a
    poll = polls.create_poll(
        actor,
        org,
        title=kw.pop("title", "最美职工评选"),
        options=[{"title": t} for t in kw.pop("options", ("张三", "李四", "王五"))],
        max_choices=1,
        opens_at=now + dt.timedelta(hours=1),
        closes_at=now + dt.timedelta(hours=48),
        **kw,
    )
    Poll.objects.filter(pk=poll.pk).update(opens_at=now - dt.timedelta(hours=3))
    poll.refresh_from_db()
    return poll


def _form(**over) -> dict:
    now = timezone.now()
    data = {
        "title": "年度最美职工评选",
        "description": "请为身边的榜样投票",
        "options": "张三｜第一车间\n李四\n\n王五",
        "max_choices": "1",
        "mode": "once",
        "ballots_per_day": "1",
        "eligibility": "members",
        "results": "live",
        "opens_at": _local(now + dt.timedelta(hours=1)),
        "closes_at": _local(now + dt.timedelta(days=7)),
    }
    data.update(over)
    return data


def test_list_shows_polls_in_scope_only(client, district):
    mine = _poll(district, title="甲街道的评选")
    _poll(district, district.street_b, title="乙街道的评选")
    client.force_login(district.admin_a)
    html = client.get(reverse("console:polls")).content.decode()
    assert f'id="poll-{mine.pk}"' in html and "乙街道的评选" not in html
    assert 'id="new-poll"' in html and 'id="new-contest"' in html


def test_list_empty_state(client, district):
    client.force_login(district.admin_b)
    html = client.get(reverse("console:polls")).content.decode()
    assert "还没有投票" in html


def test_outsider_cadre_gets_404_everywhere(client, district):
    poll = _poll(district)
    option = poll.options.first()
    client.force_login(district.admin_b)
    for url in (
        reverse("console:poll", args=[poll.pk]),
        reverse("console:poll_monitor", args=[poll.pk]),
        reverse("console:poll_option_photo", args=[poll.pk, option.pk]),
    ):
        assert client.get(url).status_code == 404, url
    assert client.post(reverse("console:poll_close", args=[poll.pk])).status_code == 404
    resp = client.post(reverse("console:poll_void", args=[poll.pk]), {"ip_prefix": "1.2.3.0/24", "reason": "x"})
    assert resp.status_code == 404
    assert client.get(reverse("console:polls") + f"?org={district.street_a.pk}").status_code == 404
    poll.refresh_from_db()
    assert poll.closed_at is None


def test_create_poll_and_land_on_its_detail(client, district):
    client.force_login(district.admin_a)
    html = client.get(reverse("console:poll_new") + f"?org={district.union_a1.pk}").content.decode()
    assert 'id="poll-form"' in html and "甲一公司工会" in html
    resp = client.post(
        reverse("console:poll_new"),
        {**_form(title=LONG, mode="daily", ballots_per_day="3"), "org": district.union_a1.pk},
    )
    assert resp.status_code == 302
    poll = Poll.objects.get(title=LONG)
    assert poll.org == district.union_a1 and poll.ballots_per_day == 3
    assert [o.title for o in poll.options.all()] == ["张三", "李四", "王五"]
    assert poll.options.first().description == "第一车间"
    html = client.get(resp["Location"]).content.decode()
    assert LONG in html and 'id="option-table"' in html and "每天 3 票" in html


def test_create_errors_show_beside_fields_and_keep_the_input(client, district):
    client.force_login(district.admin_a)
    now = timezone.now()
    resp = client.post(
        reverse("console:poll_new"),
        {
            **_form(title="", options="", closes_at=_local(now - dt.timedelta(days=1))),
            "org": district.street_a.pk,
            "description": "保留这段说明",
        },
    )
    assert resp.status_code == 422
    html = resp.content.decode()
    assert html.count('class="field-error"') >= 2
    assert "保留这段说明" in html
    assert not Poll.objects.exists()
    resp = client.post(reverse("console:poll_new"), {**_form(opens_at="不是时间"), "org": district.street_a.pk})
    assert resp.status_code == 422 and "时间格式无效" in resp.content.decode()


def test_staff_cannot_create_and_outsider_org_is_404(client, district):
    client.force_login(district.staff_a)
    resp = client.post(reverse("console:poll_new"), {**_form(), "org": district.street_a.pk})
    assert resp.status_code == 403
    client.force_login(district.admin_a)
    resp = client.post(reverse("console:poll_new"), {**_form(), "org": district.street_b.pk})
    assert resp.status_code == 404
    assert not Poll.objects.exists()


def test_detail_shows_live_counts_and_public_links(client, district):
    poll = _poll(district, results="after_close")
    a = poll.options.first()
    for n in range(2):
        polls.cast_ballot(make_member(district.union_a1, f"会员{n}").user, poll.pk, [a.pk])
    client.force_login(district.staff_a)  # staff see counts (cadres always do), cannot close
    html = client.get(reverse("console:poll", args=[poll.pk])).content.decode()
    assert 'id="total-ballots">2<' in html and 'data-votes="2"' in html
    assert reverse("portal:poll", args=[poll.pk]) in html and reverse("member:poll", args=[poll.pk]) in html
    assert 'id="close-poll"' not in html


def test_close_early_seals_and_shows_the_chain_head(client, district):
    poll = _poll(district)
    polls.cast_ballot(make_member(district.union_a1).user, poll.pk, [poll.options.first().pk])
    client.force_login(district.admin_a)
    resp = client.post(reverse("console:poll_close", args=[poll.pk]))
    assert resp.status_code == 302
    poll.refresh_from_db()
    assert poll.closed_early and poll.chain_head
    html = client.get(resp["Location"]).content.decode()
    assert 'id="closed-ok"' in html and poll.chain_head in html and 'id="close-poll"' not in html
    resp = client.post(reverse("console:poll_close", args=[poll.pk]))
    assert resp.status_code == 409 and 'id="poll-alert"' in resp.content.decode()


def _png() -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (40, 30), (200, 20, 30)).save(buf, "PNG")
    return buf.getvalue()


def test_photo_upload_and_bad_file_beside_the_row(client, district):
    from django.core.files.uploadedfile import SimpleUploadedFile

    poll = _poll(district)
    option = poll.options.first()
    client.force_login(district.admin_a)
    url = reverse("console:poll_option_photo", args=[poll.pk, option.pk])
    resp = client.post(url, {"photo": SimpleUploadedFile("a.png", _png(), "image/png")})
    assert resp.status_code == 302
    option.refresh_from_db()
    assert option.photo
    got = client.get(url)
    assert got.status_code == 200 and got["Content-Type"] == "image/jpeg"
    member = make_member(district.union_a1)
    c = Client()
    c.force_login(member.user)
    assert c.get(reverse("member:poll_photo", args=[poll.pk, option.pk])).status_code == 200
    resp = client.post(url, {"photo": SimpleUploadedFile("a.png", b"not an image", "image/png")})
    assert resp.status_code == 422
    assert 'class="row-error"' in resp.content.decode()
    resp = client.post(url, {})
    assert resp.status_code == 422


def _brush(district, poll, n=6, prefix="203.0.113"):
    option = poll.options.all()[2]
    for i in range(n):
        m = make_member(district.union_a2, f"刷票{i}")
        polls.cast_ballot(m.user, poll.pk, [option.pk], ip=f"{prefix}.{i + 1}", device="dev-brush")
    honest = make_member(district.union_a1, "正常投票")
    polls.cast_ballot(honest.user, poll.pk, [poll.options.first().pk], ip="198.51.100.7", device="dev-ok")


def test_monitor_shows_series_clusters_and_devices(client, district):
    poll = _poll(district, options=("张三", LONG, "王五"))
    _brush(district, poll)
    client.force_login(district.admin_a)
    html = client.get(reverse("console:poll_monitor", args=[poll.pk])).content.decode()
    assert 'id="monitor-chart"' in html and 'id="monitor-data"' in html and "echarts.min.js" in html
    assert "203.0.113.0/24" in html and "dev-brush" in html
    assert 'id="m-total">7<' in html
    assert 'id="void-form"' in html
    assert client.get(reverse("console:poll_monitor", args=[poll.pk]) + "?hours=6").status_code == 200
    assert client.get(reverse("console:poll_monitor", args=[poll.pk]) + "?hours=abc").status_code == 200


def test_monitor_without_ballots(client, district):
    poll = _poll(district)
    client.force_login(district.admin_a)
    html = client.get(reverse("console:poll_monitor", args=[poll.pk])).content.decode()
    assert "还没有选票" in html and "还没有作废过选票" in html


def test_void_preview_counts_then_confirm_voids(client, district):
    poll = _poll(district)
    _brush(district, poll)
    client.force_login(district.admin_a)
    url = reverse("console:poll_void", args=[poll.pk])
    form = {"ip_prefix": "203.0.113.0/24", "reason": "同一网段集中刷票"}
    resp = client.post(url, {**form, "step": "preview"})
    assert resp.status_code == 200
    html = resp.content.decode()
    assert 'id="void-preview"' in html and "<strong>6</strong>" in html and 'id="void-confirm"' in html
    assert not Ballot.objects.filter(poll=poll, void__isnull=False).exists()  # the preview changed nothing
    assert not VoidBatch.objects.exists()
    resp = client.post(url, {**form, "step": "confirm"})
    assert resp.status_code == 302
    assert Ballot.objects.filter(poll=poll, void__isnull=False).count() == 6
    html = client.get(resp["Location"]).content.decode()
    assert 'id="void-ok"' in html and "已作废 6 张选票" in html and "同一网段集中刷票" in html
    assert polls.results(poll)["total_ballots"] == 1
    resp = client.post(url, {**form, "step": "preview"})
    assert "<strong>0</strong>" in resp.content.decode()


def test_void_needs_a_reason_and_a_criterion(client, district):
    poll = _poll(district)
    _brush(district, poll)
    client.force_login(district.admin_a)
    url = reverse("console:poll_void", args=[poll.pk])
    resp = client.post(url, {"ip_prefix": "203.0.113.0/24", "reason": " ", "step": "confirm"})
    assert resp.status_code == 422 and "203.0.113.0/24" in resp.content.decode()  # input kept
    resp = client.post(url, {"reason": "理由", "step": "preview"})
    assert resp.status_code == 422
    resp = client.post(url, {"reason": "理由", "start": "昨天", "step": "preview"})
    assert resp.status_code == 422 and "时间格式无效" in resp.content.decode()
    assert not Ballot.objects.filter(poll=poll, void__isnull=False).exists()


def test_staff_cannot_void(client, district):
    poll = _poll(district)
    _brush(district, poll)
    client.force_login(district.staff_a)
    html = client.get(reverse("console:poll_monitor", args=[poll.pk])).content.decode()
    assert 'id="void-form"' not in html
    resp = client.post(
        reverse("console:poll_void", args=[poll.pk]),
        {"ip_prefix": "203.0.113.0/24", "reason": "刷票", "step": "confirm"},
    )
    assert resp.status_code == 403
    assert not Ballot.objects.filter(poll=poll, void__isnull=False).exists()


def test_console_forms_are_csrf_protected(district):
    poll = _poll(district)
    c = Client(enforce_csrf_checks=True)
    c.force_login(district.admin_a)
    assert c.post(reverse("console:poll_close", args=[poll.pk])).status_code == 403
    assert c.post(reverse("console:poll_new"), {**_form(), "org": district.street_a.pk}).status_code == 403
    poll.refresh_from_db()
    assert poll.closed_at is None and Poll.objects.count() == 1


def test_people_search_masks_phones_and_stays_in_scope(client, district):
    inside = make_member(district.union_a1, "评委甲")
    outside = make_member(district.union_b1, "评委乙")
    client.force_login(district.admin_a)
    html = client.get(reverse("console:poll_people"), {"q": "评委"}).content.decode()
    assert "评委甲" in html and "评委乙" not in html
    assert inside.user.phone not in html and inside.user.phone_masked in html
    html = client.get(reverse("console:poll_people"), {"q": outside.user.phone}).content.decode()
    assert "评委乙" not in html
    html = client.get(reverse("console:poll_people"), {"q": inside.user.phone}).content.decode()
    assert "评委甲" in html and inside.user.phone not in html



def _offered(client, **params) -> list[int]:
    import re

    html = client.get(reverse("console:poll_people"), params).content.decode()
    return [int(i) for i in re.findall(r'name="judge_ids" value="(\d+)"', html)]


def test_judge_picker_offers_exactly_who_may_judge_the_contest(client, district):
    from votes.services import contest

    certified = make_member(district.union_a1, "评委甲")
    uncertified = make_member(district.union_a1, "评委乙", certified=False)
    sibling = make_member(district.union_a2, "评委丙")  # in the cadre's scope, outside the poll's org
    cadre = make_member(district.union_a1, "评委丁", certified=False, user=district.admin_a1)
    poll = _poll(district, org=district.union_a1, kind="contest", vote_weight=50)
    client.force_login(district.admin_a)

    offered = _offered(client, q="评委", poll=poll.pk)
    assert sorted(offered) == sorted([certified.user_id, cadre.user_id])
    assert uncertified.user_id not in offered and sibling.user_id not in offered
    assert _offered(client, q=uncertified.user.phone, poll=poll.pk) == []
    assert sorted(contest.eligible_judges(poll, [certified.user_id, uncertified.user_id, sibling.user_id])) == [
        certified.user_id
    ]
    contest.set_judges(district.admin_a, poll, offered)  # every one offered is accepted
    assert poll.judges.count() == 2

    # The new-contest form asks for its org's pool.
    assert sorted(_offered(client, q="评委", org=district.union_a1.pk)) == sorted(offered)
    assert sorted(_offered(client, q="评委", org=district.street_a.pk)) == sorted(
        [certified.user_id, cadre.user_id, sibling.user_id]
    )

    outside = _poll(district, org=district.union_b1)
    assert client.get(reverse("console:poll_people"), {"q": "评委", "poll": outside.pk}).status_code == 404
    assert client.get(reverse("console:poll_people"), {"q": "评委", "poll": "x"}).status_code == 404
    assert client.get(reverse("console:poll_people"), {"q": "评委", "poll": "9" * 30}).status_code == 404


# --- contests ---------------------------------------------------------------------------------------


def _contest_form(district, **over) -> dict:
    judge = make_member(district.union_a1, "评委张")
    return {
        **_form(title="职工技能大赛", options="甲\n乙\n丙\n丁"),
        "kind": "contest",
        "org": district.street_a.pk,
        "vote_weight": "60",
        "criteria": "创新性 10 2\n实用性 10",
        "prize_tiers": "一等奖 1\n二等奖 1",
        "judge_ids": [str(judge.user_id), str(district.staff_a.pk)],
        **over,
    }


def test_create_contest_with_criteria_tiers_and_judges(client, district):
    client.force_login(district.admin_a)
    html = client.get(reverse("console:poll_new") + "?kind=contest").content.decode()
    assert 'name="criteria"' in html and 'name="vote_weight"' in html and 'id="pv-judge-q"' in html
    resp = client.post(reverse("console:poll_new"), _contest_form(district))
    assert resp.status_code == 302
    poll = Poll.objects.get()
    assert poll.kind == "contest" and poll.vote_weight == 60
    assert poll.prize_tiers == [{"name": "一等奖", "count": 1}, {"name": "二等奖", "count": 1}]
    assert [(c.name, c.max_score, c.weight) for c in poll.criteria.all()] == [("创新性", 10, 2), ("实用性", 10, 1)]
    assert poll.judges.count() == 2
    html = client.get(resp["Location"]).content.decode()
    assert 'id="contest"' in html and "评委张" in html and 'id="ranking-link"' in html


def test_contest_form_errors_name_the_line_and_create_nothing(client, district):
    client.force_login(district.admin_a)
    resp = client.post(
        reverse("console:poll_new"), _contest_form(district, criteria="创新性 十分", prize_tiers="一等奖 0")
    )
    assert resp.status_code == 422
    html = resp.content.decode()
    assert "第 1 行" in html and "创新性 十分" in html
    resp = client.post(reverse("console:poll_new"), _contest_form(district, prize_tiers="一等奖 0\n二等奖 1"))
    assert resp.status_code == 422 and "第 1 行：应为1到1000的整数" in resp.content.decode()
    assert not Poll.objects.exists()


def _closed_contest(district, *, scores: dict[str, tuple[int, int]], votes: dict[str, int]) -> Poll:
    """A closed contest with two judges' scores and the given votes per candidate."""
    from votes.services import contest

    judge1, judge2 = make_member(district.union_a1, "评委一"), make_member(district.union_a1, "评委二")
    poll = _poll(
        district,
        kind="contest",
        vote_weight=50,
        options=tuple(scores),
        prize_tiers=[{"name": "一等奖", "count": 1}, {"name": "二等奖", "count": 1}],
    )
    contest.set_criteria(district.admin_a, poll, [{"name": "综合表现", "max_score": 10, "weight": 1}])
    contest.set_judges(district.admin_a, poll, [judge1.user_id, judge2.user_id])
    criterion = poll.criteria.get()
    for o in poll.options.all():
        for judge, score in zip((judge1, judge2), scores[o.title], strict=True):
            contest.submit_scores(judge.user, poll, o.pk, {criterion.pk: score})
        for i in range(votes.get(o.title, 0)):
            polls.cast_ballot(make_member(district.union_a2, f"{o.title}票{i}").user, poll.pk, [o.pk])
    polls.close_poll(district.admin_a, poll)
    poll.refresh_from_db()
    return poll


def test_ranking_flags_a_tie_at_the_cut_and_publishes_after_resolution(client, district):
    poll = _closed_contest(
        district, scores={"甲": (10, 10), "乙": (8, 8), "丙": (8, 8)}, votes={"甲": 2, "乙": 1, "丙": 1}
    )
    client.force_login(district.admin_a)
    html = client.get(reverse("console:poll_ranking", args=[poll.pk])).content.decode()
    assert 'id="tie-warning"' in html and html.count("分界并列") >= 2
    assert 'id="judge-progress"' in html and "已打分 3/3" in html
    resp = client.post(reverse("console:poll_publish", args=[poll.pk]))
    assert resp.status_code == 409
    assert 'class="field-error"' in resp.content.decode() and not poll.awards.exists()
    b, c = poll.options.get(title="乙"), poll.options.get(title="丙")
    resp = client.post(
        reverse("console:poll_publish", args=[poll.pk]), {f"resolve_{b.pk}": "二等奖", f"resolve_{c.pk}": "-"}
    )
    assert resp.status_code == 302
    assert {(a.option.title, a.tier) for a in poll.awards.select_related("option")} == {
        ("甲", "一等奖"),
        ("乙", "二等奖"),
    }
    html = client.get(resp["Location"]).content.decode()
    assert 'id="published-ok"' in html and 'id="publish-awards"' not in html
    public = Client().get(reverse("portal:poll", args=[poll.pk])).content.decode()
    assert 'id="awards"' in public and "二等奖" in public


def test_ranking_is_only_for_contests_in_scope(client, district):
    poll = _poll(district)
    client.force_login(district.admin_a)
    assert client.get(reverse("console:poll_ranking", args=[poll.pk])).status_code == 404
    contest_poll = _poll(district, kind="contest", vote_weight=50)
    client.force_login(district.admin_b)
    assert client.get(reverse("console:poll_ranking", args=[contest_poll.pk])).status_code == 404
    assert client.post(reverse("console:poll_publish", args=[contest_poll.pk])).status_code == 404


def test_criteria_and_judges_are_edited_on_the_detail_page(client, district):
    from votes.services import contest

    poll = _poll(district, kind="contest", vote_weight=50)
    contest.set_criteria(district.admin_a, poll, [{"name": "创新性", "max_score": 10, "weight": 1}])
    kept = poll.criteria.get()
    judge = make_member(district.union_a1, "评委王")
    client.force_login(district.admin_a)
    resp = client.post(reverse("console:poll_criteria", args=[poll.pk]), {"criteria": "创新性 20 1\n展示效果 10 3"})
    assert resp.status_code == 302
    assert poll.criteria.get(name="创新性").pk == kept.pk  # kept by name, so its scores stay
    assert poll.criteria.count() == 2
    resp = client.post(reverse("console:poll_criteria", args=[poll.pk]), {"criteria": "只有名字"})
    assert resp.status_code == 422 and "只有名字" in resp.content.decode()
    resp = client.post(reverse("console:poll_judges", args=[poll.pk]), {"judge_ids": [judge.user_id]})
    assert resp.status_code == 302 and list(poll.judges.values_list("user_id", flat=True)) == [judge.user_id]
    resp = client.post(reverse("console:poll_judges", args=[poll.pk]), {"judge_ids": ["999999"]})
    assert resp.status_code == 422
