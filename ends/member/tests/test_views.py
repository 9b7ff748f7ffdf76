"""Member end pages: sign-in by SMS code, certification, joining, the card, transfers, passwords."""

import re

import pytest
from django.urls import reverse

from accounts.models import SmsOutbox, User
from conftest import PASSWORD, make_member, make_phone, make_user, unique_id_number
from members.models import JoinApplication, Member, Transfer

pytestmark = pytest.mark.django_db

LOGIN = "/m/login/"


def last_code() -> str:
    return re.search(r"\d{6}", SmsOutbox.objects.first().text).group(0)


def sign_up(client, phone: str):
    client.post(LOGIN, {"tab": "sms", "phone": phone, "action": "send_code"})
    return client.post(LOGIN, {"tab": "sms", "phone": phone, "code": last_code(), "action": "login"})


def test_sms_sign_up_creates_a_follower_and_signs_in(client):
    phone = make_phone()
    resp = client.post(LOGIN, {"tab": "sms", "phone": phone, "action": "send_code"})
    assert resp.status_code == 200
    assert "验证码已发送" in resp.content.decode()
    resp = client.post(LOGIN, {"tab": "sms", "phone": phone, "code": last_code(), "action": "login"})
    assert resp.status_code == 302 and resp["Location"] == reverse("member:home")
    user = User.objects.get_by_phone(phone)
    assert not Member.objects.filter(user=user).exists()
    home = client.get(reverse("member:home")).content.decode()
    assert "粉丝" in home and "未认证" in home
    assert user.phone_masked in home


def test_wrong_code_shows_an_error_beside_the_code_field(client):
    phone = make_phone()
    client.post(LOGIN, {"tab": "sms", "phone": phone, "action": "send_code"})
    resp = client.post(LOGIN, {"tab": "sms", "phone": phone, "code": "000000" if last_code() != "000000" else "111111"})
    html = resp.content.decode()
    assert re.search(r'id="code-error">验证码不正确或已过期<', html)
    assert "_auth_user_id" not in client.session


def test_second_code_within_a_minute_is_refused_with_seconds_beside_the_phone(client):
    phone = make_phone()
    client.post(LOGIN, {"tab": "sms", "phone": phone, "action": "send_code"})
    html = client.post(LOGIN, {"tab": "sms", "phone": phone, "action": "send_code"}).content.decode()
    assert re.search(r'id="phone-error">验证码已发送，请\d+秒后再试', html)
    assert SmsOutbox.objects.count() == 1


def test_invalid_phone_is_reported_beside_the_phone(client):
    html = client.post(LOGIN, {"tab": "sms", "phone": "12", "action": "send_code"}).content.decode()
    assert 'id="phone-error"' in html
    assert SmsOutbox.objects.count() == 0


def test_password_login_and_wrong_password(client):
    user = make_user(phone="13912340001")
    bad = client.post(LOGIN, {"tab": "password", "phone": "13912340001", "password": "nope-nope"})
    assert "手机号或密码不正确" in bad.content.decode()
    ok = client.post(LOGIN, {"tab": "password", "phone": "13912340001", "password": PASSWORD})
    assert ok.status_code == 302
    assert client.session["_auth_user_id"] == str(user.pk)


def test_pages_need_sign_in(client):
    resp = client.get(reverse("member:card"))
    assert resp.status_code == 302 and resp["Location"].startswith(LOGIN)


def roster_code(roster) -> str:
    from core import pii

    row = SmsOutbox.objects.filter(phone_hash=pii.phone_index(roster.user.phone)).first()
    return re.search(r"\d{6}", row.text).group(0)


def test_certify_sends_a_code_to_the_roster_phone_and_the_code_claims_the_roster_account(client, district):
    roster = make_member(district.union_a1, "赵六", certified=False)  # the roster knew another phone
    User.objects.filter(pk=roster.user_id).update(claimed_at=None)
    phone = make_phone()
    sign_up(client, phone)
    resp = client.post(reverse("member:certify"), {"name": "赵六", "id_number": roster._id_number})
    html = resp.content.decode()
    assert resp.status_code == 200 and 'id="code-sent"' in html and roster.user.phone_masked in html
    roster.refresh_from_db()
    assert not roster.certified
    wrong = "000000" if roster_code(roster) != "000000" else "111111"
    data = {"name": "赵六", "id_number": roster._id_number, "action": "complete"}
    bad = client.post(reverse("member:certify"), {**data, "code": wrong})
    assert bad.status_code == 422 and re.search(r'id="code-error">验证码不正确或已过期<', bad.content.decode())
    resp = client.post(reverse("member:certify"), {**data, "code": roster_code(roster)})
    assert resp.status_code == 302 and resp["Location"] == reverse("member:card")
    roster.refresh_from_db()
    assert roster.certified
    assert roster.user.phone == phone
    assert client.session["_auth_user_id"] == str(roster.user_id)
    card = client.get(reverse("member:card")).content.decode()
    assert "<svg" in card and "甲一公司工会" in card and "赵六" in card
    assert roster._id_number not in card
    assert roster.id_number_masked in card


def test_a_dead_roster_phone_can_ask_the_union_to_approve(client, district):
    roster = make_member(district.union_a1, "赵六", certified=False)
    sign_up(client, make_phone())
    client.post(reverse("member:certify"), {"name": "赵六", "id_number": roster._id_number})
    resp = client.post(
        reverse("member:certify"), {"name": "赵六", "id_number": roster._id_number, "action": "review"}, follow=True
    )
    assert 'id="review-pending"' in resp.content.decode()
    from members.models import CertificationReview

    assert CertificationReview.objects.get().member_id == roster.pk


def test_certify_failures_are_one_generic_answer_and_offer_to_apply(client, district):
    roster = make_member(district.union_a1, "赵六", certified=False)
    sign_up(client, make_phone())
    pages = []
    for name, idn in (("赵七", roster._id_number), ("钱八", unique_id_number())):
        resp = client.post(reverse("member:certify"), {"name": name, "id_number": idn})
        assert resp.status_code == 422
        html = resp.content.decode()
        assert 'id="certify-error"' in html and 'id="join-next"' in html and 'id="name-error"' not in html
        pages.append(re.search(r'id="certify-error">([^<]*)<', html).group(1))
    assert pages[0] == pages[1]
    roster.refresh_from_db()
    assert not roster.certified


def test_bad_id_number_is_shown_beside_the_id_field(client, district):
    sign_up(client, make_phone())
    resp = client.post(reverse("member:certify"), {"name": "赵六", "id_number": "110105194912310021"})
    assert 'id="id-error"' in resp.content.decode()


def test_no_roster_match_leads_to_a_prefilled_join_application_without_the_session(client, district):
    sign_up(client, make_phone())
    idn = unique_id_number()
    resp = client.post(reverse("member:certify"), {"name": "钱八", "id_number": idn})
    assert 'id="join-next"' in resp.content.decode()
    assert all(idn not in str(v) and "钱八" not in str(v) for v in client.session.values())
    # The next step posts the typed values to the join page (search=1 shows the form, files nothing).
    page = client.post(reverse("member:join"), {"name": "钱八", "id_number": idn, "search": "1"}).content.decode()
    assert 'value="钱八"' in page and f'value="{idn}"' in page
    assert not JoinApplication.objects.exists()
    missing = client.post(reverse("member:join"), {"name": "钱八", "id_number": idn})
    assert 'id="org-error"' in missing.content.decode()
    resp = client.post(reverse("member:join"), {"name": "钱八", "id_number": idn, "org": district.union_a2.pk})
    assert resp.status_code == 302
    app = JoinApplication.objects.get(name="钱八")
    assert app.org == district.union_a2 and app.status == "pending"
    page = client.get(reverse("member:join")).content.decode()
    assert "甲二社区工会" in page and "待审核" in page
    assert all(idn not in str(v) for v in client.session.values())


def test_org_search_finds_active_unions_by_name(client, district):
    client.force_login(make_user())
    district.union_b1.is_active = False
    district.union_b1.save()
    html = client.get(reverse("member:org_options"), {"q": "公司"}).content.decode()
    assert "甲一公司工会" in html and "乙一公司工会" not in html


def test_rejected_application_shows_the_reason(client, district):
    from members.services import apply_to_join, decide_join

    user = make_user("孙九")
    app = apply_to_join(user, district.union_a1, "孙九", unique_id_number())
    decide_join(district.admin_a1, app.pk, False, "不在本单位工作")
    client.force_login(user)
    page = client.get(reverse("member:certify")).content.decode()
    assert "已驳回" in page and "不在本单位工作" in page


def test_uncertified_user_sees_why_there_is_no_card(client):
    client.force_login(make_user())
    html = client.get(reverse("member:card")).content.decode()
    assert 'id="no-card"' in html and "<svg" not in html
    assert client.get(reverse("member:card_qr")).status_code == 403


def test_card_qr_refreshes_with_a_new_token(client, district):
    m = make_member(district.union_a1, "周十")
    client.force_login(m.user)
    html = client.get(reverse("member:card_qr")).content.decode()
    assert "<svg" in html and 'hx-trigger="every 240s"' in html


def test_transfer_request_and_cancel(client, district):
    m = make_member(district.union_a1, "吴一")
    client.force_login(m.user)
    same = client.post(reverse("member:transfer"), {"to_org": district.union_a1.pk})
    assert Transfer.objects.count() == 0 and same.status_code == 200
    resp = client.post(reverse("member:transfer"), {"to_org": district.union_b1.pk, "reason": "换工作"})
    assert resp.status_code == 302
    t = Transfer.objects.get(member=m)
    page = client.get(reverse("member:transfer")).content.decode()
    assert 'id="pending-transfer"' in page and "乙一公司工会" in page
    client.post(reverse("member:transfer_cancel", args=[t.pk]))
    t.refresh_from_db()
    assert t.status == "cancelled"


def test_follower_cannot_request_a_transfer(client, district):
    client.force_login(make_user())
    html = client.get(reverse("member:transfer")).content.decode()
    assert "只有已实名认证的会员可以申请转接" in html


def test_set_password_validates_then_allows_password_login(client):
    user = make_user(phone="13912340002", password=None)
    client.force_login(user)
    weak = client.post(reverse("member:password"), {"password": "12345678", "password2": "12345678"})
    assert weak.status_code == 200 and "m-err" in weak.content.decode()
    differ = client.post(reverse("member:password"), {"password": "Gx8!kq2mw", "password2": "Gx8!kq2mX"})
    assert "两次输入的密码不一致" in differ.content.decode()
    ok = client.post(reverse("member:password"), {"password": "Gx8!kq2mw", "password2": "Gx8!kq2mw"})
    assert ok.status_code == 302
    client.post(reverse("member:logout"))
    assert "_auth_user_id" not in client.session
    client.post(LOGIN, {"tab": "password", "phone": "13912340002", "password": "Gx8!kq2mw"})
    assert client.session["_auth_user_id"] == str(user.pk)
