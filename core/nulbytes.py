"""Requests carrying a NUL character are refused at the door.

PostgreSQL cannot store or even compare a string holding U+0000 ("A string literal cannot contain
NUL"), so such a value in a query parameter or a JSON or form body turned into a 500 wherever it
reached a query (schemathesis found `?q=` with one). No real input holds it: it is refused once,
here, for every end and the API alike, instead of in each field. Multipart bodies are not scanned
(an uploaded file is binary); their text fields go through Django's forms, which refuse NUL.
"""

from __future__ import annotations

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.utils.translation import gettext as _


def has_nul(request: HttpRequest) -> bool:
    if "\x00" in request.path or "%00" in request.META.get("QUERY_STRING", ""):
        return True
    kind = request.content_type
    if request.method in ("GET", "HEAD") or not kind.startswith(
        ("application/json", "application/x-www-form", "text/")
    ):
        return False
    try:
        body = request.body
    except RequestDataTooBig:
        return False  # the view answers that itself (the API: 413 in its error shape)
    if b"\x00" in body:
        return True
    if kind == "application/json":
        return b"\\u0000" in body
    return kind == "application/x-www-form-urlencoded" and b"%00" in body


class RejectNulMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if has_nul(request):
            message = _("请求中含有无效的空字符")
            if request.path.startswith("/api/"):
                from api.errors import error_response

                return error_response(400, "bad_request", message)
            return HttpResponseBadRequest(message)
        return self.get_response(request)
