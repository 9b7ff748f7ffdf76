"""Checking what cadres and members type for an activity: every bad value named at once.

`clean` returns the cleaned values or raises one Invalid whose `fields` names each bad field (a
single bad field keeps its specific code, e.g. `invalid_capacity` or `ends_before_start`), so a
form shows every message beside its input and nothing is saved half-way.
"""

from __future__ import annotations

import datetime as dt
import json
import re

from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext as _

from core.errors import Invalid

from ..models import Category, Eligibility
from .errors import ActivityErrors

MAX_CAPACITY = 1_000_000  # an online challenge for a whole district
MAX_POINTS = 1_000_000
MAX_EXTRA_FIELDS = 10
MAX_CHOICES = 20
MAX_ANSWER = 200
_KEY = re.compile(r"^[A-Za-z0-9_]{1,20}$")

# Fields a caller may set; club is handled by the caller (it decides the org and who may publish).
EDITABLE = (
    "title",
    "category",
    "description",
    "place",
    "starts_at",
    "ends_at",
    "signup_opens_at",
    "signup_closes_at",
    "cancel_until",
    "capacity",
    "waitlist",
    "eligibility",
    "extra_fields",
    "points_cost",
    "points_reward",
)
TIMES = ("starts_at", "ends_at", "signup_opens_at", "signup_closes_at", "cancel_until")


class _Errors:
    def __init__(self):
        self.items: dict[str, tuple[str, str]] = {}

    def add(self, field: str, code: str, message: str) -> None:
        self.items.setdefault(field, (code, message))

    def raise_if_any(self) -> None:
        if not self.items:
            return
        if len(self.items) == 1:
            ((field, (code, message)),) = self.items.items()
            raise Invalid(code, message, fields={field: message})
        fields = {f: m for f, (_c, m) in self.items.items()}
        raise Invalid(ActivityErrors.INVALID, _("请检查以下各项：") + "；".join(fields.values()), fields=fields)


def as_int(value: object) -> int | None:
    """An int from an int or a string of digits (forms send strings); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d{1,12}\s*", value):
        return int(value)
    return None


def as_time(value: object) -> dt.datetime | None:
    """An aware datetime from a datetime or an ISO 8601 string (a naive one is Beijing time)."""
    if isinstance(value, str):
        try:
            value = parse_datetime(value.strip())
        except ValueError:
            return None
    if not isinstance(value, dt.datetime):
        return None
    if timezone.is_naive(value):
        value = timezone.make_aware(value, timezone.get_current_timezone())
    return value


def as_bool(value: object) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "on", "yes"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "off", "no", ""):
        return False
    if isinstance(value, int):
        return bool(value)
    return None


def clean_extra_fields(raw: object) -> list[dict] | str:
    """[{"key","label","required","choices"}] or an error message. Keys are made from the position
    when missing; labels are required; a choice list may be a list or one string split on commas."""
    if raw in (None, ""):
        return []
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError:
            return _("报名信息项格式无效")
    if not isinstance(raw, list | tuple):
        return _("报名信息项格式无效")
    if len(raw) > MAX_EXTRA_FIELDS:
        return _("报名信息项最多%(n)s项") % {"n": MAX_EXTRA_FIELDS}
    out: list[dict] = []
    seen: set[str] = set()
    for i, item in enumerate(raw, start=1):
        if isinstance(item, str):
            item = {"label": item}
        if not isinstance(item, dict):
            return _("报名信息项格式无效")
        label = str(item.get("label") or "").strip()
        if not label or len(label) > 30:
            return _("第%(n)s个报名信息项的名称必填，且不超过30字") % {"n": i}
        key = str(item.get("key") or f"f{i}").strip()
        if not _KEY.match(key) or key in seen:
            return _("第%(n)s个报名信息项的标识无效或重复") % {"n": i}
        seen.add(key)
        choices = item.get("choices") or []
        if isinstance(choices, str):
            choices = [c for c in re.split(r"[,，、\n]", choices)]
        if not isinstance(choices, list | tuple):
            return _("第%(n)s个报名信息项的选项格式无效") % {"n": i}
        choices = [str(c).strip()[:30] for c in choices if str(c).strip()]
        if len(choices) > MAX_CHOICES or len(set(choices)) != len(choices):
            return _("第%(n)s个报名信息项的选项最多%(m)s个且不能重复") % {"n": i, "m": MAX_CHOICES}
        required = as_bool(item.get("required", False))
        out.append({"key": key, "label": label, "required": bool(required), "choices": choices})
    return out


def clean(data: dict, *, current=None, now: dt.datetime | None = None, creating: bool = False) -> dict:
    """The cleaned values of `data` (only the keys given), checked together with `current`'s other
    values (an Activity being edited) — or Invalid naming every bad field."""
    now = now or timezone.now()
    errors = _Errors()
    out: dict = {}
    unknown = set(data) - set(EDITABLE)
    for name in sorted(unknown):
        errors.add(name, ActivityErrors.INVALID, _("不能修改此项"))

    if "title" in data:
        title = str(data["title"] or "").strip()
        if not title or len(title) > 100:
            errors.add("title", ActivityErrors.INVALID, _("请填写活动名称（不超过100字）"))
        out["title"] = title
    if "category" in data:
        category = str(data["category"] or Category.OTHER)
        if category not in Category.values:
            errors.add("category", ActivityErrors.INVALID, _("活动类别无效"))
        out["category"] = category
    if "description" in data:
        description = str(data["description"] or "").strip()
        if len(description) > 5000:
            errors.add("description", ActivityErrors.INVALID, _("活动介绍不能超过5000字"))
        out["description"] = description
    if "place" in data:
        place = str(data["place"] or "").strip()
        if len(place) > 200:
            errors.add("place", ActivityErrors.INVALID, _("活动地点不能超过200字"))
        out["place"] = place
    if "capacity" in data:
        capacity = as_int(data["capacity"])
        if capacity is None or not 1 <= capacity <= MAX_CAPACITY:
            errors.add(
                "capacity",
                ActivityErrors.INVALID_CAPACITY,
                _("名额应为1到%(n)s之间的整数") % {"n": f"{MAX_CAPACITY:,}"},
            )
        out["capacity"] = capacity
    if "waitlist" in data:
        waitlist = as_bool(data["waitlist"])
        if waitlist is None:
            errors.add("waitlist", ActivityErrors.INVALID, _("应为是或否"))
        out["waitlist"] = bool(waitlist)
    if "eligibility" in data:
        eligibility = str(data["eligibility"] or Eligibility.MEMBERS)
        if eligibility not in Eligibility.values:
            errors.add("eligibility", ActivityErrors.INVALID, _("报名范围无效"))
        out["eligibility"] = eligibility
    for name, label in (("points_cost", _("报名所需积分")), ("points_reward", _("签到奖励积分"))):
        if name in data:
            value = as_int(data[name] if data[name] not in (None, "") else 0)
            if value is None or not 0 <= value <= MAX_POINTS:
                errors.add(name, ActivityErrors.INVALID, _("%(label)s应为0或正整数") % {"label": label})
            out[name] = value
    if "extra_fields" in data:
        extra = clean_extra_fields(data["extra_fields"])
        if isinstance(extra, str):
            errors.add("extra_fields", ActivityErrors.INVALID, extra)
        else:
            out["extra_fields"] = extra
    for name in TIMES:
        if name in data and data[name] not in (None, ""):
            when = as_time(data[name])
            if when is None:
                errors.add(name, ActivityErrors.INVALID, _("时间格式无效"))
            out[name] = when

    # Times are checked together, with the activity's current values for those not given.
    def value(name: str):
        if name in out:
            return out[name]
        return getattr(current, name, None) if current is not None else None

    starts, ends = value("starts_at"), value("ends_at")
    if creating:
        for name in ("title", "starts_at", "ends_at", "capacity"):
            if name not in data or data[name] in (None, ""):
                errors.add(name, ActivityErrors.INVALID, _("必填"))
    times_ok = all(name not in errors.items for name in TIMES)
    if times_ok and starts and ends:
        if ends <= starts:
            errors.add("ends_at", ActivityErrors.ENDS_BEFORE_START, _("结束时间应晚于开始时间"))
        if (creating or "starts_at" in out) and starts <= now:
            errors.add("starts_at", ActivityErrors.STARTS_IN_PAST, _("开始时间应晚于现在"))
        opens = value("signup_opens_at")
        if opens is None or (creating and "signup_opens_at" not in out):
            opens = min(now, starts - dt.timedelta(minutes=1))
        closes = value("signup_closes_at")
        if closes is None or (creating and "signup_closes_at" not in out):
            closes = starts
        cancel_until = value("cancel_until")
        if cancel_until is None or (creating and "cancel_until" not in out):
            cancel_until = min(closes, starts)
        if opens >= starts:
            errors.add("signup_opens_at", ActivityErrors.INVALID_SIGNUP_WINDOW, _("报名开始时间应早于活动开始时间"))
        elif closes <= opens:
            errors.add("signup_closes_at", ActivityErrors.INVALID_SIGNUP_WINDOW, _("报名截止时间应晚于报名开始时间"))
        elif closes > starts:
            errors.add("signup_closes_at", ActivityErrors.INVALID_SIGNUP_WINDOW, _("报名截止时间不能晚于活动开始时间"))
        if cancel_until > starts:
            errors.add("cancel_until", ActivityErrors.INVALID_SIGNUP_WINDOW, _("取消报名截止时间不能晚于活动开始时间"))
        if creating or "signup_opens_at" in out:
            out["signup_opens_at"] = opens
        if creating or "signup_closes_at" in out:
            out["signup_closes_at"] = closes
        if creating or "cancel_until" in out:
            out["cancel_until"] = cancel_until
    errors.raise_if_any()
    return out


def clean_answers(extra_fields: list[dict], answers: object) -> dict[str, str]:
    """The member's answers to the activity's extra fields, or Invalid naming each missing/bad one
    as `answers.<key>` (422 answers_required when a required one is missing)."""
    if answers is None:
        answers = {}
    if not isinstance(answers, dict):
        raise Invalid(ActivityErrors.INVALID_ANSWERS, _("报名信息格式无效"), fields={"answers": _("应为对象")})
    out: dict[str, str] = {}
    missing: dict[str, str] = {}
    bad: dict[str, str] = {}
    for f in extra_fields or []:
        key = str(f.get("key"))
        raw = answers.get(key)
        text = "" if raw is None else str(raw).strip()
        if len(text) > MAX_ANSWER:
            bad[f"answers.{key}"] = _("不能超过%(n)s字") % {"n": MAX_ANSWER}
            continue
        if not text:
            if f.get("required"):
                missing[f"answers.{key}"] = _("请填写%(label)s") % {"label": f.get("label", key)}
            continue
        choices = f.get("choices") or []
        if choices and text not in choices:
            bad[f"answers.{key}"] = _("请从给定选项中选择")
            continue
        out[key] = text
    if missing:
        labels = "、".join(m for m in missing.values())
        raise Invalid(ActivityErrors.ANSWERS_REQUIRED, labels, fields={**missing, **bad})
    if bad:
        raise Invalid(ActivityErrors.INVALID_ANSWERS, _("报名信息有误"), fields=bad)
    return out
