"""Idempotency-Key for API writes (API.md "Conventions").

A retry with the same key, by the same user, on the same operation (method + path) gets the
first completed answer — status and body, success or 4xx — and changes nothing more. The
same key with a different body is 422 `idempotency_key_reused`; a retry while the first is
still running waits for it (on the key's row), then replays its answer. A 5xx is not kept,
and is rolled back with everything the request wrote, so the client may retry it.

It is a middleware because it works on whole responses, for every write operation alike.
"""

from __future__ import annotations

import hashlib
import time

from django.db import IntegrityError, connection, transaction
from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import IdempotencyRecord

HEADER = "Idempotency-Key"
WAIT_SECONDS = 8.0
POLL_SECONDS = 0.05


def _error(status: int, code: str, message: str) -> HttpResponse:
    from api.errors import error_response

    return error_response(status, code, message)


def _replay(record: IdempotencyRecord) -> HttpResponse:
    resp = HttpResponse(bytes(record.body or b""), status=record.status, content_type=record.content_type)
    resp["Idempotent-Replayed"] = "true"
    return resp


class _Taken(Exception):
    """The key is already held by the same user and operation."""


class _NotKept(Exception):
    """A 5xx or a streaming answer: rolled back with the key, so the client may retry."""

    def __init__(self, response: HttpResponse):
        self.response = response


class IdempotencyMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        key = request.headers.get(HEADER)
        if not key or request.method not in ("POST", "PUT", "PATCH", "DELETE") or not request.path.startswith("/api/"):
            return self.get_response(request)
        key = key.strip()
        if not key or len(key) > 200:
            return _error(422, "invalid_idempotency_key", _("Idempotency-Key 应为1到200个字符"))
        user = self._user(request)
        if user is None:
            return self.get_response(request)  # the API answers 401 itself
        operation = f"{request.method} {request.path}"[:255]
        digest = hashlib.sha256(request.body).hexdigest()
        # One transaction holds the key, the operation's own writes and the stored answer: a sale
        # rush pays one commit per request instead of three, a retry arriving meanwhile waits on
        # the key's unique index (PostgreSQL) or the writer lock (SQLite) and then replays the
        # answer, and a 5xx or a crash rolls the key back with everything the request wrote.
        # Plain SQL for the two statements every keyed request makes.
        try:
            with transaction.atomic():
                with connection.cursor() as cursor:
                    try:
                        cursor.execute(
                            "INSERT INTO core_idempotencyrecord (user_id, operation, key, request_hash, done,"
                            " content_type, created_at) VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id",
                            [
                                user.pk,
                                operation,
                                key,
                                digest,
                                False,
                                "",
                                connection.ops.adapt_datetimefield_value(timezone.now()),
                            ],
                        )
                    except IntegrityError:
                        raise _Taken() from None
                    record_id = cursor.fetchone()[0]
                response = self.get_response(request)
                if response.status_code >= 500 or getattr(response, "streaming", False):
                    raise _NotKept(response)
                with connection.cursor() as cursor:
                    cursor.execute(
                        "UPDATE core_idempotencyrecord SET done = %s, status = %s, body = %s, content_type = %s"
                        " WHERE id = %s",
                        [
                            True,
                            response.status_code,
                            response.content,
                            response.get("Content-Type", "application/json"),
                            record_id,
                        ],
                    )
        except _Taken:
            return self._existing(user, operation, key, digest)
        except _NotKept as not_kept:
            return not_kept.response
        return response

    @staticmethod
    def _user(request: HttpRequest):
        auth = request.headers.get("Authorization", "")
        if not auth.lower().startswith("bearer "):
            return None
        from accounts.services import user_for_token

        user = user_for_token(auth[7:].strip())
        request._token_user = (auth, user)  # the API's TokenAuth reuses it: one lookup per request
        return user

    @staticmethod
    def _existing(user, operation: str, key: str, digest: str) -> HttpResponse:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            record = IdempotencyRecord.objects.filter(user=user, operation=operation, key=key).first()
            if record is None:
                # The first attempt failed with a 5xx and let go of the key: this one may not run
                # concurrently with it, so ask the client to retry.
                return _error(409, "idempotency_in_progress", _("相同 Idempotency-Key 的请求刚刚失败，请重试"))
            if record.request_hash != digest:
                return _error(422, "idempotency_key_reused", _("该 Idempotency-Key 已用于内容不同的请求"))
            if record.done:
                return _replay(record)
            if time.monotonic() > deadline:
                return _error(409, "idempotency_in_progress", _("相同 Idempotency-Key 的请求仍在处理中"))
            time.sleep(POLL_SECONDS)
