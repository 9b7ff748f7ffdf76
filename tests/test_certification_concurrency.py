"""Two completions of one certification code at once, from real parallel clients: one certifies.

The live server answers each request on its own thread and database connection (run with
DATABASE_URL set for PostgreSQL).
"""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from concurrent.futures import ThreadPoolExecutor

import pytest

from accounts.models import ApiToken, SmsOutbox, User
from accounts.services import issue_token
from conftest import make_member, make_user
from core import pii
from members.models import Member


def _post(url: str, token: str, body: dict) -> tuple[int, dict]:
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.mark.django_db(transaction=True)
def test_two_parallel_completions_with_one_code_certify_once(district, live_server, settings):
    settings.UNIONHOME_CERTIFY_MIN_SECONDS = 0.01
    roster_user = User.objects.create_user("13800009999", name="陈并发")
    m = make_member(district.union_a1, "陈并发", certified=False, user=roster_user)
    follower = make_user("陈并发")
    url = live_server.url + "/api/v1/me/certification"
    tokens = [issue_token(follower)[0] for _ in range(8)]
    status, body = _post(url, tokens[0], {"name": "陈并发", "id_number": m._id_number})
    assert status == 202, body
    text = SmsOutbox.objects.filter(phone_hash=pii.phone_index("13800009999")).get().text
    code = re.search(r"\d{6}", text).group(0)

    done = {"name": "陈并发", "id_number": m._id_number, "code": code}
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda t: _post(url, t, done), tokens))
    # One certifies. The others are refused: the code is spent (422), or, when their token was
    # looked up after the winner moved the login onto the roster account, that account is
    # already certified (409 already_certified). Either way nothing is certified twice.
    assert [s for s, _ in results].count(200) == 1, results
    winner = next(b for s, b in results if s == 200)
    assert winner["id"] == roster_user.pk and winner["certified"] is True
    losers = [(s, b["error"]["code"]) for s, b in results if s != 200]
    assert set(losers) <= {(422, "certification_failed"), (409, "already_certified")}, results
    m.refresh_from_db()
    assert m.certified and m.user_id == roster_user.pk
    assert User.objects.get(pk=roster_user.pk).phone_hash == pii.phone_index(follower.phone)
    assert not User.objects.get(pk=follower.pk).is_active
    assert ApiToken.objects.filter(user_id=roster_user.pk).count() == 8
    assert Member.objects.filter(certified_at__isnull=False, pk=m.pk).count() == 1
