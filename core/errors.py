"""Domain errors: a stable code, a human message, optional per-field reasons, and an HTTP status.

Services raise these; the API turns them into API.md's error shape, pages show the message
beside the field. Each app keeps its codes in one enum-like class.
"""

from __future__ import annotations

from django.utils.translation import gettext as _


class DomainError(Exception):
    status = 409

    def __init__(self, code: str, message: str, *, fields: dict[str, str] | None = None, status: int | None = None):
        super().__init__(message)
        self.code = code
        self.message = str(message)
        self.fields = fields or {}
        if status is not None:
            self.status = status


class NotFound(DomainError):
    """Missing and not-in-your-scope look the same from outside."""

    status = 404

    def __init__(self, message: str | None = None, code: str = "not_found"):
        super().__init__(code, message if message is not None else _("未找到该对象"))


class Forbidden(DomainError):
    status = 403


class Invalid(DomainError):
    status = 422


class Throttled(DomainError):
    status = 429

    def __init__(self, code: str, message: str, retry_after: int):
        super().__init__(code, message)
        self.retry_after = max(1, int(retry_after))
