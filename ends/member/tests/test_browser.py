"""At phone size: a worker on the roster signs up by SMS code, certifies, and gets a member card with a QR."""

import re

import pytest

from accounts.models import SmsOutbox
from conftest import PHONE, make_member, make_phone, screenshot


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_roster_worker_signs_up_certifies_and_sees_the_card(page_factory, district):
    roster = make_member(district.union_a1, "林小满", certified=False)  # the roster knew an older phone
    phone = make_phone()
    page = page_factory(PHONE)

    page.goto("/m/")
    assert page.url.endswith("/m/login/?next=/m/")
    page.fill("#phone", phone)
    page.click("#send-code")
    page.wait_for_selector("#code-sent")
    code = re.search(r"\d{6}", SmsOutbox.objects.first().text).group(0)
    page.fill("#code", code)
    page.click("#login-btn")
    page.wait_for_selector("#certify-cta")
    assert "粉丝" in page.inner_text(".m-hero")

    page.click("#certify-cta")
    page.fill("#name", "林小满")
    page.fill("#id_number", roster._id_number)
    screenshot(page, "certify-1-name-and-id-phone")
    page.click("#certify-btn")
    # The code goes to the phone on the roster, not to the one that just signed up.
    page.wait_for_selector("#code-sent")
    assert roster.user.phone_masked in page.inner_text("#code-sent")
    screenshot(page, "certify-2-code-sent-phone")
    sent = SmsOutbox.objects.filter(phone_hash=roster.user.phone_hash).get().text
    page.fill("#code", "000000" if "000000" not in sent else "111111")
    page.click("#complete-btn")
    page.wait_for_selector("#code-error")
    screenshot(page, "certify-3-wrong-code-phone")
    page.fill("#code", re.search(r"\d{6}", sent).group(0))
    page.click("#complete-btn")
    page.wait_for_selector("#member-card")
    assert page.url.endswith("/m/card/")
    assert page.inner_text("#card-org") == "甲一公司工会"
    assert "林小满" in page.inner_text("#member-card")
    assert page.locator("#card-qr svg").count() == 1
    assert roster._id_number not in page.content()
    box = page.locator("#card-qr svg").bounding_box()
    assert box["width"] >= 150 and box["x"] + box["width"] <= PHONE["width"]
    screenshot(page, "member-card-phone")

    roster.refresh_from_db()
    assert roster.certified and roster.user.phone == phone


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_a_failed_certification_offers_to_apply_and_a_dead_phone_asks_the_union(page_factory, district):
    from accounts.models import User
    from conftest import PASSWORD, make_user, unique_id_number
    from members.models import CertificationReview

    roster = make_member(district.union_a1, "林小满", certified=False)
    user = make_user("林小满")
    page = page_factory(PHONE)
    page.goto("/m/login/?tab=password")
    page.fill("#phone", user.phone)
    page.fill("#password", PASSWORD)
    page.click("#login-btn")
    page.wait_for_selector(".m-hero")

    page.goto("/m/certify/")
    page.fill("#name", "林小满")
    page.fill("#id_number", unique_id_number())
    page.click("#certify-btn")
    page.wait_for_selector("#join-next")
    assert "认证未通过" in page.inner_text("#certify-error")
    screenshot(page, "certify-4-generic-failure-phone")
    page.click("#join-btn")
    page.wait_for_selector("#apply-btn")
    assert page.input_value("#name") == "林小满"

    page.goto("/m/certify/")
    page.fill("#name", "林小满")
    page.fill("#id_number", roster._id_number)
    page.click("#certify-btn")
    page.wait_for_selector("#review-btn")
    page.click("#review-btn")
    page.wait_for_selector("#review-pending")
    screenshot(page, "certify-5-review-pending-phone")
    assert CertificationReview.objects.get().member_id == roster.pk
    assert User.objects.get(pk=roster.user_id).claimed_at is None
