"""SMS adapter. Real gateways are unreachable here, so the default backend keeps messages in a
development outbox (shown on /dev/sms/) and prints them to the console with the phone masked."""

from __future__ import annotations

import logging

from django.conf import settings
from django.utils.module_loading import import_string

from core import pii

log = logging.getLogger("unionhome.sms")


class SmsBackend:
    def send(self, phone: str, text: str) -> None:  # pragma: no cover - interface
        raise NotImplementedError


class DevSmsBackend(SmsBackend):
    def send(self, phone: str, text: str) -> None:
        from .models import SmsOutbox

        SmsOutbox.objects.create(phone_hash=pii.phone_index(phone), phone_masked=pii.mask_phone(phone), text=text)
        log.info("dev SMS to %s: %s", pii.mask_phone(phone), text)


def get_backend() -> SmsBackend:
    return import_string(settings.UNIONHOME_SMS_BACKEND)()
