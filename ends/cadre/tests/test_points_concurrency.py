"""The grant form's nonce under real parallel posts: one form, one grant.

Each post goes to the live server over HTTP (its own thread and database connection) with the
cadre's session; run with DATABASE_URL set for PostgreSQL.
"""

from __future__ import annotations

import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.conf import settings as django_settings
from django.test import Client

from conftest import make_member
from points.services import budgets, ledger


@pytest.mark.django_db(transaction=True)
def test_parallel_posts_of_one_grant_form_grant_once(district, live_server):
    budgets.mint(None, district.root, 100000)
    budgets.allocate(district.district_admin, district.root, district.union_a1, 10000)
    a = make_member(district.union_a1, "并发甲")
    browser = Client()
    browser.force_login(district.admin_a1)
    session = browser.cookies[django_settings.SESSION_COOKIE_NAME].value

    def fetch(path: str, data: dict | None = None, cookies: str = "") -> tuple[int, str, str]:
        body = urllib.parse.urlencode(data, doseq=True).encode() if data is not None else None
        req = urllib.request.Request(live_server.url + path, data=body, method="POST" if body else "GET")
        req.add_header("Cookie", cookies)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, resp.read().decode(), resp.headers.get("Set-Cookie", "")
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode(), ""

    cookie = f"{django_settings.SESSION_COOKIE_NAME}={session}"
    status, html, set_cookie = fetch(f"/c/grant/?org={district.union_a1.pk}", cookies=cookie)
    assert status == 200
    csrf_cookie = re.search(r"csrftoken=([^;]+)", set_cookie).group(1)
    form_token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', html).group(1)
    nonce = re.search(r'name="nonce" value="([^"]+)"', html).group(1)
    data = {
        "csrfmiddlewaretoken": form_token,
        "org": district.union_a1.pk,
        "nonce": nonce,
        "member_ids": [a.user_id],
        "amount": "25",
        "reason": "并发测试",
    }
    gate = threading.Barrier(6)

    def post(_):
        gate.wait()
        return fetch("/c/grant/", data, cookies=f"{cookie}; csrftoken={csrf_cookie}")[0]

    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(post, range(6)))
    assert ledger.balance_of(a.user) == 25, statuses
    assert sorted(statuses) == [200] + [409] * 5  # the one grant redirects (followed) to the form
