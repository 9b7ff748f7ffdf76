"""SMS adapter. Real gateways are unreachable here, so the default backend keeps messages in a
development outbox (shown on /dev/sms/) and logs that a code went out, to the masked phone; no
backend ever logs a code.

`AliyunSmsBackend` speaks Alibaba Cloud's Dysmsapi `SendSms` RPC (signature version 1.0,
HMAC-SHA1) to UNIONHOME_SMS_GATEWAY_URL; its tests run it against a local double that checks
the signature the way the real service does.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
import uuid

from django.conf import settings
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _

from core import pii
from core.errors import DomainError

log = logging.getLogger("unionhome.sms")

CODE_TEXT = "【网上职工之家】您的验证码是{code}，10分钟内有效。请勿告诉他人。"


class SmsUnavailable(DomainError):
    status = 503

    def __init__(self):
        super().__init__("sms_unavailable", _("短信发送失败，请稍后再试"))


class SmsBackend:
    def send_code(self, phone: str, code: str) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class DevSmsBackend(SmsBackend):
    def send_code(self, phone: str, code: str) -> None:
        from .models import SmsOutbox

        masked = pii.mask_phone(phone)
        text = CODE_TEXT.format(code=code)
        SmsOutbox.objects.create(phone_hash=pii.phone_index(phone), phone_masked=masked, text=text)
        # Never the text: logs are kept, shipped and read far more widely than the dev inbox.
        log.info("dev SMS code sent to %s (read it in the dev inbox)", masked)


def _pct(value: str) -> str:
    return urllib.parse.quote(value, safe="~")


def aliyun_signature(params: dict[str, str], secret: str, method: str = "POST") -> str:
    canonical = "&".join(f"{_pct(k)}={_pct(v)}" for k, v in sorted(params.items()))
    string_to_sign = f"{method}&{_pct('/')}&{_pct(canonical)}"
    digest = hmac.new(f"{secret}&".encode(), string_to_sign.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


class AliyunSmsBackend(SmsBackend):
    """Template SMS through Dysmsapi. The phone goes in the POST body, never in a URL."""

    def __init__(self):
        self.url = settings.UNIONHOME_SMS_GATEWAY_URL or "https://dysmsapi.aliyuncs.com/"
        self.key_id = settings.UNIONHOME_SMS_ACCESS_KEY_ID
        self.secret = settings.UNIONHOME_SMS_ACCESS_KEY_SECRET
        self.sign_name = settings.UNIONHOME_SMS_SIGN_NAME
        self.template = settings.UNIONHOME_SMS_TEMPLATE_CODE

    def send_code(self, phone: str, code: str) -> None:
        params = {
            "AccessKeyId": self.key_id,
            "Action": "SendSms",
            "Format": "JSON",
            "PhoneNumbers": phone,
            "RegionId": "cn-hangzhou",
            "SignName": self.sign_name,
            "SignatureMethod": "HMAC-SHA1",
            "SignatureNonce": uuid.uuid4().hex,
            "SignatureVersion": "1.0",
            "TemplateCode": self.template,
            "TemplateParam": json.dumps({"code": code}),
            "Timestamp": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "Version": "2017-05-25",
        }
        params["Signature"] = aliyun_signature(params, self.secret)
        body = urllib.parse.urlencode(params).encode()
        req = urllib.request.Request(
            self.url, data=body, method="POST", headers={"Content-Type": "application/x-www-form-urlencoded"}
        )
        try:
            with urllib.request.urlopen(req, timeout=5) as resp:
                answer = json.loads(resp.read() or b"{}")
        except (urllib.error.URLError, TimeoutError, ValueError) as e:
            log.warning("SMS gateway unreachable for %s: %s", pii.mask_phone(phone), type(e).__name__)
            raise SmsUnavailable() from None
        if answer.get("Code") != "OK":
            log.warning("SMS gateway refused %s: %s", pii.mask_phone(phone), answer.get("Code"))
            raise SmsUnavailable()


def get_backend() -> SmsBackend:
    return import_string(settings.UNIONHOME_SMS_BACKEND)()
