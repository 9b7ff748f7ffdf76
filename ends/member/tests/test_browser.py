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
    page.click("#certify-btn")
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
