"""Shared test builders: a small district, people with roles, API clients with tokens."""

from __future__ import annotations

import itertools
import random

import pytest

from accounts.models import User
from core import idcard, pii
from members.models import Member, MembershipPeriod
from orgs.models import CadreRole, Org

PASSWORD = "Passw0rd!x"
_seq = itertools.count(1)


def make_phone() -> str:
    return f"139{next(_seq):08d}"


def make_id_number(rng: random.Random | None = None, birth: str = "19900101") -> str:
    rng = rng or random
    first17 = "510112" + birth + f"{rng.randrange(1000):03d}"
    return first17 + idcard.check_digit(first17)


_id_seq = itertools.count(1)


def unique_id_number() -> str:
    """A fresh valid ID number every call (a birth date per call: never runs out, never repeats)."""
    import datetime as dt

    n = next(_id_seq)
    birth = (dt.date(1960, 1, 1) + dt.timedelta(days=n)).strftime("%Y%m%d")
    first17 = "510112" + birth + f"{n % 1000:03d}"
    return first17 + idcard.check_digit(first17)


def make_user(name: str = "张三", phone: str | None = None, password: str = PASSWORD) -> User:
    return User.objects.create_user(phone or make_phone(), password=password, name=name)


def make_member(
    org: Org, name: str = "李四", *, certified: bool = True, user: User | None = None, id_number: str | None = None
) -> Member:
    from django.utils import timezone

    user = user or make_user(name)
    idn = id_number or unique_id_number()
    m = Member.objects.create(
        user=user,
        org=org,
        name=name,
        id_number_enc=pii.encrypt(idn),
        id_number_hash=pii.id_number_index(idn),
        phone_enc=user.phone_enc,
        phone_hash=user.phone_hash,
        gender=idcard.gender(idn),
        certified_at=timezone.now() if certified else None,
    )
    MembershipPeriod.objects.create(member=m, org=org, started_at=timezone.now(), how="roster")
    m._id_number = idn
    return m


def make_cadre(org: Org, role: str = "admin", name: str = "王干部") -> User:
    u = make_user(name)
    CadreRole.objects.create(user=u, org=org, role=role)
    return u


class District:
    """federation → street A (→ union A1, A2), street B (→ union B1)."""

    def __init__(self):
        def child(parent, name, kind):
            return Org.objects.add_child(parent, {"name": name, "kind": kind, "parent": parent})

        self.root = Org.objects.add_root({"name": "测试区总工会", "kind": "federation"})
        self.street_a = child(self.root, "甲街道工会", "street")
        self.street_b = child(self.root, "乙街道工会", "street")
        self.union_a1 = child(self.street_a, "甲一公司工会", "enterprise")
        self.union_a2 = child(self.street_a, "甲二社区工会", "community")
        self.union_b1 = child(self.street_b, "乙一公司工会", "enterprise")
        for o in (self.root, self.street_a, self.street_b, self.union_a1, self.union_a2, self.union_b1):
            o.refresh_from_db()
        self.district_admin = make_cadre(self.root, "admin", "区管理员")
        self.admin_a = make_cadre(self.street_a, "admin", "甲管理员")
        self.staff_a = make_cadre(self.street_a, "staff", "甲干事")
        self.admin_b = make_cadre(self.street_b, "admin", "乙管理员")
        self.admin_a1 = make_cadre(self.union_a1, "admin", "甲一主席")


@pytest.fixture
def district(db) -> District:
    return District()


@pytest.fixture
def api(client):
    """A Django test client that speaks JSON and can carry a bearer token: api(user).get(...)."""

    class Api:
        def __init__(self, token: str | None = None):
            self.headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}

        def get(self, path, **kw):
            return client.get(path, **self.headers, **kw)

        def post(self, path, data=None, **kw):
            return client.post(path, data, content_type="application/json", **self.headers, **kw)

        def upload(self, path, files: dict, **kw):
            return client.post(path, files, **self.headers, **kw)

        def delete(self, path, **kw):
            return client.delete(path, **self.headers, **kw)

    def for_user(user: User | None = None) -> Api:
        if user is None:
            return Api()
        from accounts.services import issue_token

        raw, _ = issue_token(user)
        return Api(raw)

    return for_user


# --- browser tests -----------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
]
PHONE = {"width": 390, "height": 844}
DESKTOP = {"width": 1440, "height": 900}


@pytest.fixture(scope="session")
def chromium():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture
def page_factory(chromium, live_server):
    """page_factory(viewport=PHONE) → a fresh Playwright page whose relative URLs go to the live server."""
    contexts = []

    def make(viewport=PHONE, locale="zh-CN"):
        ctx = chromium.new_context(viewport=viewport, locale=locale, base_url=live_server.url)
        contexts.append(ctx)
        return ctx.new_page()

    yield make
    for ctx in contexts:
        ctx.close()


def console_login(page, user) -> None:
    """Sign a Playwright page in to the console (desktop) as this user: the password, then for admin
    cadres the TOTP code of a device made here (console_totp_device) when the code step asks."""
    device = console_totp_device(user) if _is_admin_cadre(user) else None
    page.goto("/console/login/")
    page.fill("#id_phone", user.phone)
    page.fill("#id_password", PASSWORD)
    page.click(".login-card button.btn-primary")
    if device is not None:
        page.wait_for_selector("#id_code")
        page.fill("#id_code", next_totp_code(device))
        page.click(".login-card button.btn-primary")
    page.wait_for_selector(".topbar")


# --- the console's sign-in (accounts.twofactor) --------------------------------------------------


def _is_admin_cadre(user) -> bool:
    return CadreRole.objects.filter(user=user, role="admin", org__is_active=True).exists()


def console_totp_device(user):
    """The user's confirmed TOTP device, made when missing (what an enrolled admin cadre has)."""
    from django_otp.plugins.otp_totp.models import TOTPDevice

    device = TOTPDevice.objects.filter(user=user, confirmed=True).order_by("id").first()
    return device or TOTPDevice.objects.create(user=user, name="console", confirmed=True)


def next_totp_code(device) -> str:
    """A code the device accepts now: the current time step's, or, when this device already took
    that step's code (a second sign-in within 30 s; the library refuses replays), the next one's,
    which its tolerance of one step accepts. Waits for the clock when even that one is used."""
    import time

    from django_otp.oath import hotp

    while True:
        device.refresh_from_db()
        now_t = (int(time.time()) - device.t0) // device.step + device.drift
        t = max(now_t, device.last_t + 1)
        if t <= now_t + device.tolerance:
            return f"{hotp(device.bin_key, t, digits=device.digits):0{device.digits}d}"
        time.sleep(1)


def plain_force_login(client, user) -> None:
    """Django's own force_login: a session with no console sign-in proofs (as an SMS login makes)."""
    _django_force_login(client, user)


def _console_ready_force_login(self, user, backend=None) -> None:
    """force_login stands for a full console sign-in, as a signed-in cadre has: the password method
    and, for admin cadres, a verified TOTP device. Tests of the sign-in itself use the login pages
    or plain_force_login."""
    import django_otp

    from accounts import twofactor

    _django_force_login(self, user, backend)
    session = self.session
    session[twofactor.AUTH_METHOD_KEY] = twofactor.PASSWORD
    if _is_admin_cadre(user):
        session[django_otp.DEVICE_ID_SESSION_KEY] = console_totp_device(user).persistent_id
    session.save()


def _install_console_force_login() -> None:
    from django.test.client import Client

    global _django_force_login
    if getattr(Client.force_login, "__name__", "") != "_console_ready_force_login":
        _django_force_login = Client.force_login
        Client.force_login = _console_ready_force_login


_django_force_login = None
_install_console_force_login()


def screenshot(page, name: str) -> str:
    """Keep a screenshot for people to look at (var/screenshots/NAME.png)."""
    from pathlib import Path

    folder = Path(__file__).parent / "var" / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return str(path)


def forget_remembered_reads() -> None:
    """A process remembers the open polls, rewards and activities it read for a few seconds
    (core.recent); a test database rolled back hands their ids out again, so tests (and
    property-test examples) start without them."""
    from activities.services import signups
    from rewards.services import mall
    from votes.services import ballots

    ballots._recent.clear()
    mall._recent.clear()
    signups._open.clear()


@pytest.fixture(autouse=True)
def _fresh_cache():
    """Each test starts with empty caches: the portal caches its counts for a minute; see also
    forget_remembered_reads."""
    from django.core.cache import cache

    cache.clear()
    forget_remembered_reads()
    yield
