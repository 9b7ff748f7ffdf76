"""核销员: a merchant's account confirms pickups in its org's subtree, and nothing else."""

from __future__ import annotations

import pytest
from django.urls import reverse

from conftest import make_member, make_user
from core.errors import DomainError, Forbidden, Invalid, NotFound
from points.tests.helpers import give
from rewards.models import PickupStatus, Redemption, Verifier
from rewards.services import mall, pickup, verifiers

pytestmark = pytest.mark.django_db


@pytest.fixture
def sale(district):
    """Street A lists a reward; a member of union A1 redeems it; a merchant signed up on the member end."""
    member = make_member(district.union_a1, "购物者")
    give(district.street_a, district.district_admin, [member], 1000)
    reward = mall.create_reward(district.admin_a, district.street_a, title="电影票", cost=100, stock=5)
    merchant = make_user("影城前台", phone="13900001111")
    return reward, mall.redeem(member.user, reward.pk), merchant


def test_an_admin_adds_a_merchant_who_then_confirms_a_pickup_once(district, sale):
    reward, redemption, merchant = sale
    with pytest.raises(NotFound):  # not a cadre, not yet a 核销员
        pickup.find(merchant, redemption.code)
    v = verifiers.add_verifier(district.admin_a, district.street_a.pk, "139 0000 1111", "万达影城")
    assert (v.org, v.user, v.note) == (district.street_a, merchant, "万达影城")
    merchant = type(merchant).objects.get(pk=merchant.pk)  # a new request: its verifier roles are read again
    assert pickup.find(merchant, redemption.code).title == "电影票"
    done = pickup.confirm(merchant, redemption.code)
    assert done.status == PickupStatus.PICKED_UP
    r = Redemption.objects.get(pk=redemption.pk)
    assert r.picked_up_by == merchant and r.picked_up_at is not None
    with pytest.raises(DomainError) as e:
        pickup.confirm(merchant, redemption.code)
    assert e.value.code == "already_picked_up"


def test_a_merchant_confirms_nothing_outside_its_org(district, sale):
    _reward, redemption, merchant = sale
    verifiers.add_verifier(district.admin_b, district.street_b.pk, "13900001111")
    other = make_member(district.union_b1, "乙会员")
    give(district.street_b, district.district_admin, [other], 500)
    theirs = mall.redeem(
        other.user, mall.create_reward(district.admin_b, district.street_b, title="米", cost=10, stock=3).pk
    )
    merchant = type(merchant).objects.get(pk=merchant.pk)
    with pytest.raises(NotFound):
        mall.verify_pickup(merchant, redemption.code)  # street A's code
    assert mall.verify_pickup(merchant, theirs.code).status == PickupStatus.PICKED_UP
    assert not verifiers.verifiers_for(district.admin_a).exists()  # admins see their own orgs' verifiers only


def test_removed_merchants_confirm_nothing_more(district, sale):
    _reward, redemption, merchant = sale
    v = verifiers.add_verifier(district.admin_a, district.street_a.pk, "13900001111")
    with pytest.raises(NotFound):
        verifiers.remove_verifier(district.admin_b, v.pk)  # another street's admin
    verifiers.remove_verifier(district.admin_a, v.pk)
    assert not Verifier.objects.exists()
    merchant = type(merchant).objects.get(pk=merchant.pk)
    with pytest.raises(NotFound):
        pickup.confirm(merchant, redemption.code)
    assert Redemption.objects.get(pk=redemption.pk).status == PickupStatus.ISSUED


@pytest.mark.parametrize(
    ("phone", "note", "code", "field"),
    [
        ("12345", "", "invalid_phone", "phone"),
        ("13800009999", "", "user_not_found", "phone"),
        ("13900001111", "店" * 61, "invalid_note", "note"),
    ],
)
def test_bad_input_names_the_field_and_adds_nobody(district, sale, phone, note, code, field):
    with pytest.raises(Invalid) as e:
        verifiers.add_verifier(district.admin_a, district.street_a.pk, phone, note)
    assert e.value.code == code and field in e.value.fields
    assert not Verifier.objects.exists()


def test_twice_is_refused_and_staff_may_not_add(district, sale):
    verifiers.add_verifier(district.admin_a, district.street_a.pk, "13900001111")
    with pytest.raises(Invalid) as e:
        verifiers.add_verifier(district.admin_a, district.street_a.pk, "13900001111")
    assert e.value.code == "already_verifier"
    with pytest.raises(Forbidden):
        verifiers.add_verifier(district.staff_a, district.street_a.pk, "13900001111")
    assert Verifier.objects.count() == 1


# --- pages ---------------------------------------------------------------------------------------------


def test_a_merchant_signs_in_to_the_cadre_end_and_lands_on_pickup_alone(client, district, sale):
    _reward, redemption, merchant = sale
    client.force_login(merchant)
    assert client.get(reverse("cadre:pickup")).status_code == 403  # not yet a 核销员
    verifiers.add_verifier(district.admin_a, district.street_a.pk, "13900001111")
    home = client.get(reverse("cadre:home"))
    assert home.status_code == 302 and home["Location"] == reverse("cadre:pickup")
    assert client.get(reverse("cadre:joins")).status_code == 302  # every other cadre page too
    page = client.get(reverse("cadre:pickup") + "?code=" + redemption.code)
    assert page.status_code == 200 and "电影票" in page.content.decode()
    assert 'class="m-tabbar' not in page.content.decode()  # no cadre tabs for a merchant
    done = client.post(reverse("cadre:pickup"), {"code": redemption.code, "confirm": "1"})
    assert done.status_code == 200 and 'id="pickup-ok"' in done.content.decode()


def test_the_console_adds_and_removes_merchants_with_errors_beside_the_field(client, district, sale):
    client.force_login(district.admin_a)
    bad = client.post(reverse("console:verifier_add"), {"org": district.street_a.pk, "phone": "123", "note": "万达"})
    body = bad.content.decode()
    assert bad.status_code == 422 and 'id="vf-phone"' in body and "has-error" in body and 'value="万达"' in body
    assert not Verifier.objects.exists()
    ok = client.post(
        reverse("console:verifier_add"), {"org": district.street_a.pk, "phone": "13900001111", "note": "万达"}
    )
    assert ok.status_code == 302
    page = client.get(reverse("console:mall") + f"?org={district.street_a.pk}").content.decode()
    assert "万达" in page and "139****1111" in page and "13900001111" not in page
    v = Verifier.objects.get()
    assert (
        client.post(reverse("console:verifier_remove", args=[v.pk]), {"org": district.street_a.pk}).status_code == 302
    )
    assert not Verifier.objects.exists()
