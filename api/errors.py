"""API.md's error shape, `{"error": {"code", "message", "fields"}}`, for every failure."""

from __future__ import annotations

import logging

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MultiPartParserError
from django.utils.translation import gettext as _
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError, ValidationError

from core.errors import DomainError, Throttled
from core.idempotency import KeyTaken

log = logging.getLogger("unionhome.api")

_STATUS_CODES = {
    400: "bad_request",
    401: "not_authenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid",
    429: "rate_limited",
}


def error_response(
    status: int, code: str, message: str, fields: dict | None = None, headers: dict | None = None
) -> HttpResponse:
    resp = JsonResponse(
        {"error": {"code": code, "message": message, "fields": fields or {}}},
        status=status,
        json_dumps_params={"ensure_ascii": False},
    )
    for k, v in (headers or {}).items():
        resp[k] = v
    return resp


def _field_name(loc: list) -> str:
    # ninja locations look like ["body", "payload", "options", 0, "title"]; drop the wrapper parts.
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "form", "file", "payload", "header")]
    return ".".join(parts) or "body"


def _message(err: dict) -> str:
    kind = err.get("type", "")
    if kind == "missing":
        return _("必填")
    if kind.endswith(("_type", "_parsing")):
        return _("类型不正确：") + err.get("msg", "")
    return err.get("msg", _("无效"))


def install(api: NinjaAPI) -> None:
    @api.exception_handler(DomainError)
    def domain_error(request: HttpRequest, exc: DomainError):
        headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Throttled) else None
        return error_response(exc.status, exc.code, exc.message, exc.fields, headers)

    @api.exception_handler(KeyTaken)
    def key_taken(request: HttpRequest, exc: KeyTaken):
        # The Idempotency-Key middleware answers with the first request's answer instead.
        return error_response(409, "idempotency_in_progress", _("相同 Idempotency-Key 的请求仍在处理中"))

    @api.exception_handler(ValidationError)
    def validation_error(request: HttpRequest, exc: ValidationError):
        fields: dict[str, str] = {}
        for err in exc.errors:
            loc = list(err.get("loc", []))
            if loc == ["body", "payload"] and err.get("type") == "missing":
                return error_response(422, "invalid", _("请求体缺失"), {"body": _("必填")})
            fields.setdefault(_field_name(loc), _message(err))
        return error_response(422, "invalid", _("请求参数无效：") + "、".join(fields), fields)

    @api.exception_handler(AuthenticationError)
    def auth_error(request: HttpRequest, exc: AuthenticationError):
        return error_response(401, "not_authenticated", _("请先登录（Authorization: Bearer <token>）"))

    @api.exception_handler(HttpError)
    def http_error(request: HttpRequest, exc: HttpError):
        code = _STATUS_CODES.get(exc.status_code, "error")
        message = _("请求体不是有效的JSON") if exc.status_code == 400 else str(exc.message)
        return error_response(exc.status_code, code, message)

    # A body Django cannot parse (a multipart body without its boundary, a body over the size limit)
    # is the client's mistake, found by schemathesis as 500s.
    @api.exception_handler(MultiPartParserError)
    def bad_multipart(request: HttpRequest, exc: MultiPartParserError):
        return error_response(400, "bad_request", _("上传的表单数据格式不正确"))

    # A number too large for the database (SQLite's driver refuses ints past 64 bits) in a list of
    # ids: an invalid value, not a server error (schemathesis found it in comment_ids).
    @api.exception_handler(OverflowError)
    def overflow(request: HttpRequest, exc: OverflowError):
        return error_response(422, "invalid", _("数值超出范围"))

    @api.exception_handler(SuspiciousOperation)
    def suspicious(request: HttpRequest, exc: SuspiciousOperation):
        if isinstance(exc, RequestDataTooBig):
            return error_response(413, "too_large", _("请求体过大"))
        return error_response(400, "bad_request", _("请求无效"))

    @api.exception_handler(Http404)
    def not_found(request: HttpRequest, exc: Http404):
        return error_response(404, "not_found", _("未找到"))

    @api.exception_handler(Exception)
    def unexpected(request: HttpRequest, exc: Exception):
        log.exception("unhandled API error on %s %s", request.method, request.path)
        return error_response(500, "internal_error", _("服务器内部错误，请稍后再试"))
