"""The points mall: redeem in window, scope and limits; cancel refunds; pickup once, by the right cadre."""

from __future__ import annotations

import datetime as dt
import types

import pytest
from django.utils import timezone

from conftest import make_cadre, make_member, make_user
from core.errors import DomainError, Forbidden, Invalid, NotFound
from points.models import MovementKind
from points.services import ledger
from points.tests.helpers import assert_ledger_sound, balance, counts, give
from rewards.models import PickupStatus, Redemption, Reward
from rewards.services import mall


def _reward(admin, org, **kw) -> Reward:
    kw = {"title": "保温杯", "cost": 100, "stock": 5, **kw}
    return mall.create_reward(admin, org, **kw)


def _state():
    """Everything a failed redemption must leave as it was."""
    return counts(), list(Reward.objects.order_by("pk").values_list("stock")), Redemption.objects.count()


@pytest.fixture
def shop(district):
    """Street A lists a 100-point reward (stock 5); a member of union A1 holds 1000 points."""
    member = make_member(district.union_a1, "购物者")
    give(district.street_a, district.district_admin, [member], 1000)
    return types.SimpleNamespace(
        d=district, member=member, user=member.user, reward=_reward(district.admin_a, district.street_a)
    )


# --- redeem ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_redeem_debits_points_takes_stock_and_issues_a_pickup_code(shop):
    r = mall.redeem(shop.user, shop.reward.pk)
    assert r.status == PickupStatus.ISSUED and len(r.code) == 10 and r.cost == 100
    assert ledger.balance_of(shop.user) == 900
    assert Reward.objects.get(pk=shop.reward.pk).stock == 4
    assert balance(ledger.mall_account(shop.d.street_a)) == 100
    assert r.movement.kind == MovementKind.REDEEM
    assert_ledger_sound()


@pytest.mark.django_db
def test_redeem_with_too_few_points_is_409_and_takes_no_stock(shop):
    poor = make_member(shop.d.union_a1)
    give(shop.d.street_a, shop.d.district_admin, [poor], 99)
    before = _state()
    with pytest.raises(DomainError) as e:
        mall.redeem(poor.user, shop.reward.pk)
    assert e.value.code == "insufficient_points" and e.value.status == 409
    assert _state() == before


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("starts", "ends"),
    [(dt.timedelta(hours=1), dt.timedelta(days=1)), (-dt.timedelta(days=2), -dt.timedelta(seconds=1))],
    ids=["not_yet", "over"],
)
def test_redeem_outside_the_window_is_409_not_available(shop, starts, ends):
    now = timezone.now()
    reward = _reward(shop.d.admin_a, shop.d.street_a, starts_at=now + starts, ends_at=now + ends)
    before = _state()
    with pytest.raises(DomainError) as e:
        mall.redeem(shop.user, reward.pk)
    assert e.value.code == "not_available" and e.value.status == 409
    assert _state() == before


@pytest.mark.django_db
def test_redeem_inside_the_window_works(shop):
    now = timezone.now()
    reward = _reward(
        shop.d.admin_a, shop.d.street_a, starts_at=now - dt.timedelta(hours=1), ends_at=now + dt.timedelta(hours=1)
    )
    assert mall.redeem(shop.user, reward.pk).pk


@pytest.mark.django_db
def test_an_inactive_reward_is_not_available(shop):
    Reward.objects.filter(pk=shop.reward.pk).update(active=False)
    with pytest.raises(DomainError) as e:
        mall.redeem(shop.user, shop.reward.pk)
    assert e.value.code == "not_available"


@pytest.mark.django_db
def test_per_member_limit_is_409_limit_reached_and_a_cancelled_one_frees_the_slot(shop):
    reward = _reward(shop.d.admin_a, shop.d.street_a, per_member_limit=2)
    first = mall.redeem(shop.user, reward.pk)
    mall.redeem(shop.user, reward.pk)
    before = _state()
    with pytest.raises(DomainError) as e:
        mall.redeem(shop.user, reward.pk)
    assert e.value.code == "limit_reached" and e.value.status == 409
    assert _state() == before
    mall.cancel(shop.user, first.pk)
    assert mall.redeem(shop.user, reward.pk).pk


@pytest.mark.django_db
def test_out_of_stock_is_409_and_moves_no_points(shop):
    reward = _reward(shop.d.admin_a, shop.d.street_a, stock=1)
    other = make_member(shop.d.union_a2)
    give(shop.d.street_a, shop.d.district_admin, [other], 500)
    mall.redeem(shop.user, reward.pk)
    before = _state()
    with pytest.raises(DomainError) as e:
        mall.redeem(other.user, reward.pk)
    assert e.value.code == "out_of_stock" and e.value.status == 409
    assert _state() == before and ledger.balance_of(other.user) == 500


@pytest.mark.django_db
def test_a_reward_with_zero_stock_is_out_of_stock(shop):
    reward = _reward(shop.d.admin_a, shop.d.street_a, stock=0)
    with pytest.raises(DomainError) as e:
        mall.redeem(shop.user, reward.pk)
    assert e.value.code == "out_of_stock"


@pytest.mark.django_db
def test_a_follower_is_403_not_eligible_for_a_members_reward_but_may_redeem_an_everyone_reward(shop):
    follower = make_user("粉丝")
    everyone = _reward(shop.d.admin_a, shop.d.street_a, eligibility="everyone", cost=10)
    before = _state()
    with pytest.raises(Forbidden) as e:
        mall.redeem(follower, shop.reward.pk)
    assert e.value.code == "not_eligible" and e.value.status == 403
    assert _state() == before
    # Without points the follower gets as far as the ledger; nothing is taken.
    with pytest.raises(DomainError) as e:
        mall.redeem(follower, everyone.pk)
    assert e.value.code == "insufficient_points"
    assert Reward.objects.get(pk=everyone.pk).stock == 5


@pytest.mark.django_db
def test_a_follower_with_points_redeems_an_everyone_reward(shop):
    follower = make_user("粉丝")
    everyone = _reward(shop.d.admin_a, shop.d.street_a, eligibility="everyone", cost=10)
    # Points reach a follower only through a movement; give them some the ledger's way.
    from points.services import ledger as lg

    lg.post(MovementKind.REFUND, [(lg.member_account(shop.user), lg.member_account(follower), 10)], reason="转赠")
    r = mall.redeem(follower, everyone.pk)
    assert r.user == follower and ledger.balance_of(follower) == 0
    assert list(mall.rewards_for_member(follower)) == [everyone]
    assert_ledger_sound()


@pytest.mark.django_db
def test_an_uncertified_member_is_not_eligible_for_a_members_reward(shop):
    uncertified = make_member(shop.d.union_a1, certified=False)
    with pytest.raises(Forbidden) as e:
        mall.redeem(uncertified.user, shop.reward.pk)
    assert e.value.code == "not_eligible"


@pytest.mark.django_db
def test_a_member_of_another_subtree_gets_404(shop):
    outsider = make_member(shop.d.union_b1)
    give(shop.d.street_b, shop.d.district_admin, [outsider], 1000)
    before = _state()
    with pytest.raises(NotFound):
        mall.redeem(outsider.user, shop.reward.pk)
    with pytest.raises(NotFound):
        mall.reward_for_member(outsider.user, shop.reward.pk)
    assert _state() == before
    assert shop.reward not in list(mall.rewards_for_member(outsider.user))


@pytest.mark.django_db
def test_a_member_sees_rewards_of_their_union_and_its_ancestors_only(shop):
    d = shop.d
    root_r = _reward(d.district_admin, d.root, title="区级")
    a1_r = _reward(d.admin_a1, d.union_a1, title="甲一")
    a2_r = _reward(d.admin_a, d.union_a2, title="甲二")
    b_r = _reward(d.admin_b, d.street_b, title="乙")
    seen = set(mall.rewards_for_member(shop.user))
    assert {root_r, a1_r, shop.reward} <= seen
    assert a2_r not in seen and b_r not in seen
    for rid in (a2_r.pk, b_r.pk, 999999, "x"):
        with pytest.raises(NotFound):
            mall.redeem(shop.user, rid)


@pytest.mark.django_db
def test_a_sale_s_read_serves_the_next_ones_but_stock_is_always_the_live_row_s(shop, monkeypatch):
    reward = _reward(shop.d.admin_a, shop.d.street_a, stock=4)
    others = [make_member(shop.d.union_a2) for _ in range(3)]
    give(shop.d.street_a, shop.d.district_admin, others, 500)
    reads = []
    real = mall._reward_row
    monkeypatch.setattr(mall, "_reward_row", lambda rid: reads.append(rid) or real(rid))
    mall.redeem(shop.user, reward.pk)  # the street's first sale makes its mall account
    mall.redeem(others[2].user, reward.pk)  # read again, now with the mall account: remembered
    third = mall.redeem(others[0].user, reward.pk)
    assert reads == [reward.pk, reward.pk]  # the third sale used the second one's read
    assert third.reward.stock == 1  # never from memory: read from the database when asked
    # Another process sells the last one; this one remembers the reward, not its stock.
    Reward.objects.filter(pk=reward.pk).update(stock=0)
    before = _state()
    with pytest.raises(DomainError) as e:
        mall.redeem(others[1].user, reward.pk)
    assert e.value.code == "out_of_stock" and _state() == before
    assert ledger.balance_of(others[1].user) == 500 and reads == [reward.pk, reward.pk]
    assert_ledger_sound()


@pytest.mark.django_db
def test_a_reward_is_read_again_after_a_few_seconds_and_scope_is_checked_each_time(shop, monkeypatch):
    reward = _reward(shop.d.admin_a, shop.d.street_a, per_member_limit=5)
    monkeypatch.setattr(mall._recent, "seconds", 0.0)
    reads = []
    real = mall._reward_row
    monkeypatch.setattr(mall, "_reward_row", lambda rid: reads.append(rid) or real(rid))
    mall.redeem(shop.user, reward.pk)
    mall.redeem(shop.user, reward.pk)
    assert reads == [reward.pk, reward.pk]
    monkeypatch.setattr(mall._recent, "seconds", 60.0)
    mall.redeem(shop.user, reward.pk)
    stranger = make_member(shop.d.union_b1)  # another subtree: the remembered reward is still out of reach
    give(shop.d.street_b, shop.d.district_admin, [stranger], 500)
    before = _state()
    with pytest.raises(NotFound):
        mall.redeem(stranger.user, reward.pk)
    assert _state() == before and len(reads) == 3


@pytest.mark.django_db
def test_unknown_reward_is_404(shop):
    with pytest.raises(NotFound):
        mall.redeem(shop.user, 424242)


# --- cancel ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_cancel_refunds_points_and_stock_once(shop):
    r = mall.redeem(shop.user, shop.reward.pk)
    done = mall.cancel(shop.user, r.pk)
    assert done.status == PickupStatus.CANCELLED and done.cancelled_at and done.refund_id
    assert ledger.balance_of(shop.user) == 1000
    assert Reward.objects.get(pk=shop.reward.pk).stock == 5
    assert balance(ledger.mall_account(shop.d.street_a)) == 0
    before = _state()
    with pytest.raises(DomainError) as e:
        mall.cancel(shop.user, r.pk)
    assert e.value.code == "not_cancellable" and e.value.status == 409
    assert _state() == before
    assert_ledger_sound()


@pytest.mark.django_db
def test_a_picked_up_redemption_cannot_be_cancelled(shop):
    r = mall.redeem(shop.user, shop.reward.pk)
    mall.verify_pickup(shop.d.admin_a, r.code)
    before = _state()
    with pytest.raises(DomainError) as e:
        mall.cancel(shop.user, r.pk)
    assert e.value.code == "not_cancellable"
    assert _state() == before and ledger.balance_of(shop.user) == 900


@pytest.mark.django_db
def test_a_cadre_of_the_rewards_org_may_cancel_but_strangers_get_404(shop):
    r = mall.redeem(shop.user, shop.reward.pk)
    for stranger in (make_member(shop.d.union_a1).user, shop.d.admin_b, shop.d.admin_a1, make_user()):
        with pytest.raises(NotFound):
            mall.cancel(stranger, r.pk)
    assert Redemption.objects.get(pk=r.pk).status == PickupStatus.ISSUED
    assert mall.cancel(shop.d.staff_a, r.pk).status == PickupStatus.CANCELLED
    with pytest.raises(NotFound):
        mall.cancel(shop.user, 987654)


# --- pickup ----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_pickup_marks_the_code_once_and_a_second_scan_is_409_already_picked_up(shop):
    r = mall.redeem(shop.user, shop.reward.pk)
    typed = f" {r.code[:5].lower()}-{r.code[5:]} "  # typed from a phone: case, spaces and dashes tolerated
    done = mall.verify_pickup(shop.d.staff_a, typed)
    assert done.status == PickupStatus.PICKED_UP and done.picked_up_by == shop.d.staff_a and done.picked_up_at
    with pytest.raises(DomainError) as e:
        mall.verify_pickup(shop.d.admin_a, r.code)
    assert e.value.code == "already_picked_up" and e.value.status == 409
    assert Redemption.objects.get(pk=r.pk).picked_up_by == shop.d.staff_a


@pytest.mark.django_db
def test_pickup_of_a_cancelled_redemption_is_refused(shop):
    r = mall.redeem(shop.user, shop.reward.pk)
    mall.cancel(shop.user, r.pk)
    with pytest.raises(DomainError) as e:
        mall.verify_pickup(shop.d.admin_a, r.code)
    assert e.value.code == "cancelled"
    assert Redemption.objects.get(pk=r.pk).status == PickupStatus.CANCELLED


@pytest.mark.django_db
def test_pickup_by_a_cadre_of_another_subtree_or_an_unknown_code_is_404(shop):
    r = mall.redeem(shop.user, shop.reward.pk)
    for actor in (shop.d.admin_b, make_cadre(shop.d.union_b1), shop.d.admin_a1, shop.user):
        with pytest.raises(NotFound):
            mall.verify_pickup(actor, r.code)
    with pytest.raises(NotFound):
        mall.verify_pickup(shop.d.admin_a, "ZZZZZZZZZZ")
    assert Redemption.objects.get(pk=r.pk).status == PickupStatus.ISSUED
    assert mall.verify_pickup(shop.d.district_admin, r.code).status == PickupStatus.PICKED_UP  # from above: fine


# --- create_reward ---------------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    "kw",
    [
        {"title": ""},
        {"title": "x" * 101},
        {"cost": 0},
        {"cost": -1},
        {"cost": 1.5},
        {"cost": True},
        {"stock": -1},
        {"per_member_limit": 0},
        {"kind": "car"},
        {"eligibility": "aliens"},
    ],
    ids=repr,
)
def test_create_reward_refuses_bad_values_with_422(district, kw):
    with pytest.raises(Invalid):
        _reward(district.admin_a, district.street_a, **kw)
    assert Reward.objects.count() == 0


@pytest.mark.django_db
def test_create_reward_refuses_an_empty_window_and_non_admins(district):
    now = timezone.now()
    with pytest.raises(Invalid):
        _reward(district.admin_a, district.street_a, starts_at=now, ends_at=now)
    for actor in (district.staff_a, district.admin_b, district.admin_a1):
        with pytest.raises(Forbidden):
            _reward(actor, district.street_a)
    assert Reward.objects.count() == 0
    r = _reward(district.admin_a, district.street_a, stock=7)
    assert r.stock == r.stock_total == 7
