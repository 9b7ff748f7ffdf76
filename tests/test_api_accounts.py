"""Sign-in, throttling, /me, the error shape, paging, and org reads (API.md "Accounts and orgs")."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from accounts.models import ApiToken, RateCounter, User
from accounts.services import issue_token
from conftest import PASSWORD, make_member, make_user
from core import idcard, pii
from members.models import Member

TOKEN = "/api/v1/auth/token"


def assert_error(r, status: int, code: str) -> dict:
    assert r.status_code == status, r.content
    body = r.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert isinstance(body["error"]["fields"], dict)
    return body["error"]


def sign_in(client, phone: str, password: str, ip: str = "10.0.0.1"):
    return client.post(TOKEN, {"phone": phone, "password": password}, content_type="application/json", REMOTE_ADDR=ip)


# --- tokens --------------------------------------------------------------------------------------


def test_a_right_password_gets_a_token_that_works(db, client, api):
    user = make_user("张三")
    r = sign_in(client, user.phone, PASSWORD)
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"token", "expires_at"}
    expires = dt.datetime.fromisoformat(body["expires_at"])
    assert expires.utcoffset() is not None  # ISO 8601 with offset
    assert expires > timezone.now() + dt.timedelta(hours=1)
    me = client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {body['token']}")
    assert me.status_code == 200 and me.json()["id"] == user.pk
    # Only a hash of the token is stored.
    assert not ApiToken.objects.filter(key_hash=body["token"]).exists()


def test_the_phone_may_be_written_with_plus_86_and_spaces(db, client):
    user = make_user("张三")
    p = user.phone
    assert sign_in(client, f"+86 {p[:3]} {p[3:7]} {p[7:]}", PASSWORD).status_code == 200


@pytest.mark.parametrize("case", ["wrong_password", "unknown_phone", "empty_password"])
def test_bad_credentials_are_401_invalid_credentials(db, client, case):
    user = make_user("张三")
    phone, password = {
        "wrong_password": (user.phone, "not-the-password"),
        "unknown_phone": ("13800000000", PASSWORD),
        "empty_password": (user.phone, ""),
    }[case]
    assert_error(sign_in(client, phone, password), 401, "invalid_credentials")


def test_an_inactive_user_cannot_sign_in(db, client):
    user = make_user("张三")
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert_error(sign_in(client, user.phone, PASSWORD), 401, "invalid_credentials")


def test_five_failures_for_one_phone_block_it_even_with_the_right_password(db, client):
    user = make_user("张三")
    for _ in range(5):
        assert sign_in(client, user.phone, "wrong").status_code == 401
    r = sign_in(client, user.phone, PASSWORD)
    assert_error(r, 429, "too_many_attempts")
    retry = int(r["Retry-After"])
    assert 1 <= retry <= 15 * 60 + 1
    # From another address too: the per-phone limit is the hard one.
    assert_error(sign_in(client, user.phone, PASSWORD, ip="10.9.9.9"), 429, "too_many_attempts")


def test_four_failures_do_not_block(db, client):
    user = make_user("张三")
    for _ in range(4):
        sign_in(client, user.phone, "wrong")
    assert sign_in(client, user.phone, PASSWORD).status_code == 200


def test_the_block_lifts_when_the_window_passes(db, client):
    user = make_user("张三")
    for _ in range(5):
        sign_in(client, user.phone, "wrong")
    assert sign_in(client, user.phone, PASSWORD).status_code == 429
    # The window opened at the first failure and lasts 15 minutes: as if they had passed.
    RateCounter.objects.update(resets_at=int(timezone.now().timestamp() * 1000) - 1)
    assert sign_in(client, user.phone, PASSWORD).status_code == 200


def test_another_phone_from_the_same_address_is_not_blocked_by_those_five(db, client):
    blocked, other = make_user("张三"), make_user("李四")
    for _ in range(5):
        sign_in(client, blocked.phone, "wrong", ip="10.1.1.1")
    assert sign_in(client, blocked.phone, PASSWORD, ip="10.1.1.1").status_code == 429
    assert sign_in(client, other.phone, PASSWORD, ip="10.1.1.1").status_code == 200
    assert sign_in(client, other.phone, "wrong", ip="10.1.1.1").status_code == 401


def test_a_workplace_behind_one_address_is_blocked_only_after_100_failures(db, client):
    user = make_user("张三")
    # 99 failures spread over many phones from one NAT address: nobody else is blocked.
    for i in range(99):
        assert sign_in(client, f"1360000{i:04d}", "wrong", ip="10.2.2.2").status_code == 401
    assert sign_in(client, user.phone, PASSWORD, ip="10.2.2.2").status_code == 200
    assert sign_in(client, "13600009999", "wrong", ip="10.2.2.2").status_code == 401  # the 100th
    r = sign_in(client, user.phone, PASSWORD, ip="10.2.2.2")
    assert_error(r, 429, "too_many_attempts")
    assert int(r["Retry-After"]) >= 1
    assert sign_in(client, user.phone, PASSWORD, ip="10.3.3.3").status_code == 200


def test_failure_records_hold_no_raw_phone_or_address(db, client):
    user = make_user("张三")
    sign_in(client, user.phone, "wrong", ip="10.4.4.4")
    keys = list(RateCounter.objects.values_list("key", flat=True))
    assert len(keys) == 2
    assert all(user.phone not in k and "10.4.4.4" not in k for k in keys)


# --- /me -----------------------------------------------------------------------------------------

ME_KEYS = {"id", "name", "phone_masked", "certified", "org", "roles", "points_balance"}


def test_me_of_a_certified_member_matches_api_md_and_their_member_list_id(district, api):
    m = make_member(district.union_a1, "王五")
    me = api(m.user).get("/api/v1/me")
    assert me.status_code == 200
    body = me.json()
    assert set(body) == ME_KEYS
    phone = m.user.phone
    assert body["name"] == "王五"
    assert body["phone_masked"] == phone[:3] + "****" + phone[-4:]
    assert phone not in me.content.decode()
    assert body["certified"] is True
    assert body["org"] == {"id": district.union_a1.pk, "name": district.union_a1.name}
    assert body["roles"] == []
    assert body["points_balance"] == 0
    listed = api(district.admin_a1).get(f"/api/v1/orgs/{district.union_a1.pk}/members").json()["items"]
    mine = [i for i in listed if i["name"] == "王五"]
    assert len(mine) == 1 and mine[0]["id"] == body["id"]


def test_me_of_an_uncertified_roster_member_says_not_certified(district, api):
    m = make_member(district.union_a2, "赵六", certified=False)
    body = api(m.user).get("/api/v1/me").json()
    assert body["certified"] is False
    assert body["org"]["id"] == district.union_a2.pk


def test_me_of_a_follower_has_a_null_org(db, api):
    follower = make_user("关注者")
    body = api(follower).get("/api/v1/me").json()
    assert set(body) == ME_KEYS
    assert body["org"] is None and body["certified"] is False and body["roles"] == []


def test_me_of_a_cadre_lists_each_role(district, api):
    from orgs.models import CadreRole

    CadreRole.objects.create(user=district.admin_a, org=district.union_b1, role="staff")
    body = api(district.admin_a).get("/api/v1/me").json()
    assert sorted(body["roles"], key=lambda r: r["org_id"]) == sorted(
        [{"org_id": district.street_a.pk, "role": "admin"}, {"org_id": district.union_b1.pk, "role": "staff"}],
        key=lambda r: r["org_id"],
    )
    assert body["org"] is None  # a cadre who is not a member


# --- 401 -----------------------------------------------------------------------------------------


def test_without_a_token_is_401_in_the_error_shape(db, api):
    assert_error(api().get("/api/v1/me"), 401, "not_authenticated")


def test_an_expired_token_is_401(db, client):
    user = make_user()
    raw, _ = issue_token(user)
    ApiToken.objects.update(expires_at=timezone.now() - dt.timedelta(seconds=1))
    assert_error(client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw}"), 401, "not_authenticated")


@pytest.mark.parametrize("header", ["Bearer nonsense", "Bearer ", "Token abc", "bearer"])
def test_a_wrong_or_malformed_token_is_401(db, client, header):
    make_user()
    assert_error(client.get("/api/v1/me", HTTP_AUTHORIZATION=header), 401, "not_authenticated")


def test_a_token_of_a_deactivated_user_is_401(db, api):
    user = make_user()
    a = api(user)
    User.objects.filter(pk=user.pk).update(is_active=False)
    assert_error(a.get("/api/v1/me"), 401, "not_authenticated")


# --- 400 / 422 -----------------------------------------------------------------------------------


@pytest.mark.parametrize("body", ['{"phone": "139', "not json at all", "[1, 2", "\x00\x01"])
def test_a_body_that_is_not_json_is_400(db, client, body):
    r = client.post(TOKEN, body, content_type="application/json")
    assert_error(r, 400, "bad_request")


def test_missing_fields_are_422_naming_each(db, client):
    r = client.post(TOKEN, {}, content_type="application/json")
    err = assert_error(r, 422, "invalid")
    assert set(err["fields"]) == {"phone", "password"}
    r = client.post(TOKEN, {"phone": "13900000000"}, content_type="application/json")
    assert set(assert_error(r, 422, "invalid")["fields"]) == {"password"}


def test_wrong_typed_fields_are_422(db, client):
    r = client.post(TOKEN, {"phone": ["x"], "password": {"a": 1}}, content_type="application/json")
    err = assert_error(r, 422, "invalid")
    assert set(err["fields"]) == {"phone", "password"}


def test_an_empty_body_is_not_a_500(db, client):
    r = client.post(TOKEN, "", content_type="application/json")
    assert r.status_code in (400, 422)
    assert "error" in r.json()


def test_org_create_with_missing_and_wrong_typed_fields_names_them(district, api):
    r = api(district.district_admin).post("/api/v1/orgs", {"parent_id": "abc"})
    err = assert_error(r, 422, "invalid")
    assert set(err["fields"]) == {"parent_id", "name", "kind"}


def test_bad_query_values_are_422_not_500(district, api):
    r = api(district.district_admin).get(f"/api/v1/orgs/{district.root.pk}/children?page=abc")
    assert "page" in assert_error(r, 422, "invalid")["fields"]


def test_an_unknown_api_path_is_404_in_the_error_shape(db, api):
    assert_error(api().get("/api/v1/no-such-thing"), 404, "not_found")
    assert_error(api().get("/api/v2/orgs"), 404, "not_found")


# --- paging --------------------------------------------------------------------------------------


def _bulk_members(org, n: int) -> None:
    users = [User(name=f"批量{i}", phone_enc=b"", phone_hash=pii.phone_index(f"1350000{i:04d}")) for i in range(n)]
    for u, i in zip(users, range(n), strict=True):
        u.phone_enc = pii.encrypt(f"1350000{i:04d}")
    User.objects.bulk_create(users)
    users = list(User.objects.filter(name__startswith="批量").order_by("pk"))
    ms = []
    for i, u in enumerate(users):
        first17 = f"51011219800101{i:03d}"
        idn = first17 + idcard.check_digit(first17)
        ms.append(
            Member(
                user=u,
                org=org,
                name=u.name,
                id_number_enc=pii.encrypt(idn),
                id_number_hash=pii.id_number_index(idn),
                phone_enc=u.phone_enc,
                phone_hash=u.phone_hash,
            )
        )
    Member.objects.bulk_create(ms)


def test_page_size_is_capped_at_200_and_pages_do_not_overlap(district, api):
    _bulk_members(district.union_a1, 230)
    a = api(district.admin_a1)
    url = f"/api/v1/orgs/{district.union_a1.pk}/members"
    big = a.get(url + "?page_size=1000").json()
    assert big["count"] == 230 and len(big["items"]) == 200
    p2 = a.get(url + "?page_size=1000&page=2").json()
    assert len(p2["items"]) == 30
    assert not {i["id"] for i in big["items"]} & {i["id"] for i in p2["items"]}
    small = a.get(url + "?page_size=7&page=3").json()
    assert len(small["items"]) == 7 and small["count"] == 230
    assert [i["id"] for i in small["items"]] == [i["id"] for i in big["items"][14:21]]
    default = a.get(url).json()
    assert len(default["items"]) == 50
    beyond = a.get(url + "?page=99").json()
    assert beyond["items"] == [] and beyond["count"] == 230
    odd = a.get(url + "?page=0&page_size=0")
    assert odd.status_code in (200, 422)


# --- orgs ----------------------------------------------------------------------------------------


def test_any_signed_in_user_may_read_an_org_and_its_children(district, api):
    follower = make_user("关注者")
    member = make_member(district.union_b1).user
    for user in (follower, member, district.admin_b, district.admin_a1):
        r = api(user).get(f"/api/v1/orgs/{district.street_a.pk}")
        assert r.status_code == 200
        body = r.json()
        assert {"id", "name", "kind", "parent_id"} <= set(body)
        assert body == {**body, "id": district.street_a.pk, "name": "甲街道工会", "kind": "street"}
        assert body["parent_id"] == district.root.pk
        kids = api(user).get(f"/api/v1/orgs/{district.street_a.pk}/children").json()
        assert kids["count"] == 2
        assert {k["id"] for k in kids["items"]} == {district.union_a1.pk, district.union_a2.pk}
        assert all(k["parent_id"] == district.street_a.pk for k in kids["items"])
    root = api(follower).get(f"/api/v1/orgs/{district.root.pk}").json()
    assert root["parent_id"] is None


def test_org_reads_need_a_sign_in_and_a_real_org(district, api):
    assert_error(api().get(f"/api/v1/orgs/{district.root.pk}"), 401, "not_authenticated")
    assert_error(api().get(f"/api/v1/orgs/{district.root.pk}/children"), 401, "not_authenticated")
    user = make_user()
    assert_error(api(user).get("/api/v1/orgs/987654"), 404, "not_found")
    assert_error(api(user).get("/api/v1/orgs/987654/children"), 404, "not_found")


def test_health_needs_no_database(client):
    # No db fixture: pytest-django refuses any query here, so touching the database would fail.
    r = client.get("/api/v1/health")
    assert r.status_code == 200 and r.json() == {"status": "ok"}


@pytest.mark.parametrize(
    "query",
    ["page=99999999999999999999999", "page_size=99999999999999999999999", "page=-5&page_size=-5", "page=0"],
)
def test_extreme_paging_values_are_never_a_500(district, api, query):
    # Found a bug: a huge ?page= overflowed the SQL OFFSET (500); now it is a page past the end.
    for path in (f"/api/v1/orgs/{district.root.pk}/children", f"/api/v1/orgs/{district.root.pk}/members"):
        r = api(district.district_admin).get(f"{path}?{query}")
        assert r.status_code == 200, r.content
        body = r.json()
        assert body["count"] == (2 if path.endswith("children") else 0)
        if query.startswith("page=9"):
            assert body["items"] == []


@pytest.mark.parametrize("path", ["/orgs/99999999999999999999999", "/orgs/99999999999999999999999/children"])
def test_an_id_beyond_64_bits_is_404_not_500(district, api, path):
    assert_error(api(district.admin_a).get("/api/v1" + path), 404, "not_found")
