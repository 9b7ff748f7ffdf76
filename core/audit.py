from __future__ import annotations

import functools
import ipaddress
from typing import Any

from django.conf import settings

from .models import AuditLog

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@functools.cache
def _trusted(proxies: tuple[str, ...]) -> tuple[_Network, ...]:
    return tuple(ipaddress.ip_network(p, strict=False) for p in proxies)


def _is_trusted(address: str, networks: tuple[_Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_ip(request) -> str | None:
    """The client's address. Behind the reverse proxies named in TRUSTED_PROXIES it is the nearest
    address in X-Forwarded-For that is not one of them (each proxy appends the address it saw, so
    the entries left of it were written by whoever connected, and may be forged); from anywhere
    else X-Forwarded-For is ignored. Without this every user behind the proxy shared its address,
    and a hundred failed logins from anyone locked out everyone."""
    if request is None:
        return None
    remote = request.META.get("REMOTE_ADDR")
    networks = _trusted(tuple(settings.TRUSTED_PROXIES))
    if not networks or not remote or not _is_trusted(remote, networks):
        return remote
    hops = [h.strip() for h in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if h.strip()]
    for hop in reversed(hops):
        try:
            ipaddress.ip_address(hop)
        except ValueError:
            break  # garbage from the client's side of the chain: trust nothing left of it
        if not _is_trusted(hop, networks):
            return hop
        remote = hop
    return remote


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
