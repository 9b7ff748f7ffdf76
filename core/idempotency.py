"""Idempotency-Key for API writes (API.md "Conventions").

A retry with the same key, by the same user, on the same operation (method + path) gets the
first completed answer — status and body, success or 4xx — and changes nothing more. The
same key with a different body is 422 `idempotency_key_reused`; a retry while the first is
still running waits for it (on the key's row), then replays its answer. A 5xx is not kept,
and is rolled back with everything the request wrote, so the client may retry it.

It is a middleware because it works on whole responses, for every write operation alike.

Most operations run whole inside the key's transaction. The rush operations (a redemption) claim
the key late instead: their reads and checks run first, outside any transaction, and
`write_transaction()` opens the key's transaction only where their writes begin; the middleware
stores the answer and commits it. On SQLite the one writer lock is then held for the writes
alone, not for the whole request. Such an operation is registered with `claims_late(url_name)`,
and must not raise after its first write (an error there rolls everything back, key included).

Secret operations (a secret ballot, registered with `keeps_secret(url_name, success)`) keep
nothing that could tell what was sent or answered: no digest of the body (a ballot's
`{"marks": …}` has few possible values, so its hash is easily reversed) and no answer body — only
the key, user, operation, time and status, plus the error code of a 4xx. A retry with the same key
gets the first status: a success is answered again by the operation's `success` callable (the
ballot's reads the receipt from the roll row, where the voter's own election page reads it too;
the receipt is never stored beside the key), a 4xx with its code and a generic message. With no
digest, the same key with another body cannot be told apart from a retry: it gets the first
answer too, and changes nothing.

Records are kept for RETENTION (24 h, API.md's "at least 24 h") and then deleted by
`purge_expired()`, which `run_schedule` runs every hour (`manage.py purge_idempotency`).
"""

from __future__ import annotations

import contextlib
import contextvars
import datetime as dt
import functools
import hashlib
import json
import time
from collections.abc import Callable, Iterator

from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse
from django.urls import Resolver404, resolve
from django.utils import timezone
from django.utils.translation import gettext as _

from .models import IdempotencyRecord
from .sql import INTEGRITY_ERRORS, DriverCursor, execute_then_commit

HEADER = "Idempotency-Key"
WAIT_SECONDS = 8.0
POLL_SECONDS = 0.05
RETENTION = dt.timedelta(hours=24)
# What a secret operation's record keeps in place of the body's digest.
NO_DIGEST = ""
PURGE_BATCH = 5000


def _error(status: int, code: str, message: str) -> HttpResponse:
    from api.errors import error_response

    return error_response(status, code, message)


def _replay(record: IdempotencyRecord) -> HttpResponse:
    resp = HttpResponse(bytes(record.body or b""), status=record.status, content_type=record.content_type)
    resp["Idempotent-Replayed"] = "true"
    return resp


# url names (namespace:name) of the operations that open the key's transaction themselves.
_LATE: set[str] = set()
_claim: contextvars.ContextVar[_Claim | None] = contextvars.ContextVar("idempotency_claim", default=None)

# Answers a retry of a secret operation's success: (user, the path's kwargs) -> response.
SuccessReplay = Callable[[object, dict], HttpResponse]
_SECRET: dict[str, SuccessReplay] = {}


def claims_late(url_name: str) -> None:
    """Register an API operation whose service opens its writes with `write_transaction()`."""
    _LATE.add(url_name)


def keeps_secret(url_name: str, success: SuccessReplay) -> None:
    """Register an API operation whose body and answer are not kept (see the module docstring);
    `success(user, path kwargs)` answers a retry of its 2xx."""
    _SECRET[url_name] = success


@functools.lru_cache(maxsize=4096)  # one entry per path (e.g. per reward): resolving costs ~50 µs
def _route(path_info: str) -> tuple[str, dict] | None:
    try:
        match = resolve(path_info)
    except Resolver404:
        return None
    return match.view_name, dict(match.kwargs)


def _is_late(path_info: str) -> bool:
    route = _route(path_info)
    return route is not None and route[0] in _LATE


def _secret(path_info: str) -> tuple[SuccessReplay, dict] | None:
    route = _route(path_info)
    if route is None or route[0] not in _SECRET:
        return None
    return _SECRET[route[0]], route[1]


def _secret_answer(response: HttpResponse) -> bytes:
    """What a secret operation's record keeps of its answer: a 4xx's error code, nothing else."""
    if response.status_code < 400:
        return b""
    try:
        code = json.loads(response.content)["error"]["code"]
    except (ValueError, KeyError, TypeError, AttributeError):
        code = "error"
    return json.dumps({"code": str(code)[:64]}).encode()


def _replay_secret(record: IdempotencyRecord, user, success: SuccessReplay, kwargs: dict) -> HttpResponse:
    if record.status is not None and record.status < 400:
        resp = success(user, kwargs)
    else:
        try:
            code = json.loads(bytes(record.body or b"{}"))["code"]
        except (ValueError, KeyError, TypeError):
            code = "error"
        resp = _error(record.status or 409, code, _("重复提交：与第一次提交的结果相同（%(code)s）") % {"code": code})
    resp["Idempotent-Replayed"] = "true"
    return resp


def purge_expired(now: dt.datetime | None = None, *, keep: dt.timedelta = RETENTION) -> int:
    """Delete the records created more than `keep` (24 h) before `now`; returns how many. In
    batches, so a large backlog never holds the table (or SQLite's writer lock) for long."""
    cutoff = (now or timezone.now()) - keep
    removed = 0
    while True:
        ids = list(IdempotencyRecord.objects.filter(created_at__lt=cutoff).values_list("pk", flat=True)[:PURGE_BATCH])
        if not ids:
            return removed
        removed += IdempotencyRecord.objects.filter(pk__in=ids).delete()[0]


_INSERT_SQL = (
    "INSERT INTO core_idempotencyrecord (user_id, operation, key, request_hash, done, content_type, created_at)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id"
)
_ANSWER_SQL = "UPDATE core_idempotencyrecord SET done = %s, status = %s, body = %s, content_type = %s WHERE id = %s"


def _insert_key(user_id: int, operation: str, key: str, digest: str) -> int:
    # The driver's cursor (prepared on PostgreSQL): every keyed write pays for this statement.
    with DriverCursor() as db:
        params = [user_id, operation, key, digest, False, "", db.dt(timezone.now())]
        try:
            return db.run(_INSERT_SQL, params).fetchone()[0]
        except INTEGRITY_ERRORS:
            raise KeyTaken() from None


def _store_answer_and_commit(record_id: int, response: HttpResponse, *, secret: bool = False) -> None:
    """The answer, as the last write of the key's transaction, which commits right after it. On
    PostgreSQL, when that transaction is the outermost one, the UPDATE and its COMMIT go in one
    round trip (core.sql.execute_then_commit)."""
    body = _secret_answer(response) if secret else response.content
    params = [True, response.status_code, body, response.get("Content-Type", "application/json"), record_id]
    if connection.vendor == "postgresql" and len(connection.atomic_blocks) == 1 and not connection.savepoint_ids:
        execute_then_commit(_ANSWER_SQL, params)
    else:
        with DriverCursor() as db:
            db.run(_ANSWER_SQL, params)


class _Claim:
    """A keyed request of a late-claiming operation: its transaction, once its writes begin."""

    def __init__(self, user_id: int, operation: str, key: str, digest: str):
        self.user_id, self.operation, self.key, self.digest = user_id, operation, key, digest
        self.atomic = None
        self.record_id: int | None = None
        self.taken = False  # the key was already held: the middleware replays the other answer
        self.failed = False  # an error after the writes began: everything is rolled back

    def open(self) -> None:
        self.atomic = transaction.atomic()
        self.atomic.__enter__()
        try:
            self.record_id = _insert_key(self.user_id, self.operation, self.key, self.digest)
        except KeyTaken:
            self.taken = True
            self.close(rollback=True)
            raise

    def close(self, *, rollback: bool) -> None:
        atomic, self.atomic = self.atomic, None
        if atomic is not None:
            if rollback:
                atomic.__exit__(_Rollback, _Rollback(), None)
            else:
                atomic.__exit__(None, None, None)


class _Rollback(Exception):
    pass


@contextlib.contextmanager
def write_transaction() -> Iterator[None]:
    """The writes of a late-claiming operation: in the request's key transaction, opened here with
    the key as its first write (left open for the middleware to store the answer and commit), or
    in a transaction of their own when the request has no key."""
    claim = _claim.get()
    if claim is None or claim.atomic is not None or claim.taken:
        with transaction.atomic(savepoint=False):
            yield
        return
    claim.open()
    try:
        yield
    except BaseException:
        claim.failed = True
        raise


class KeyTaken(Exception):
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
        secret = _secret(request.path_info) if _SECRET else None
        digest = NO_DIGEST if secret else hashlib.sha256(request.body).hexdigest()
        if _LATE and secret is None and self._late(request):
            return self._late_claim(request, user, operation, key, digest)
        # One transaction holds the key, the operation's own writes and the stored answer: a
        # request pays one commit instead of three, a retry arriving meanwhile waits on the key's
        # unique index (PostgreSQL) or the writer lock (SQLite) and then replays the answer, and a
        # 5xx or a crash rolls the key back with everything the request wrote.
        try:
            with transaction.atomic():
                record_id = _insert_key(user.pk, operation, key, digest)
                response = self.get_response(request)
                if response.status_code >= 500 or getattr(response, "streaming", False):
                    raise _NotKept(response)
                _store_answer_and_commit(record_id, response, secret=secret is not None)
        except KeyTaken:
            return self._existing(user, operation, key, digest, secret)
        except _NotKept as not_kept:
            return not_kept.response
        return response

    @staticmethod
    def _late(request: HttpRequest) -> bool:
        return _is_late(request.path_info)

    def _late_claim(self, request: HttpRequest, user, operation: str, key: str, digest: str) -> HttpResponse:
        claim = _Claim(user.pk, operation, key, digest)
        token = _claim.set(claim)
        try:
            response = self.get_response(request)
        except BaseException:
            claim.close(rollback=True)
            raise
        finally:
            _claim.reset(token)
        if claim.taken:
            return self._existing(user, operation, key, digest)
        keep = response.status_code < 500 and not getattr(response, "streaming", False)
        if claim.atomic is not None:  # the writes began: the answer joins them, or nothing stays
            if keep and not claim.failed:
                try:
                    _store_answer_and_commit(claim.record_id, response)
                except BaseException:
                    claim.close(rollback=True)
                    raise
                claim.close(rollback=False)
            else:
                claim.close(rollback=True)
            return response
        if not keep:
            return response
        # Answered before any write (a refusal from the checks): the answer is kept all the same,
        # unless a parallel request with the key got there first.
        try:
            with transaction.atomic():
                _store_answer_and_commit(_insert_key(user.pk, operation, key, digest), response)
        except KeyTaken:
            return self._existing(user, operation, key, digest)
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
    def _existing(
        user, operation: str, key: str, digest: str, secret: tuple[SuccessReplay, dict] | None = None
    ) -> HttpResponse:
        deadline = time.monotonic() + WAIT_SECONDS
        while True:
            record = IdempotencyRecord.objects.filter(user=user, operation=operation, key=key).first()
            if record is None:
                # The first attempt failed with a 5xx and let go of the key: this one may not run
                # concurrently with it, so ask the client to retry.
                return _error(409, "idempotency_in_progress", _("相同 Idempotency-Key 的请求刚刚失败，请重试"))
            if secret is None and record.request_hash != digest:
                return _error(422, "idempotency_key_reused", _("该 Idempotency-Key 已用于内容不同的请求"))
            if record.done:
                return _replay(record) if secret is None else _replay_secret(record, user, *secret)
            if time.monotonic() > deadline:
                return _error(409, "idempotency_in_progress", _("相同 Idempotency-Key 的请求仍在处理中"))
            time.sleep(POLL_SECONDS)
