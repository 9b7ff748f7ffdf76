"""Cadre end points pages: pickup verification (once, in scope) and grants from a budget."""

import pytest
from django.urls import reverse

from conftest import make_member
from points.services import budgets, ledger
from rewards.models import PickupStatus
from rewards.services import mall

pytestmark = pytest.mark.django_db


@pytest.fixture
def funded(district):
    budgets.mint(None, district.root, 100000)
    budgets.allocate(district.district_admin, district.root, district.street_a, 20000)
    budgets.allocate(district.admin_a, district.street_a, district.union_a1, 10000)
    return district


def _redemption(district, name="周兑换"):
    m = make_member(district.union_a1, name)
    budgets.grant(district.admin_a1, district.union_a1, [m.user_id], 500, "测试")
    reward = mall.create_reward(district.admin_a1, district.union_a1, title="雨伞", cost=100, stock=3)
    return mall.redeem(m.user, reward.pk)


def test_pickup_shows_the_redemption_then_verifies_it_once(client, funded):
    r = _redemption(funded)
    client.force_login(funded.admin_a1)
    html = client.get(reverse("cadre:pickup") + f"?code={r.code.lower()}").content.decode()
    assert 'id="pickup-preview"' in html and "雨伞" in html and 'id="confirm-pickup"' in html
    assert "周*" in html and "周兑换" not in html  # the member's name is masked
    resp = client.post(reverse("cadre:pickup"), {"code": r.code, "confirm": "1"})
    assert resp.status_code == 200 and 'id="pickup-ok"' in resp.content.decode()
    r.refresh_from_db()
    assert r.status == PickupStatus.PICKED_UP and r.picked_up_by == funded.admin_a1

    resp = client.post(reverse("cadre:pickup"), {"code": r.code, "confirm": "1"})
    html = resp.content.decode()
    assert resp.status_code == 409 and "该兑换码已于" in html and "核销" in html
    html = client.get(reverse("cadre:pickup") + f"?code={r.code}").content.decode()
    assert "已于" in html and 'id="confirm-pickup"' not in html


def test_pickup_accepts_the_scanned_link(client, funded):
    r = _redemption(funded)
    client.force_login(funded.admin_a)  # a cadre above the union
    link = f"http://testserver/c/pickup/?code={r.code}"
    html = client.post(reverse("cadre:pickup"), {"code": link}).content.decode()
    assert 'id="confirm-pickup"' in html


def test_a_code_of_another_subtree_is_not_found(client, funded):
    r = _redemption(funded)
    client.force_login(funded.admin_b)
    resp = client.get(reverse("cadre:pickup") + f"?code={r.code}")
    assert resp.status_code == 404 and "没有找到这个兑换码" in resp.content.decode()
    resp = client.post(reverse("cadre:pickup"), {"code": r.code, "confirm": "1"})
    assert resp.status_code == 404 and "没有找到这个兑换码" in resp.content.decode()
    r.refresh_from_db()
    assert r.status == PickupStatus.ISSUED
    resp = client.post(reverse("cadre:pickup"), {"code": "NOPE2345"})
    assert resp.status_code == 404


def test_cancelled_redemption_cannot_be_picked_up(client, funded):
    r = _redemption(funded)
    mall.cancel(r.user, r.pk)
    client.force_login(funded.admin_a1)
    resp = client.post(reverse("cadre:pickup"), {"code": r.code, "confirm": "1"})
    assert resp.status_code == 409 and "该兑换已取消" in resp.content.decode()


def _grant_form(client, org):
    html = client.get(reverse("cadre:grant") + f"?org={org.pk}").content.decode()
    import re

    return re.search(r'name="nonce" value="([^"]+)"', html).group(1), html


def test_grant_by_pasted_phones(client, funded):
    a = make_member(funded.union_a1, "吴一")
    b = make_member(funded.union_a2, "吴二")
    client.force_login(funded.admin_a)
    nonce, html = _grant_form(client, funded.street_a)
    assert 'id="budget">10000<' in html
    data = {
        "org": funded.street_a.pk,
        "nonce": nonce,
        "phones": f"{a.user.phone}\n{b.user.phone}, {a.user.phone}",
        "amount": "30",
        "reason": "劳动竞赛",
        "grant": "1",
    }
    resp = client.post(reverse("cadre:grant"), data, follow=True)
    html = resp.content.decode()
    assert "已向 2 名会员各发放 30 积分" in html and 'id="budget">9940<' in html
    assert ledger.balance_of(a.user) == 30 and ledger.balance_of(b.user) == 30
    # The same form again (a double submit) moves nothing more.
    resp = client.post(reverse("cadre:grant"), data)
    assert resp.status_code == 409 and ledger.balance_of(a.user) == 30


def test_grant_to_checked_members_and_field_errors(client, funded):
    a = make_member(funded.union_a1, "郑甲")
    outsider = make_member(funded.union_b1, "郑乙")
    client.force_login(funded.admin_a1)
    html = client.get(reverse("cadre:grant_members") + f"?org={funded.union_a1.pk}&q=郑").content.decode()
    assert "郑甲" in html and "郑乙" not in html

    nonce, _html = _grant_form(client, funded.union_a1)
    resp = client.post(
        reverse("cadre:grant"),
        {"org": funded.union_a1.pk, "nonce": nonce, "member_ids": [a.user_id], "amount": "0", "reason": ""},
    )
    html = resp.content.decode()
    assert resp.status_code == 422 and 'id="amount-error"' in html
    assert "郑甲" in html  # the picked member stays picked

    nonce, _html = _grant_form(client, funded.union_a1)
    resp = client.post(
        reverse("cadre:grant"),
        {"org": funded.union_a1.pk, "nonce": nonce, "phones": outsider.user.phone, "amount": "5", "reason": "x"},
    )
    assert resp.status_code == 422 and "这些手机号不是本组织的会员" in resp.content.decode()
    nonce, _html = _grant_form(client, funded.union_a1)
    resp = client.post(
        reverse("cadre:grant"), {"org": funded.union_a1.pk, "nonce": nonce, "amount": "5", "reason": "x"}
    )
    assert resp.status_code == 422 and 'id="member-ids-error"' in resp.content.decode()

    nonce, _html = _grant_form(client, funded.union_a1)
    resp = client.post(
        reverse("cadre:grant"),
        {"org": funded.union_a1.pk, "nonce": nonce, "member_ids": [a.user_id], "amount": "20000", "reason": "x"},
    )
    assert resp.status_code == 409 and "本组织积分预算不足" in resp.content.decode()
    assert ledger.balance_of(a.user) == 0 and ledger.balance_of(outsider.user) == 0


def test_staff_cadre_cannot_grant(client, funded):
    a = make_member(funded.union_a1, "冯员")
    client.force_login(funded.staff_a)
    nonce, html = _grant_form(client, funded.street_a)
    assert 'id="staff-note"' in html
    resp = client.post(
        reverse("cadre:grant"),
        {"org": funded.street_a.pk, "nonce": nonce, "phones": a.user.phone, "amount": "5", "reason": "x", "grant": "1"},
    )
    assert resp.status_code == 403 and "只有该组织或上级组织的管理员可以发放积分" in resp.content.decode()
    assert ledger.balance_of(a.user) == 0


def test_an_org_outside_my_roles_is_not_offered(client, funded):
    client.force_login(funded.admin_a1)
    html = client.get(reverse("cadre:grant") + f"?org={funded.union_b1.pk}").content.decode()
    assert "乙一公司工会" not in html and "甲一公司工会" in html
    m = make_member(funded.union_b1, "乙会员")
    nonce, _html = _grant_form(client, funded.union_a1)
    resp = client.post(
        reverse("cadre:grant"),
        {"org": funded.union_b1.pk, "nonce": nonce, "member_ids": [m.user_id], "amount": "5", "reason": "x"},
    )
    assert resp.status_code == 404 and ledger.balance_of(m.user) == 0


def test_home_links_to_pickup_and_grant(client, funded):
    client.force_login(funded.admin_a1)
    html = client.get(reverse("cadre:home")).content.decode()
    assert f'href="{reverse("cadre:pickup")}"' in html and f'href="{reverse("cadre:grant")}"' in html


def test_the_same_box_verifies_a_lottery_prize_code_once(client, district):
    from rewards.models import Win
    from rewards.services import lottery as lotteries
    from rewards.tests.lottery_builders import close_now, members, open_lottery

    (winner,) = members(district, 1, points=100)
    lot = open_lottery(district, prizes=(("电饭煲", 1),))
    lotteries.enter(winner.user, lot.pk)
    close_now(lot)
    lotteries.draw(district.district_admin, lot.pk)
    win = Win.objects.get(entry__lottery=lot)

    client.force_login(district.admin_a)  # street A's admin: the winner's union is in the subtree, the lottery is not
    assert client.get(reverse("cadre:pickup") + f"?code={win.code}").status_code == 404
    client.force_login(district.district_admin)
    html = client.get(reverse("cadre:pickup") + f"?code={win.code}").content.decode()
    assert 'id="pickup-preview"' in html and "电饭煲" in html
    assert client.post(reverse("cadre:pickup"), {"code": win.code, "confirm": "1"}).status_code == 200
    win.refresh_from_db()
    assert win.status == PickupStatus.PICKED_UP
    assert client.post(reverse("cadre:pickup"), {"code": win.code, "confirm": "1"}).status_code == 409
