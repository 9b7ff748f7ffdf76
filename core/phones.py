"""Mainland China mobile numbers: 11 digits, 1[3-9]x; +86 / 0086 prefixes and separators accepted."""

from __future__ import annotations

import re

from django.utils.translation import gettext as _

_MOBILE = re.compile(r"^1[3-9]\d{9}$")


class PhoneError(ValueError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def normalize(raw: object) -> str:
    value = str(raw or "").strip()
    if isinstance(raw, float) and raw.is_integer():  # Excel stores numbers as floats
        value = str(int(raw))
    value = re.sub(r"[\s\-()]", "", value)
    if value.startswith("+86"):
        value = value[3:]
    elif value.startswith("0086"):
        value = value[4:]
    return value


def validate(raw: object) -> str:
    value = normalize(raw)
    if not value:
        raise PhoneError("required", _("手机号不能为空"))
    if not _MOBILE.match(value):
        raise PhoneError("invalid_phone", _("手机号应为11位中国大陆手机号码"))
    return value
