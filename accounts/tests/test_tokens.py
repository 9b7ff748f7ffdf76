"""Bearer tokens: revoking the one in use, a password change revoking them all, purging expired ones."""

from __future__ import annotations

import datetime as dt

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from accounts import services
from accounts.models import ApiToken
from conftest import make_user

REVOKE = "/api/v1/auth/token/revoke"
NEW_PASSWORD = "Gx8!kq2mw"


def _me(client, token: str) -> int:
    return client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {token}").status_code


@pytest.mark.django_db
def test_revoking_the_token_in_use_stops_it_at_once_and_leaves_the_others(client):
    user = make_user()
    used, _ = services.issue_token(user)
    other, _ = services.issue_token(user)
    assert _me(client, used) == 200

    r = client.post(REVOKE, HTTP_AUTHORIZATION=f"Bearer {used}")

    assert r.status_code == 204 and r.content == b""
    assert _me(client, used) == 401
    assert _me(client, other) == 200  # another device of the same person stays signed in
    assert ApiToken.objects.filter(user=user).count() == 1


@pytest.mark.django_db
def test_revoke_needs_a_valid_token(client):
    assert client.post(REVOKE).status_code == 401
    user = make_user()
    raw, _ = services.issue_token(user)
    assert client.post(REVOKE, HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 204
    r = client.post(REVOKE, HTTP_AUTHORIZATION=f"Bearer {raw}")  # already revoked
    assert r.status_code == 401 and r.json()["error"]["code"] == "not_authenticated"


@pytest.mark.django_db
def test_a_password_change_on_the_member_end_revokes_every_token_and_other_session(client, django_user_model):
    from django.test import Client

    user = make_user(phone="13912340077")
    tokens = [services.issue_token(user)[0] for _ in range(2)]
    bystander = make_user()
    theirs, _ = services.issue_token(bystander)
    other_device = Client()
    other_device.force_login(user)
    assert other_device.get(reverse("member:home")).status_code == 200
    client.force_login(user)

    ok = client.post(reverse("member:password"), {"password": NEW_PASSWORD, "password2": NEW_PASSWORD})

    assert ok.status_code == 302
    assert [_me(client, t) for t in tokens] == [401, 401]
    assert _me(client, theirs) == 200  # nobody else's
    assert client.get(reverse("member:home")).status_code == 200  # this session is kept
    assert other_device.get(reverse("member:home")).status_code == 302  # the other one is signed out
    assert services.login_with_password(None, "13912340077", NEW_PASSWORD, "10.0.0.1").pk == user.pk


@pytest.mark.django_db
def test_saving_a_user_without_a_new_password_keeps_the_tokens(client):
    user = make_user()
    raw, _ = services.issue_token(user)
    user.name = "改名"
    user.save()
    user.set_unusable_password()  # not a new secret: nothing to guess from an old token
    user.save()
    assert _me(client, raw) == 200


@pytest.mark.django_db
def test_set_password_anywhere_revokes_the_tokens(client):
    user = make_user()
    raw, _ = services.issue_token(user)
    user.set_password(NEW_PASSWORD)
    user.save(update_fields=["password"])
    assert _me(client, raw) == 401
    assert not ApiToken.objects.filter(user=user).exists()


@pytest.mark.django_db
def test_purge_deletes_expired_tokens_and_keeps_live_ones(client):
    user = make_user()
    live, _ = services.issue_token(user)
    services.issue_token(user)
    services.issue_token(user)
    old = list(ApiToken.objects.order_by("-pk").values_list("pk", flat=True)[:2])
    ApiToken.objects.filter(pk__in=old).update(expires_at=timezone.now() - dt.timedelta(seconds=1))

    purged = services.purge_expired()

    assert purged["tokens"] == 2
    assert list(ApiToken.objects.values_list("user_id", flat=True)) == [user.pk]
    assert _me(client, live) == 200
    assert services.purge_expired()["tokens"] == 0  # idempotent


@pytest.mark.django_db
def test_run_schedule_purges_expired_tokens():
    user = make_user()
    services.issue_token(user)
    ApiToken.objects.update(expires_at=timezone.now() - dt.timedelta(hours=1))
    call_command("run_schedule", "--once")
    assert not ApiToken.objects.exists()
