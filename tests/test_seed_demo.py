"""The demo district (API.md "Demo data"): shape, credentials, determinism, idempotence."""

from __future__ import annotations

import io
import json
from collections import Counter

import pytest
from django.core.management import call_command

from accounts.models import User
from core import idcard, pii
from demo import district as demo
from members.models import JoinApplication, Member, MembershipPeriod, Transfer
from orgs.models import CadreRole, Org

MEMBERS = 300
SEED = 7


def seed(tmp_path, *, members: int = MEMBERS, seed_value: int = SEED, name: str = "creds.json") -> tuple[dict, str]:
    out = io.StringIO()
    path = tmp_path / name
    call_command(
        "seed_demo", members=members, seed=seed_value, credentials_out=str(path), password="Demo@2026x", stdout=out
    )
    return (json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}), out.getvalue()


@pytest.fixture
def var_dir(settings, tmp_path):
    # seed_demo also keeps a copy of the credentials in VAR_DIR: keep it out of the repository's var/.
    settings.VAR_DIR = tmp_path / "var"
    settings.VAR_DIR.mkdir()
    return settings.VAR_DIR


@pytest.fixture
def seeded(db, var_dir, tmp_path):
    creds, output = seed(tmp_path)
    return creds, output


def test_the_district_has_the_documented_shape(seeded):
    assert Org.objects.count() == 2480
    root = Org.objects.get(depth=1)
    assert root.kind == "federation" and root.parent_id is None
    tops = Org.objects.filter(depth=2)
    assert tops.count() == 12
    assert set(tops.values_list("kind", flat=True)) == {"street", "town"}
    assert all(o.parent_id == root.pk for o in tops)
    assert Org.objects.filter(depth=3).count() == 2480 - 13
    assert not Org.objects.filter(depth__gt=3).exists()
    # The denormalized parent agrees with the materialized path.
    for o in Org.objects.filter(depth=3).select_related("parent")[:200]:
        assert o.path.startswith(o.parent.path) and len(o.path) == len(o.parent.path) + Org.steplen
    assert Counter(Org.objects.values_list("parent_id", "name")).most_common(1)[0][1] == 1


def test_members_and_followers_are_at_the_documented_ratio(seeded):
    creds, _ = seeded
    cadre_members = CadreRole.objects.count()
    assert Member.objects.count() == MEMBERS + cadre_members
    assert not Member.objects.filter(certified_at__isnull=True).exists()
    # The demo poll's brushing accounts (no usable password: nobody signs in with them) and the demo
    # merchant's 核销员 are not part of the district's followers.
    followers = User.objects.filter(member__isnull=True, verifier_roles__isnull=True).exclude(password="!").count()
    assert followers == round(MEMBERS * demo.FOLLOWER_RATIO)
    assert 1.3 < followers / MEMBERS < 1.55  # 400k followers of whom 165k are members
    assert len(creds["members"]) == MEMBERS
    assert len(creds["followers"]) == followers
    assert MembershipPeriod.objects.filter(ended_at__isnull=True).count() == Member.objects.count()
    assert JoinApplication.objects.filter(status="pending").exists()
    assert Transfer.objects.filter(status="pending").exists()


def test_every_id_number_is_valid_and_unique(seeded):
    ids = [pii.decrypt(b) for b in Member.objects.values_list("id_number_enc", flat=True)]
    assert len(ids) == len(set(ids))
    for value in ids:
        assert idcard.validate(value) == value
    assert Member.objects.values("id_number_hash").distinct().count() == len(ids)
    genders = {m.gender for m in Member.objects.only("gender")}
    assert genders == {"M", "F"}


def test_the_credentials_file_names_working_logins_in_different_subtrees(seeded, client):
    creds, _ = seeded
    assert set(creds) == {"password", "district_admin", "cadres", "members", "followers", "verifiers"}
    root = Org.objects.get(depth=1)
    assert creds["district_admin"]["org_id"] == root.pk
    cadres = creds["cadres"]
    assert len(cadres) >= 4
    assert all(c["role"] in ("admin", "staff") for c in cadres)
    first_admins = [c for c in cadres if c["role"] == "admin"][:4]
    tops = {Org.objects.get(pk=c["org_id"]).path[: 2 * Org.steplen] for c in first_admins}
    assert len(tops) == 4  # four admins in four different streets/towns

    def sign_in(phone):
        r = client.post(
            "/api/v1/auth/token", {"phone": phone, "password": creds["password"]}, content_type="application/json"
        )
        assert r.status_code == 200, r.content
        return client.get("/api/v1/me", HTTP_AUTHORIZATION=f"Bearer {r.json()['token']}").json()

    me = sign_in(creds["district_admin"]["phone"])
    assert {"org_id": root.pk, "role": "admin"} in me["roles"]
    me = sign_in(cadres[0]["phone"])
    assert {"org_id": cadres[0]["org_id"], "role": cadres[0]["role"]} in me["roles"]
    member = creds["members"][0]
    me = sign_in(member["phone"])
    assert me["certified"] is True and me["org"]["id"] == member["org_id"]
    me = sign_in(creds["followers"][0]["phone"])
    assert me["org"] is None and me["certified"] is False
    for entry in creds["members"][:50]:
        m = Member.objects.get(user__phone_hash=pii.phone_index(entry["phone"]))
        assert m.org_id == entry["org_id"] and m.certified
    for entry in creds["followers"][:50]:
        assert entry["org_id"] is None
        assert not Member.objects.filter(user__phone_hash=pii.phone_index(entry["phone"])).exists()
    # The merchant's 核销员: signs in, holds no role, and may confirm the federation's pickup codes.
    from rewards.models import Verifier

    me = sign_in(creds["verifiers"][0]["phone"])
    assert me["roles"] == [] and me["org"] is None
    assert Verifier.objects.filter(org=root, user__phone_hash=pii.phone_index(creds["verifiers"][0]["phone"])).exists()


def test_a_second_run_on_the_same_database_is_a_no_op_with_a_clear_message(seeded, tmp_path, var_dir):
    creds, first_output = seeded
    assert "2480" in first_output
    counts = (Org.objects.count(), User.objects.count(), Member.objects.count(), CadreRole.objects.count())
    again, output = seed(tmp_path, seed_value=99, name="again.json")
    assert "不再重复生成" in output
    assert (Org.objects.count(), User.objects.count(), Member.objects.count(), CadreRole.objects.count()) == counts
    assert again == creds  # the logins of the first run are handed back


def test_the_generator_is_deterministic_for_a_seed():
    a, b, c = demo.Generator(SEED), demo.Generator(SEED), demo.Generator(SEED + 1)
    seq_a = [(a.name(), a.phone(), a.id_number(), a.company()) for _ in range(200)]
    seq_b = [(b.name(), b.phone(), b.id_number(), b.company()) for _ in range(200)]
    seq_c = [(c.name(), c.phone(), c.id_number(), c.company()) for _ in range(200)]
    assert seq_a == seq_b
    assert seq_a != seq_c
    for _, phone, idn, _ in seq_a:
        assert len(phone) == 11 and idcard.validate(idn) == idn


def _snapshot(creds: dict) -> dict:
    """What a seed produced, independent of database ids."""
    by_pk = dict(Org.objects.values_list("pk", "path"))
    people = sorted(
        (m.name, pii.decrypt(m.phone_enc), pii.decrypt(m.id_number_enc), by_pk[m.org_id], m.joined_on)
        for m in Member.objects.all()
    )
    followers = sorted((u.name, u.phone) for u in User.objects.filter(member__isnull=True))
    orgs = sorted(Org.objects.values_list("path", "name", "kind"))
    roles = sorted((by_pk[r.org_id], r.role, r.user.phone) for r in CadreRole.objects.select_related("user"))

    def portable(entry):
        return {**entry, "org_id": by_pk.get(entry["org_id"])}

    portable_creds = {
        "password": creds["password"],
        "district_admin": portable(creds["district_admin"]),
        "cadres": [portable(c) for c in creds["cadres"]],
        "members": [portable(m) for m in creds["members"]],
        "followers": creds["followers"],
    }
    return {"people": people, "followers": followers, "orgs": orgs, "roles": roles, "creds": portable_creds}


def _wipe() -> None:
    """Delete everything seed_demo wrote, whichever apps it reaches: each model's rows, retried
    until the protected references (ledger movements, ballots, sign-ups) are gone first."""
    from django.apps import apps
    from django.db import IntegrityError, transaction
    from django.db.models import ProtectedError, RestrictedError

    ours = {c.label for c in apps.get_app_configs() if not c.name.startswith(("django.", "ninja", "treebeard"))}
    ours.discard("django_tasks_database")
    left = [m for m in apps.get_models() if m._meta.app_label in ours and m is not Org and not m._meta.proxy]
    for _ in range(len(left) + 1):
        blocked = []
        for model in left:
            try:
                with transaction.atomic():
                    model.objects.all().delete()
            except (ProtectedError, RestrictedError, IntegrityError) as e:
                blocked.append(model)
                why = e.args[0] if e.args else repr(type(e))
        left = blocked
        if not left:
            break
    assert not left, f"could not wipe {left}: {why}"
    for depth in sorted(set(Org.objects.values_list("depth", flat=True)), reverse=True):
        Org.objects.filter(depth=depth).delete()


def test_the_same_seed_on_a_fresh_database_builds_the_same_district(db, var_dir, tmp_path):
    creds1, _ = seed(tmp_path, members=120, name="one.json")
    first = _snapshot(creds1)
    _wipe()
    assert not Org.objects.exists() and not User.objects.exists()
    creds2, _ = seed(tmp_path, members=120, name="two.json")
    second = _snapshot(creds2)
    assert first == second
    _wipe()
    creds3, _ = seed(tmp_path, members=120, seed_value=SEED + 1, name="three.json")
    assert _snapshot(creds3)["people"] != first["people"]
