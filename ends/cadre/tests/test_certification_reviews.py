"""Certification reviews (the roster phone is dead) in the cadre end and the console's requests page."""

from __future__ import annotations

import pytest
from django.urls import reverse

from conftest import DESKTOP, PASSWORD, PHONE, console_login, make_member, make_user, screenshot
from members import certification
from members.models import CertificationReview, Member


@pytest.fixture(autouse=True)
def _quick_floor(settings):
    settings.UNIONHOME_CERTIFY_MIN_SECONDS = 0.01


def _review(district, name="林审核"):
    roster = make_member(district.union_a1, name, certified=False)
    asker = make_user(name)
    certification.start(asker, name, roster._id_number)
    return certification.request_review(asker, name, roster._id_number), roster, asker


@pytest.mark.django_db
def test_a_cadre_in_scope_approves_in_the_cadre_end_and_the_login_moves(client, district):
    review, roster, asker = _review(district)
    client.force_login(district.admin_b)
    assert f'id="review-{review.pk}"' not in client.get(reverse("cadre:joins")).content.decode()
    assert client.post(reverse("cadre:certification_decide", args=[review.pk]), {"decision": "approve"}).status_code == 404
    client.force_login(district.admin_a1)
    html = client.get(reverse("cadre:joins")).content.decode()
    assert f'id="review-{review.pk}"' in html and roster.id_number_masked in html and roster._id_number not in html
    resp = client.post(reverse("cadre:certification_decide", args=[review.pk]), {"decision": "reject"})
    assert resp.status_code == 422 and 'id="reason-error-' in resp.content.decode()
    resp = client.post(reverse("cadre:certification_decide", args=[review.pk]), {"decision": "approve"})
    assert resp.status_code == 302
    roster = Member.objects.get(pk=roster.pk)
    assert roster.certified and roster.user.phone == asker.phone


@pytest.mark.django_db
def test_the_console_requests_page_decides_reviews(client, district):
    review, roster, _asker = _review(district)
    client.force_login(district.admin_a)
    html = client.get(reverse("console:requests")).content.decode()
    assert 'id="certifications"' in html and roster.name in html
    url = reverse("console:request_decide", args=["certification", review.pk])
    assert client.post(url, {"decision": "reject", "reason": "核实不是本人"}).status_code == 302
    assert CertificationReview.objects.get(pk=review.pk).status == "rejected"
    assert not Member.objects.get(pk=roster.pk).certified


@pytest.mark.browser
@pytest.mark.django_db(transaction=True)
def test_review_lists_at_phone_and_desktop_size(page_factory, district):
    _review(district)
    page = page_factory(PHONE)
    page.goto("/c/login/")
    page.fill("#phone", district.admin_a1.phone)
    page.fill("#password", PASSWORD)
    page.click("#login-btn")
    page.wait_for_selector("#stat-joins")
    page.goto("/c/joins/")
    page.wait_for_selector("#reviews")
    screenshot(page, "cadre-certification-reviews-phone")
    desk = page_factory(DESKTOP)
    console_login(desk, district.admin_a)
    desk.goto("/console/requests/")
    desk.wait_for_selector("#certifications")
    screenshot(desk, "console-certification-reviews-desktop")
