from __future__ import annotations

from typing import Any

from .models import AuditLog


def client_ip(request) -> str | None:
    return request.META.get("REMOTE_ADDR") if request is not None else None


def record(
    actor,
    action: str,
    *,
    org=None,
    target=None,
    summary: str = "",
    data: dict[str, Any] | None = None,
    ip: str | None = None,
) -> AuditLog:
    """Write one audit row. `org` decides which cadres can read it (its subtree and above)."""
    return AuditLog.objects.create(
        actor=actor if getattr(actor, "pk", None) else None,
        action=action,
        org_path=getattr(org, "path", "") or "",
        target_type=type(target).__name__.lower() if target is not None else "",
        target_id=str(getattr(target, "pk", "") or ""),
        summary=summary[:255],
        data=data or {},
        ip=ip,
    )
