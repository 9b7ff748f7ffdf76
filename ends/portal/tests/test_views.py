import re

import pytest
from django.core.cache import cache
from django.test import override_settings

from accounts.models import SmsOutbox
from conftest import make_member, make_user

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_portal_stats():
    """The portal caches its counts for 60 s; a page load in an earlier test must not leak in."""
    cache.clear()


def stat(html: str, key: str) -> int:
    return int(re.search(rf'id="stat-{key}"><div class="p-stat__num">(\d+)<', html).group(1))


def test_portal_shows_the_federation_and_counts(client, district):
    make_member(district.union_a1, "甲", certified=True)
    make_member(district.union_a1, "乙", certified=False)
    make_user("粉丝一")
    html = client.get("/").content.decode()
    assert "测试区总工会" in html
    assert stat(html, "orgs") == 6
    assert stat(html, "members") == 2
    assert stat(html, "certified") == 1
    # followers: active accounts without a member record (the district's five cadres and the new follower)
    assert stat(html, "followers") == 6
    for href in ('href="/m/"', 'href="/c/"', 'href="/console/"'):
        assert href in html
    assert 'name="language"' in html


@override_settings(UNIONHOME_DEV_INBOX=True)
def test_dev_inbox_lists_codes(client):
    from accounts.services import send_login_code

    send_login_code("13912345678")
    html = client.get("/dev/sms/").content.decode()
    code = re.search(r"\d{6}", SmsOutbox.objects.first().text).group(0)
    assert "139****5678" in html and '<p class="p-sms__code"' in html and code in html
