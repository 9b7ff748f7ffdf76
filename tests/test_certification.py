"""实名认证 (issue 13): a name and an ID number alone never hand over a roster account.

The code goes to the roster phone; every failure is one generic answer; tries are limited.
"""

from __future__ import annotations

import re
import time

import pytest
from django.utils import timezone

from accounts.models import ApiToken, SmsOutbox, User
from accounts.services import issue_token
from conftest import PASSWORD, make_member, make_user, unique_id_number
from core import pii
from core.errors import DomainError, Invalid
from core.models import AuditLog
from members import certification
from members.models import CertificationReview, Member
from points.services import budgets, ledger

URL = "/api/v1/me/certification"


@pytest.fixture(autouse=True)
def _quick_floor(settings):
    settings.UNIONHOME_CERTIFY_MIN_SECONDS = 0.01


def roster_member(org, name="陈一", *, phone=None):
    """A member known only from the roster: an unclaimed account (never signed in) with no password."""
    user = User.objects.create_user(phone or f"1380000{User.objects.count():04d}", name=name)
    return make_member(org, name, certified=False, user=user)


def code_sent_to(phone: str) -> str:
    row = SmsOutbox.objects.filter(phone_hash=pii.phone_index(phone)).first()
    return re.search(r"\d{6}", row.text).group(0)


def test_a_name_and_id_number_alone_do_not_hand_over_the_roster_account(district, api):
    # The attacker read 陈一's name and ID number off a workplace list; 陈一 never signed in.
    m = roster_member(district.union_a1, "陈一")
    budgets.mint(None, district.root, 1000)
    budgets.allocate(district.district_admin, district.root, district.union_a1, 1000)
    budgets.grant(district.admin_a1, district.union_a1, [m.user_id], 120, "先进个人")
    roster_id = m.user_id
    roster_before = User.objects.filter(pk=m.user_id).values("phone_hash", "password", "claimed_at").get()
    attacker = make_user("陈一")
    client = api(attacker)

    first = client.post(URL, {"name": "陈一", "id_number": m._id_number})
    assert first.status_code == 202
    assert first.json() == {"status": "code_sent", "phone_masked": pii.mask_phone(m.user.phone)}
    # The code went to the roster phone, not to the attacker's.
    assert SmsOutbox.objects.filter(phone_hash=m.user.phone_hash).count() == 1
    assert not SmsOutbox.objects.filter(phone_hash=attacker.phone_hash).exists()
    guesses = [g for g in ("000000", "123456", "999999", "") if g != code_sent_to(m.user.phone)]
    for guess in guesses:
        resp = client.post(URL, {"name": "陈一", "id_number": m._id_number, "code": guess})
        assert resp.status_code == 422 and resp.json()["error"]["code"] == "certification_failed"

    assert Member.objects.get(pk=m.pk).user_id == roster_id
    assert not Member.objects.get(pk=m.pk).certified
    assert User.objects.filter(pk=m.user_id).values("phone_hash", "password", "claimed_at").get() == roster_before
    assert ledger.balance_of(m.user) == 120
    assert User.objects.get(pk=attacker.pk).is_active
    assert ApiToken.objects.filter(user=attacker).count() == 1
    me = client.get("/api/v1/me").json()
    assert me["id"] == attacker.pk and me["certified"] is False


def test_the_code_from_the_roster_phone_completes_it_and_keeps_the_roster_id(district, api):
    m = roster_member(district.union_a1, "陈一")
    roster_account = m.user
    follower = make_user("陈一")
    new_phone = follower.phone
    client = api(follower)
    assert client.post(URL, {"name": "陈一", "id_number": m._id_number}).status_code == 202
    code = code_sent_to(roster_account.phone)

    done = client.post(URL, {"name": " 陈一 ", "id_number": m._id_number, "code": code})
    assert done.status_code == 200, done.content
    me = done.json()
    assert me["id"] == roster_account.pk and me["certified"] is True
    assert me["org"] == {"id": district.union_a1.pk, "name": district.union_a1.name}
    assert me["phone_masked"] == pii.mask_phone(new_phone)
    assert client.get("/api/v1/me").json()["id"] == roster_account.pk
    follower.refresh_from_db()
    roster_account.refresh_from_db()
    assert not follower.is_active and not follower.has_usable_password()
    assert roster_account.phone == new_phone and roster_account.claimed_at is not None
    assert roster_account.check_password(PASSWORD)
    assert AuditLog.objects.filter(action="member.certify", target_id=str(m.pk)).exists()
    # The code is spent: a replay is the generic failure.
    again = api(make_user("别人")).post(URL, {"name": "陈一", "id_number": m._id_number, "code": code})
    assert again.status_code == 422


def test_a_code_is_bound_to_the_account_that_asked_for_it(district, api):
    m = roster_member(district.union_a1, "陈一")
    asker, other = api(make_user("甲")), make_user("乙")
    assert asker.post(URL, {"name": "陈一", "id_number": m._id_number}).status_code == 202
    code = code_sent_to(m.user.phone)
    resp = api(other).post(URL, {"name": "陈一", "id_number": m._id_number, "code": code})
    assert resp.status_code == 422 and resp.json()["error"]["code"] == "certification_failed"
    assert not Member.objects.get(pk=m.pk).certified


def test_five_wrong_codes_burn_it(district, api):
    m = roster_member(district.union_a1, "陈一")
    client = api(make_user("陈一"))
    client.post(URL, {"name": "陈一", "id_number": m._id_number})
    code = code_sent_to(m.user.phone)
    wrong = "000000" if code != "000000" else "111111"
    for _ in range(5):
        assert client.post(URL, {"name": "陈一", "id_number": m._id_number, "code": wrong}).status_code == 422
    assert client.post(URL, {"name": "陈一", "id_number": m._id_number, "code": code}).status_code == 422
    assert not Member.objects.get(pk=m.pk).certified


def test_every_failure_is_the_same_answer(district, api):
    unused = roster_member(district.union_a1, "陈一")
    claimed = roster_member(district.union_a1, "陈二")
    User.objects.filter(pk=claimed.user_id).update(claimed_at=timezone.now())
    certified = make_member(district.union_a2, "陈三")
    mine = make_member(district.union_a2, "陈四", certified=False)
    cases = {
        "no match": (make_user("路人"), "路人", unique_id_number()),
        "name mismatch": (make_user("陈二"), "陈二二", unused._id_number),
        "account in use": (make_user("陈二"), "陈二", claimed._id_number),
        "already certified by its owner": (make_user("陈三"), "陈三", certified._id_number),
        "asker holds another row": (mine.user, "陈一", unused._id_number),
    }
    answers = {}
    for label, (user, name, idn) in cases.items():
        resp = api(user).post(URL, {"name": name, "id_number": idn})
        answers[label] = (resp.status_code, resp.json(), resp.get("Retry-After"))
    first = answers["no match"]
    assert first[0] == 422 and first[1]["error"]["code"] == "certification_failed" and first[1]["error"]["fields"] == {}
    assert all(a == first for a in answers.values()), answers
    assert not SmsOutbox.objects.exists()
    assert not Member.objects.filter(pk__in=[unused.pk, claimed.pk], certified_at__isnull=False).exists()


def test_a_bad_id_number_format_is_still_named_on_its_field(district, api):
    resp = api(make_user()).post(URL, {"name": "路人", "id_number": "123"})
    assert resp.status_code == 422
    assert resp.json()["error"]["code"] == "invalid_length" and "id_number" in resp.json()["error"]["fields"]
    resp = api(make_user()).post(URL, {"name": "路人"})
    assert resp.status_code == 422 and "id_number" in resp.json()["error"]["fields"]


def test_failures_take_no_less_than_the_floor(district, settings):
    settings.UNIONHOME_CERTIFY_MIN_SECONDS = 0.25
    m = roster_member(district.union_a1, "陈一")
    for name, idn in (("路人", unique_id_number()), ("陈二", m._id_number)):
        t0 = time.monotonic()
        with pytest.raises(Invalid):
            certification.start(make_user("x"), name, idn)
        assert time.monotonic() - t0 >= 0.25


def test_five_tries_a_day_per_account_then_429_with_retry_after(district, api):
    client = api(make_user("路人"))
    for _ in range(5):
        assert client.post(URL, {"name": "路人", "id_number": unique_id_number()}).status_code == 422
    resp = client.post(URL, {"name": "路人", "id_number": unique_id_number()})
    assert resp.status_code == 429 and resp.json()["error"]["code"] == "too_many_attempts"
    assert 0 < int(resp["Retry-After"]) <= 24 * 3600


def test_five_tries_a_day_per_id_number_across_accounts(district, api):
    m = roster_member(district.union_a1, "陈一")
    for i in range(5):
        api(make_user(f"试{i}")).post(URL, {"name": f"试{i}", "id_number": m._id_number})
    resp = api(make_user("陈一")).post(URL, {"name": "陈一", "id_number": m._id_number})
    assert resp.status_code == 429 and int(resp["Retry-After"]) > 0
    assert not SmsOutbox.objects.exists()


def test_an_address_has_a_generous_limit_of_its_own(district, api, settings):
    settings.UNIONHOME_CERTIFY_IP_LIMIT = 3
    for _ in range(3):
        r = api(make_user()).post(URL, {"name": "路人", "id_number": unique_id_number()}, REMOTE_ADDR="10.0.0.9")
        assert r.status_code == 422
    resp = api(make_user()).post(URL, {"name": "路人", "id_number": unique_id_number()}, REMOTE_ADDR="10.0.0.9")
    assert resp.status_code == 429 and "Retry-After" in resp
    other = api(make_user()).post(URL, {"name": "路人", "id_number": unique_id_number()}, REMOTE_ADDR="10.0.0.10")
    assert other.status_code == 422


def test_own_roster_row_is_certified_at_once(district, api):
    # The person signed in with the roster phone itself (an SMS code proved it).
    m = roster_member(district.union_a1, "陈一")
    User.objects.filter(pk=m.user_id).update(claimed_at=timezone.now())
    resp = api(m.user).post(URL, {"name": "陈一", "id_number": m._id_number})
    assert resp.status_code == 200 and resp.json()["certified"] is True and resp.json()["id"] == m.user_id
    resp = api(m.user).post(URL, {"name": "陈一", "id_number": m._id_number})
    assert resp.status_code == 409 and resp.json()["error"]["code"] == "already_certified"


# --- the roster phone is dead: a cadre vouches ---------------------------------------------------


def test_a_review_needs_a_code_sent_first_and_a_cadre_in_scope_to_approve(district, api):
    m = roster_member(district.union_a1, "陈一")
    follower = make_user("陈一")
    # Asked before any code went out: the generic failure, nothing filed.
    with pytest.raises(Invalid) as e:
        certification.request_review(follower, "陈一", m._id_number)
    assert e.value.code == "certification_failed" and not CertificationReview.objects.exists()

    assert api(follower).post(URL, {"name": "陈一", "id_number": m._id_number}).status_code == 202
    resp = api(follower).post(URL, {"name": "陈一", "id_number": m._id_number, "request_review": True})
    assert resp.status_code == 202 and resp.json() == {"status": "review_pending"}
    review = CertificationReview.objects.get()
    assert review.org == district.union_a1 and review.status == "pending"

    assert not certification.reviews_for(district.admin_b).exists()
    with pytest.raises(DomainError) as e:
        certification.decide_review(district.admin_b, review.pk, True)
    assert e.value.status == 404
    certification.decide_review(district.admin_a, review.pk, True)
    m.refresh_from_db()
    assert m.certified and m.user.phone == follower.phone
    review.refresh_from_db()
    assert review.status == "approved" and review.decided_by == district.admin_a


def test_a_review_cannot_hand_over_an_account_claimed_meanwhile(district, api):
    m = roster_member(district.union_a1, "陈一")
    follower = make_user("陈一")
    api(follower).post(URL, {"name": "陈一", "id_number": m._id_number})
    review = certification.request_review(follower, "陈一", m._id_number)
    User.objects.filter(pk=m.user_id).update(claimed_at=timezone.now())  # the owner signed in
    with pytest.raises(DomainError) as e:
        certification.decide_review(district.admin_a1, review.pk, True)
    assert e.value.code == "account_in_use"
    assert Member.objects.get(pk=m.pk).user_id == m.user_id and not Member.objects.get(pk=m.pk).certified
    certification.decide_review(district.admin_a1, review.pk, False, "本人已登录")
    assert CertificationReview.objects.get(pk=review.pk).status == "rejected"


def test_tokens_follow_the_login_onto_the_roster_account(district, api):
    m = roster_member(district.union_a1, "陈一")
    follower = make_user("陈一")
    raw, _ = issue_token(follower)
    certification.start(follower, "陈一", m._id_number)
    certification.complete(follower, "陈一", m._id_number, code_sent_to(m.user.phone))
    assert ApiToken.objects.filter(user=follower).count() == 0
    assert ApiToken.objects.filter(user_id=m.user_id).count() == 1
