"""Request bodies parsed by hand, for the rush operations (ballots, sign-ups): one or two fields,
where ninja's schema machinery cost about a tenth of the operation. Errors keep API.md's shapes:
400 for a body that is not JSON, 422 `invalid` with the field named."""

from __future__ import annotations

import json

from django.http import HttpRequest
from django.utils.translation import gettext as _
from ninja.errors import HttpError

from core.errors import Invalid


def json_object(request: HttpRequest, *, required: bool = False) -> dict:
    """The body as a JSON object; an empty body is {} (or 422 when `required`); 400 when not JSON."""
    raw = request.body
    if not raw.strip():
        if required:
            raise Invalid("invalid", _("请求体缺失"), fields={"body": _("必填")})
        return {}
    try:
        body = json.loads(raw)
    except ValueError:
        raise HttpError(400, "Cannot parse request body") from None
    if not isinstance(body, dict):
        raise Invalid("invalid", _("请求体应为JSON对象"), fields={"body": _("应为对象")})
    return body


def required_list(body: dict, field: str) -> list:
    """body[field] when it is a list, else 422 `invalid` naming the field (as a schema would)."""
    if field not in body:
        raise Invalid("invalid", _("请求参数无效：") + field, fields={field: _("必填")})
    value = body[field]
    if not isinstance(value, list):
        raise Invalid("invalid", _("请求参数无效：") + field, fields={field: _("类型不正确：") + _("应为列表")})
    return value


def openapi_body(schema: dict, *, required: bool = True) -> dict:
    """`openapi_extra` documenting a hand-parsed JSON body in /api/v1/docs."""
    return {"requestBody": {"required": required, "content": {"application/json": {"schema": schema}}}}
