"""Membership services: certification, join applications, transfers, member cards, PII reveal."""

from __future__ import annotations

import pytest
from django.core import signing
from django.db import IntegrityError, transaction

from conftest import make_member, make_user, unique_id_number
from core import pii
from core.errors import DomainError, Forbidden, Invalid, NotFound
from core.models import AuditLog
from members import services
from members.models import JoinApplication, Member, MembershipPeriod, Transfer

# Certification (实名认证) is tests/test_certification.py.


# --- join applications ---------------------------------------------------------------------------


def test_an_approved_join_application_makes_a_certified_member(district):
    follower = make_user("")
    idn = unique_id_number()
    app = services.apply_to_join(follower, district.union_a1, "新人", idn, "一车间")
    assert app.status == "pending"
    assert app.id_number_hash == pii.id_number_index(idn) and pii.decrypt(app.id_number_enc) == idn
    follower.refresh_from_db()
    assert follower.name == "新人"
    assert services.join_applications_for(district.admin_a).filter(pk=app.pk).exists()
    assert not services.join_applications_for(district.admin_b).filter(pk=app.pk).exists()

    decided = services.decide_join(district.admin_a1, app.pk, approve=True)
    assert decided.status == "approved" and decided.decided_by == district.admin_a1
    m = Member.objects.get(user=follower)
    assert m.org_id == district.union_a1.pk and m.certified and m.name == "新人"
    assert pii.decrypt(m.id_number_enc) == idn and m.workplace == "一车间"
    assert list(m.periods.values_list("org_id", "how", "ended_at")) == [(district.union_a1.pk, "application", None)]
    assert AuditLog.objects.filter(action="join.approve", target_id=str(app.pk)).exists()


def test_rejecting_an_application_needs_a_reason_and_creates_no_member(district):
    follower = make_user("新人")
    app = services.apply_to_join(follower, district.union_a1, "新人", unique_id_number())
    with pytest.raises(Invalid) as e:
        services.decide_join(district.admin_a1, app.pk, approve=False, reason="  ")
    assert e.value.code == "reason_required" and "reason" in e.value.fields
    assert JoinApplication.objects.get(pk=app.pk).status == "pending"
    services.decide_join(district.admin_a1, app.pk, approve=False, reason="不在本单位工作")
    app.refresh_from_db()
    assert app.status == "rejected" and app.decision_reason == "不在本单位工作"
    assert not Member.objects.filter(user=follower).exists()
    with pytest.raises(DomainError) as e:
        services.decide_join(district.admin_a1, app.pk, approve=True)
    assert e.value.code == "not_pending"
    # After a rejection the person may apply again.
    services.apply_to_join(follower, district.union_a2, "新人", unique_id_number())


def test_a_cadre_outside_the_orgs_subtree_cannot_decide(district):
    app = services.apply_to_join(make_user("新人"), district.union_a1, "新人", unique_id_number())
    with pytest.raises(NotFound):
        services.decide_join(district.admin_b, app.pk, approve=True)
    with pytest.raises(NotFound):
        services.decide_join(make_user("路人"), app.pk, approve=True)
    assert JoinApplication.objects.get(pk=app.pk).status == "pending"


def test_one_pending_application_per_user(district):
    follower = make_user("新人")
    services.apply_to_join(follower, district.union_a1, "新人", unique_id_number())
    with pytest.raises(DomainError) as e:
        services.apply_to_join(follower, district.union_b1, "新人", unique_id_number())
    assert e.value.code == "application_pending"
    assert JoinApplication.objects.filter(user=follower).count() == 1


def test_the_database_refuses_a_second_pending_application(district):
    follower = make_user("新人")
    services.apply_to_join(follower, district.union_a1, "新人", unique_id_number())
    with pytest.raises(IntegrityError), transaction.atomic():
        JoinApplication.objects.create(
            user=follower, org=district.union_a2, name="新人", id_number_enc=b"x", id_number_hash="h"
        )


def test_a_member_cannot_apply_and_an_id_on_the_roster_is_refused_only_at_the_decision(district):
    m = make_member(district.union_a1, "老会员")
    with pytest.raises(DomainError) as e:
        services.apply_to_join(m.user, district.union_a2, "老会员", unique_id_number())
    assert e.value.code == "already_member"
    # Filing says nothing about the roster (no oracle); the cadre who decides is told.
    app = services.apply_to_join(make_user("冒名"), district.union_a2, "冒名", m._id_number)
    assert app.status == "pending"
    with pytest.raises(DomainError) as e:
        services.decide_join(district.admin_a, app.pk, approve=True)
    assert e.value.code == "id_number_in_use"
    assert Member.objects.get(id_number_hash=m.id_number_hash).user_id == m.user_id


def test_an_inactive_union_takes_no_applications(district):
    from orgs.models import Org

    Org.objects.filter(pk=district.union_a2.pk).update(is_active=False)
    district.union_a2.refresh_from_db()
    with pytest.raises(DomainError) as e:
        services.apply_to_join(make_user("新人"), district.union_a2, "新人", unique_id_number())
    assert e.value.code == "org_inactive"


def test_two_applications_with_one_id_number_make_one_member(district):
    idn = unique_id_number()
    first = services.apply_to_join(make_user("甲"), district.union_a1, "甲", idn)
    second = services.apply_to_join(make_user("乙"), district.union_b1, "甲", idn)
    services.decide_join(district.admin_a1, first.pk, approve=True)
    with pytest.raises(DomainError) as e:
        services.decide_join(district.admin_b, second.pk, approve=True)
    assert e.value.code == "id_number_in_use"
    assert Member.objects.filter(id_number_hash=pii.id_number_index(idn)).count() == 1
    assert JoinApplication.objects.get(pk=second.pk).status == "pending"


def test_one_member_record_per_id_number_across_the_deployment(district):
    m = make_member(district.union_a1, "甲")
    with pytest.raises(IntegrityError), transaction.atomic():
        make_member(district.union_b1, "甲", id_number=m._id_number)
    assert Member.objects.filter(id_number_hash=m.id_number_hash).count() == 1


# --- transfers -----------------------------------------------------------------------------------


def test_an_approved_transfer_moves_the_member_and_keeps_both_periods(district):
    m = make_member(district.union_a1, "调动")
    t = services.request_transfer(m.user, district.union_b1, "工作调动")
    assert t.status == "pending" and t.from_org_id == district.union_a1.pk
    # Both sides see it; only the receiving side decides.
    assert services.transfers_for(district.admin_a1).filter(pk=t.pk).exists()
    assert services.transfers_for(district.admin_b).filter(pk=t.pk).exists()
    services.decide_transfer(district.admin_b, t.pk, approve=True)
    m.refresh_from_db()
    assert m.org_id == district.union_b1.pk
    periods = list(MembershipPeriod.objects.filter(member=m).order_by("started_at", "id"))
    assert [(p.org_id, p.ended_at is None) for p in periods] == [
        (district.union_a1.pk, False),
        (district.union_b1.pk, True),
    ]
    assert periods[0].ended_at <= periods[1].started_at
    assert periods[1].how == "transfer"
    assert Transfer.objects.get(pk=t.pk).status == "approved"
    paths = set(AuditLog.objects.filter(action="transfer.approve").values_list("org_path", flat=True))
    assert paths == {district.union_a1.path, district.union_b1.path}


def test_only_the_receiving_side_decides_a_transfer(district):
    m = make_member(district.union_a1, "调动")
    t = services.request_transfer(m.user, district.union_b1)
    with pytest.raises(Forbidden) as e:
        services.decide_transfer(district.admin_a1, t.pk, approve=True)
    assert e.value.code == "receiving_union_decides"
    with pytest.raises(Forbidden):
        services.decide_transfer(district.admin_a, t.pk, approve=False, reason="不放")
    with pytest.raises(NotFound):
        services.decide_transfer(make_user("路人"), t.pk, approve=True)
    assert Transfer.objects.get(pk=t.pk).status == "pending"
    assert Member.objects.get(pk=m.pk).org_id == district.union_a1.pk


def test_rejecting_a_transfer_needs_a_reason_and_moves_nobody(district):
    m = make_member(district.union_a1, "调动")
    t = services.request_transfer(m.user, district.union_b1)
    with pytest.raises(Invalid) as e:
        services.decide_transfer(district.admin_b, t.pk, approve=False)
    assert e.value.code == "reason_required"
    services.decide_transfer(district.admin_b, t.pk, approve=False, reason="名额已满")
    assert Member.objects.get(pk=m.pk).org_id == district.union_a1.pk
    assert MembershipPeriod.objects.filter(member=m).count() == 1
    with pytest.raises(DomainError) as e:
        services.decide_transfer(district.admin_b, t.pk, approve=True)
    assert e.value.code == "not_pending"


def test_transfer_requests_are_checked(district):
    uncertified = make_member(district.union_a1, "未认证", certified=False)
    with pytest.raises(DomainError) as e:
        services.request_transfer(uncertified.user, district.union_b1)
    assert e.value.code == "not_a_member"
    with pytest.raises(DomainError) as e:
        services.request_transfer(make_user("路人"), district.union_b1)
    assert e.value.code == "not_a_member"
    m = make_member(district.union_a1, "会员")
    with pytest.raises(Invalid) as e:
        services.request_transfer(m.user, district.union_a1)
    assert e.value.code == "same_org"
    services.request_transfer(m.user, district.union_b1)
    with pytest.raises(DomainError) as e:
        services.request_transfer(m.user, district.union_a2)
    assert e.value.code == "transfer_pending"


def test_a_cancelled_transfer_cannot_be_decided(district):
    m = make_member(district.union_a1, "会员")
    t = services.request_transfer(m.user, district.union_b1)
    services.cancel_transfer(m.user, t.pk)
    with pytest.raises(DomainError) as e:
        services.decide_transfer(district.admin_b, t.pk, approve=True)
    assert e.value.code == "not_pending"
    with pytest.raises(NotFound):
        services.cancel_transfer(make_member(district.union_a2, "别人").user, t.pk)


# --- member card ---------------------------------------------------------------------------------


def test_a_fresh_card_verifies_for_any_cadre_and_is_audited(district):
    m = make_member(district.union_a1, "持卡")
    token = services.card_token(m)
    assert m._id_number not in token
    for cadre in (district.admin_b, district.staff_a):
        assert services.verify_card(cadre, token).pk == m.pk
    assert AuditLog.objects.filter(action="card.verify", target_id=str(m.pk)).count() == 2


def test_only_cadres_verify_cards(district):
    m = make_member(district.union_a1, "持卡")
    with pytest.raises(Forbidden):
        services.verify_card(make_member(district.union_a1, "会员").user, services.card_token(m))


def test_an_expired_card_is_card_expired(district, settings):
    m = make_member(district.union_a1, "持卡")
    token = services.card_token(m)
    settings.MEMBER_CARD_TTL_SECONDS = -1
    with pytest.raises(DomainError) as e:
        services.verify_card(district.admin_a, token)
    assert e.value.code == "card_expired" and e.value.status == 422


def test_a_card_signed_ten_minutes_ago_is_card_expired(district, monkeypatch):
    m = make_member(district.union_a1, "持卡")
    real_time = signing.time.time
    monkeypatch.setattr(signing.time, "time", lambda: real_time() - 600)  # TTL is 5 minutes
    token = services.card_token(m)
    monkeypatch.undo()
    with pytest.raises(DomainError) as e:
        services.verify_card(district.admin_a, token)
    assert e.value.code == "card_expired"


@pytest.mark.parametrize("how", ["flip", "garbage", "other_salt", "empty"])
def test_a_tampered_card_is_card_invalid(district, how):
    m = make_member(district.union_a1, "持卡")
    token = services.card_token(m)
    bad = {
        "flip": token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1],
        "garbage": "not-a-card",
        "other_salt": signing.dumps({"m": m.pk}, salt="something-else"),
        "empty": "",
    }[how]
    with pytest.raises(DomainError) as e:
        services.verify_card(district.admin_a, bad)
    assert e.value.code == "card_invalid"
    assert not AuditLog.objects.filter(action="card.verify").exists()


def test_the_card_of_an_uncertified_member_is_invalid(district):
    m = make_member(district.union_a1, "未认证", certified=False)
    with pytest.raises(DomainError) as e:
        services.verify_card(district.admin_a, services.card_token(m))
    assert e.value.code == "card_invalid"


# --- PII reveal ----------------------------------------------------------------------------------


def test_reveal_pii_returns_the_clear_values_and_writes_an_audit_row(district):
    m = make_member(district.union_a1, "查看")
    got = services.reveal_pii(district.staff_a, m, ip="10.0.0.7")
    assert got == {"id_number": m._id_number, "phone": m.user.phone}
    row = AuditLog.objects.get(action="pii.view")
    assert row.actor_id == district.staff_a.pk and row.target_id == str(m.pk)
    assert row.org_path == district.union_a1.path and row.ip == "10.0.0.7"
    assert m._id_number not in row.summary and m.user.phone not in str(row.data)


def test_reveal_pii_outside_the_scope_is_not_found_and_not_audited(district):
    m = make_member(district.union_a1, "查看")
    for actor in (district.admin_b, m.user, make_user("路人")):
        with pytest.raises(NotFound):
            services.reveal_pii(actor, m)
    assert not AuditLog.objects.filter(action="pii.view").exists()
