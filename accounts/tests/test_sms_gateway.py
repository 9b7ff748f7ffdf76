import logging
import re

import pytest

from accounts import services
from accounts.sms import AliyunSmsBackend, SmsUnavailable
from accounts.tests.aliyun_double import AliyunSmsDouble

PHONE = "13912345678"


@pytest.fixture
def gateway(settings):
    double = AliyunSmsDouble("LTAI-test", "secret-xyz", "SMS_0001")
    settings.UNIONHOME_SMS_BACKEND = "accounts.sms.AliyunSmsBackend"
    settings.UNIONHOME_SMS_GATEWAY_URL = double.url
    settings.UNIONHOME_SMS_ACCESS_KEY_ID = "LTAI-test"
    settings.UNIONHOME_SMS_ACCESS_KEY_SECRET = "secret-xyz"
    settings.UNIONHOME_SMS_TEMPLATE_CODE = "SMS_0001"
    with double:
        yield double


@pytest.mark.django_db
def test_login_code_goes_through_the_gateway_signed_and_can_be_used(gateway):
    services.send_login_code(PHONE)
    assert gateway.rejected == []
    assert len(gateway.sent) == 1 and gateway.sent[0]["phone"] == PHONE
    code = gateway.sent[0]["param"]["code"]
    assert re.fullmatch(r"\d{6}", code)
    user, created = services.sign_in_by_code(PHONE, code)
    assert created and user.phone == PHONE


@pytest.mark.django_db
def test_phone_travels_in_the_body_not_the_url(gateway):
    services.send_login_code(PHONE)
    assert gateway.request_lines and all(PHONE not in line for line in gateway.request_lines)


@pytest.mark.django_db
def test_wrong_secret_is_refused_by_the_gateway_and_reported_as_unavailable(gateway, settings, caplog):
    settings.UNIONHOME_SMS_ACCESS_KEY_SECRET = "not-the-secret"
    with caplog.at_level(logging.INFO), pytest.raises(SmsUnavailable) as err:
        AliyunSmsBackend().send_code(PHONE, "123456")
    assert err.value.status == 503 and err.value.code == "sms_unavailable"
    assert gateway.rejected == ["SignatureDoesNotMatch"]
    assert PHONE not in caplog.text and "139****5678" in caplog.text


@pytest.mark.django_db
def test_gateway_down_is_a_clear_error_not_a_crash(settings):
    settings.UNIONHOME_SMS_GATEWAY_URL = "http://127.0.0.1:9/"
    settings.UNIONHOME_SMS_BACKEND = "accounts.sms.AliyunSmsBackend"
    with pytest.raises(SmsUnavailable):
        services.send_login_code(PHONE)


@pytest.mark.django_db
def test_a_failed_send_does_not_block_the_retry(settings, gateway):
    gateway.fail_with = "isv.BUSINESS_LIMIT_CONTROL"
    with pytest.raises(SmsUnavailable):
        services.send_login_code(PHONE)
    gateway.fail_with = None
    services.send_login_code(PHONE)  # no "wait 60 s": the first code was never delivered
    assert len(gateway.sent) == 1
