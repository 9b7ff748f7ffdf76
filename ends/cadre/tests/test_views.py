"""Cadre end pages: who may enter, join and transfer approvals within scope, card verification."""

import re

import pytest
from django.urls import reverse

from conftest import PASSWORD, make_member, make_user, unique_id_number
from members.models import JoinApplication, Member, Transfer
from members.services import card_token

pytestmark = pytest.mark.django_db


def test_cadre_login_with_password_reaches_the_home_with_counts(client, district):
    from members.services import apply_to_join

    apply_to_join(make_user("甲"), district.union_a1, "甲", unique_id_number())
    resp = client.post(reverse("cadre:login"), {"phone": district.admin_a1.phone, "password": PASSWORD})
    assert resp.status_code == 302
    html = client.get(reverse("cadre:home")).content.decode()
    assert "甲一公司工会" in html
    assert re.search(r'id="stat-joins"><div class="m-stat__num">1<', html)


def test_wrong_password_is_refused(client, district):
    html = client.post(reverse("cadre:login"), {"phone": district.admin_a1.phone, "password": "x"}).content.decode()
    assert "手机号或密码不正确" in html


def test_non_cadre_gets_a_clear_message(client, district):
    client.force_login(make_user())
    resp = client.get(reverse("cadre:joins"))
    assert resp.status_code == 403 and "您不是工会干部" in resp.content.decode()


def test_anonymous_goes_to_the_cadre_login(client):
    resp = client.get(reverse("cadre:verify") + "?t=abc")
    assert resp.status_code == 302 and resp["Location"].startswith(reverse("cadre:login"))


def test_join_application_flow_is_scoped_to_the_union_subtree(client, district):
    # A follower with no roster match applies to union A1 through the member pages.
    applicant = make_user("郑新人")
    client.force_login(applicant)
    idn = unique_id_number()
    failed = client.post(reverse("member:certify"), {"name": "郑新人", "id_number": idn})
    assert failed.status_code == 422 and 'id="join-next"' in failed.content.decode()
    client.post(reverse("member:join"), {"name": "郑新人", "id_number": idn, "org": district.union_a1.pk})
    app = JoinApplication.objects.get(user=applicant)

    # A cadre of another subtree neither sees nor decides it.
    client.force_login(district.admin_b)
    assert "郑新人" not in client.get(reverse("cadre:joins")).content.decode()
    resp = client.post(reverse("cadre:join_decide", args=[app.pk]), {"decision": "approve"})
    assert resp.status_code == 404
    assert not Member.objects.filter(user=applicant).exists()

    # The union's own cadre sees it, must give a reason to reject, and approves.
    client.force_login(district.admin_a1)
    listing = client.get(reverse("cadre:joins")).content.decode()
    assert "郑新人" in listing and app.id_number_masked in listing and idn not in listing
    resp = client.post(reverse("cadre:join_decide", args=[app.pk]), {"decision": "reject", "reason": " "})
    assert resp.status_code == 422
    assert re.search(rf'id="reason-error-{app.pk}">请填写驳回原因<', resp.content.decode())
    resp = client.post(reverse("cadre:join_decide", args=[app.pk]), {"decision": "approve"})
    assert resp.status_code == 302
    member = Member.objects.get(user=applicant)
    assert member.org == district.union_a1 and member.certified
    assert f'id="app-{app.pk}"' not in client.get(reverse("cadre:joins")).content.decode()


def test_transfer_approved_by_the_receiving_cadre_moves_the_member(client, district):
    m = make_member(district.union_a1, "冯转")
    client.force_login(m.user)
    client.post(reverse("member:transfer"), {"to_org": district.union_b1.pk, "reason": "换工作"})
    t = Transfer.objects.get(member=m)

    # The origin side sees it, without decision buttons, and cannot decide it.
    client.force_login(district.admin_a1)
    html = client.get(reverse("cadre:transfers")).content.decode()
    assert f'id="transfer-{t.pk}"' in html and "等待转入工会审核" in html
    assert client.post(reverse("cadre:transfer_decide", args=[t.pk]), {"decision": "approve"}).status_code == 403

    client.force_login(district.admin_b)
    html = client.get(reverse("cadre:transfers")).content.decode()
    assert f'action="{reverse("cadre:transfer_decide", args=[t.pk])}"' in html
    assert client.post(reverse("cadre:transfer_decide", args=[t.pk]), {"decision": "approve"}).status_code == 302
    m.refresh_from_db()
    t.refresh_from_db()
    assert t.status == "approved" and m.org == district.union_b1
    periods = list(m.periods.order_by("started_at", "id"))
    assert [p.org for p in periods] == [district.union_a1, district.union_b1]
    assert periods[0].ended_at is not None and periods[1].ended_at is None

    client.force_login(m.user)
    page = client.get(reverse("member:transfer")).content.decode()
    assert "乙一公司工会" in page and "甲一公司工会" in page and "已通过" in page


def test_verify_a_valid_card_shows_the_member(client, district):
    m = make_member(district.union_b1, "陈证")
    client.force_login(district.admin_a1)  # any cadre may verify any card
    resp = client.get(reverse("cadre:verify"), {"t": card_token(m)})
    html = resp.content.decode()
    assert resp.status_code == 200 and 'id="verify-ok"' in html
    assert "陈证" in html and "乙一公司工会" in html and m.id_number_masked in html and m._id_number not in html


def test_verify_accepts_the_whole_link_pasted(client, district):
    m = make_member(district.union_b1, "陈证")
    client.force_login(district.admin_a1)
    link = "http://testserver/c/verify/?t=" + card_token(m)
    assert "陈证" in client.post(reverse("cadre:verify"), {"token": link}).content.decode()


def test_verify_a_tampered_card_says_invalid(client, district):
    m = make_member(district.union_b1, "陈证")
    client.force_login(district.admin_a1)
    token = card_token(m)
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    resp = client.get(reverse("cadre:verify"), {"t": tampered})
    html = resp.content.decode()
    assert resp.status_code == 422 and 'id="verify-fail"' in html and "这不是有效的会员证二维码" in html
    assert "陈证" not in html


def test_verify_an_expired_card_says_expired(client, district, settings):
    m = make_member(district.union_b1, "陈证")
    client.force_login(district.admin_a1)
    token = card_token(m)
    settings.MEMBER_CARD_TTL_SECONDS = -1
    html = client.get(reverse("cadre:verify"), {"t": token}).content.decode()
    assert "二维码已过期" in html and "陈证" not in html


def test_empty_verify_form_asks_for_the_code(client, district):
    client.force_login(district.admin_a1)
    html = client.post(reverse("cadre:verify"), {"token": ""}).content.decode()
    assert "请粘贴或扫描会员证二维码内容" in html
