"""The password sign-in throttle under real parallel clients (SQLite, and PostgreSQL with DATABASE_URL):
of many simultaneous wrong attempts for one phone only five reach the password check."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from accounts import backends, services
from conftest import PASSWORD, make_user
from core.errors import DomainError


@pytest.fixture
def slow_checks(monkeypatch):
    """Counts the password checks, each taking as long as a production hash does (a window the
    attempts race through: the fast test hasher would hide it)."""
    checked = Counter()
    lock = threading.Lock()
    real = backends.PhonePasswordBackend.authenticate

    def counting(self, request, phone=None, password=None, **kw):
        with lock:
            checked[phone] += 1
        time.sleep(0.05)
        return real(self, request, phone=phone, password=password, **kw)

    monkeypatch.setattr(backends.PhonePasswordBackend, "authenticate", counting)
    return checked


def _attempt(phone: str, password: str, ip: str) -> str:
    try:
        services.login_with_password(None, phone, password, ip)
    except DomainError as e:
        return e.code
    return "ok"


def _in_parallel(calls: list[tuple[str, str, str]]) -> Counter:
    start = threading.Barrier(len(calls))

    def one(args: tuple[str, str, str]) -> str:
        try:
            start.wait()
            return _attempt(*args)
        finally:
            connections.close_all()

    with ThreadPoolExecutor(len(calls)) as pool:
        return Counter(pool.map(one, calls))


@pytest.mark.django_db(transaction=True)
def test_of_20_parallel_wrong_passwords_for_one_phone_at_most_5_are_checked(slow_checks):
    user = make_user()
    outcomes = _in_parallel([(user.phone, "wrong", f"10.1.0.{i}") for i in range(20)])

    assert outcomes == {"invalid_credentials": 5, "too_many_attempts": 15}, outcomes
    assert slow_checks[user.phone] == 5
    # And the phone stays blocked, even for the right password.
    assert _attempt(user.phone, PASSWORD, "10.1.1.1") == "too_many_attempts"


@pytest.mark.django_db(transaction=True)
def test_parallel_failures_from_one_address_stop_at_100(slow_checks):
    make_user()
    calls = [(f"1360000{i:04d}", "wrong", "10.2.0.1") for i in range(120)]
    outcomes = _in_parallel(calls[:60]) + _in_parallel(calls[60:])
    assert outcomes == {"invalid_credentials": 100, "too_many_attempts": 20}, outcomes
    assert sum(slow_checks.values()) == 100


@pytest.mark.django_db
def test_a_right_password_does_not_count_as_a_failure():
    user = make_user()
    for _ in range(10):
        assert _attempt(user.phone, PASSWORD, "10.3.0.1") == "ok"
    for _ in range(4):
        assert _attempt(user.phone, "wrong", "10.3.0.1") == "invalid_credentials"
    assert _attempt(user.phone, PASSWORD, "10.3.0.1") == "ok"
    assert _attempt(user.phone, "wrong", "10.3.0.1") == "invalid_credentials"  # the fifth failure
    assert _attempt(user.phone, PASSWORD, "10.3.0.1") == "too_many_attempts"


@pytest.mark.django_db
def test_a_refusal_by_address_does_not_count_against_the_phone():
    user = make_user()
    for i in range(100):
        assert _attempt(f"1360001{i:04d}", "wrong", "10.4.0.1") == "invalid_credentials"
    for _ in range(10):
        assert _attempt(user.phone, "wrong", "10.4.0.1") == "too_many_attempts"
    # Those ten never reached the password check, so the phone is not blocked elsewhere.
    assert _attempt(user.phone, PASSWORD, "10.4.0.2") == "ok"
