"""SMS login codes: the resend minute under parallel requests, the per-address and overall hourly caps,
and codes kept out of the logs (dev backend). Run on SQLite and on PostgreSQL (DATABASE_URL)."""

from __future__ import annotations

import logging
import re
import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connections

from accounts import services
from accounts.models import SmsOutbox
from core.errors import Throttled


def _phone(i: int) -> str:
    return f"1371234{i:04d}"


def _send(phone: str, ip: str | None = None) -> str:
    """'sent', or the refusal's code."""
    try:
        services.send_login_code(phone, ip=ip)
    except Throttled as e:
        return e.code
    return "sent"


@pytest.mark.django_db
def test_no_log_record_holds_the_code_or_the_phone(caplog):
    phone = _phone(1)
    with caplog.at_level(logging.DEBUG):
        services.send_login_code(phone, ip="10.0.0.1")
    code = re.search(r"\d{6}", SmsOutbox.objects.get().text).group(0)
    assert caplog.records, "sending a code is logged"
    for rec in caplog.records:
        text = rec.getMessage()
        assert code not in text and phone not in text, text
    assert any("137****0001" in rec.getMessage() for rec in caplog.records)


@pytest.mark.django_db(transaction=True)
def test_ten_simultaneous_requests_for_one_phone_send_exactly_one_sms():
    phone = _phone(2)
    start = threading.Barrier(10)

    def one(i: int) -> str:
        try:
            start.wait()
            return _send(phone, ip=f"10.0.1.{i}")
        finally:
            connections.close_all()

    with ThreadPoolExecutor(10) as pool:
        outcomes = Counter(pool.map(one, range(10)))

    assert outcomes == {"sent": 1, "sms_too_soon": 9}, outcomes
    assert SmsOutbox.objects.count() == 1


@pytest.mark.django_db
def test_a_refused_resend_does_not_use_up_the_daily_allowance(settings):
    phone = _phone(3)
    assert _send(phone) == "sent"
    for _ in range(20):
        assert _send(phone) == "sms_too_soon"
    from accounts.models import RateCounter

    day = RateCounter.objects.get(key__startswith="sms:day:")
    assert day.hits == 1  # only what was sent counts against the ten a day


@pytest.mark.django_db
def test_one_address_may_ask_for_20_codes_an_hour_then_429_others_unaffected():
    for i in range(20):
        assert _send(_phone(100 + i), ip="10.0.2.2") == "sent"
    with pytest.raises(Throttled) as err:
        services.send_login_code(_phone(200), ip="10.0.2.2")
    assert err.value.code == "rate_limited" and err.value.status == 429
    assert 1 <= err.value.retry_after <= 3600
    assert "10.0.2.2" not in err.value.message
    assert _send(_phone(200), ip="10.0.2.3") == "sent"
    assert SmsOutbox.objects.count() == 21


@pytest.mark.django_db
def test_the_overall_hourly_cap_bounds_what_a_bombing_can_cost(settings):
    settings.UNIONHOME_SMS_GLOBAL_HOURLY_LIMIT = 5
    sent = [_send(_phone(300 + i), ip=f"10.0.3.{i}") for i in range(8)]
    assert sent == ["sent"] * 5 + ["rate_limited"] * 3
    assert SmsOutbox.objects.count() == 5


@pytest.mark.django_db
def test_the_daily_limit_per_phone_still_holds(settings):
    from accounts.models import RateCounter

    phone = _phone(4)
    for _ in range(10):
        assert _send(phone) == "sent"
        RateCounter.objects.filter(key__startswith="sms:resend:").delete()  # as if a minute passed
    assert _send(phone) == "sms_too_soon"
    assert SmsOutbox.objects.count() == 10


@pytest.mark.django_db
def test_the_send_code_page_counts_per_client_address(client):
    # The member end passes the client address: 20 phones from one address, then a refusal there.
    for i in range(20):
        client.post(
            "/m/login/", {"tab": "sms", "phone": _phone(400 + i), "action": "send_code"}, REMOTE_ADDR="10.0.4.4"
        )
    html = client.post(
        "/m/login/", {"tab": "sms", "phone": _phone(499), "action": "send_code"}, REMOTE_ADDR="10.0.4.4"
    ).content.decode()
    assert 'id="phone-error"' in html
    assert SmsOutbox.objects.count() == 20


@pytest.mark.django_db
def test_other_senders_share_the_caps_and_get_them_back_when_the_gateway_fails(settings):
    settings.UNIONHOME_SMS_GLOBAL_HOURLY_LIMIT = 3
    taken = services.claim_sms_allowance(ip="10.0.5.5")  # e.g. a certification code
    services.claim_sms_allowance(ip="10.0.5.6")
    assert _send(_phone(500), ip="10.0.5.7") == "sent"
    assert _send(_phone(501), ip="10.0.5.7") == "rate_limited"
    with pytest.raises(Throttled):
        services.claim_sms_allowance()
    services.return_sms_allowance(taken)  # that one was never delivered
    assert _send(_phone(501), ip="10.0.5.7") == "sent"
