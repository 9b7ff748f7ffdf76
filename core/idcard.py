"""Chinese resident ID numbers (GB 11643-1999): 18 characters, region, birth date, check digit."""

from __future__ import annotations

import datetime as dt
import re

from django.utils.translation import gettext as _

_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_CHECK = "10X98765432"
_SHAPE = re.compile(r"^\d{17}[\dX]$")
# First two digits: the province-level division codes of GB/T 2260.
PROVINCE_CODES = frozenset(
    {
        11,
        12,
        13,
        14,
        15,
        21,
        22,
        23,
        31,
        32,
        33,
        34,
        35,
        36,
        37,
        41,
        42,
        43,
        44,
        45,
        46,
        50,
        51,
        52,
        53,
        54,
        61,
        62,
        63,
        64,
        65,
        71,
        81,
        82,
        83,
    }
)


class IdNumberError(ValueError):
    def __init__(self, code: str, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def check_digit(first17: str) -> str:
    return _CHECK[sum(int(c) * w for c, w in zip(first17, _WEIGHTS, strict=True)) % 11]


def normalize(raw: object) -> str:
    return str(raw or "").strip().replace(" ", "").upper()


def validate(raw: object, *, today: dt.date | None = None) -> str:
    """Return the normalized ID number or raise IdNumberError saying what is wrong (never echoing it)."""
    value = normalize(raw)
    if not value:
        raise IdNumberError("required", _("身份证号不能为空"))
    if len(value) != 18:
        raise IdNumberError("invalid_length", _("身份证号应为18位"))
    if not _SHAPE.match(value):
        raise IdNumberError("invalid_format", _("身份证号只能由数字和末位X组成"))
    if int(value[:2]) not in PROVINCE_CODES or value[2:6] == "0000":
        raise IdNumberError("invalid_region", _("身份证号的地区码无效"))
    try:
        birth = dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        raise IdNumberError("invalid_birth_date", _("身份证号中的出生日期无效")) from None
    today = today or dt.date.today()
    if birth > today or birth.year < 1900:
        raise IdNumberError("invalid_birth_date", _("身份证号中的出生日期无效"))
    if check_digit(value[:17]) != value[17]:
        raise IdNumberError("invalid_checksum", _("身份证号校验位不正确"))
    return value


def birth_date(value: str) -> dt.date:
    return dt.date(int(value[6:10]), int(value[10:12]), int(value[12:14]))


def gender(value: str) -> str:
    """'M' or 'F' from the order code's parity."""
    return "M" if int(value[16]) % 2 else "F"
