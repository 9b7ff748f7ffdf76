"""Ballot rate limits: fixed-window counters in the database, shared by every server process.

Three keys per ballot attempt, each a (key, window start) row counted by one upsert:
- the account: the hard limit (a person does not need more than a few attempts a minute);
- the client address, per poll: generous, because a whole workplace votes through one NAT
  (API.md "Conventions"); its counts also show on the anti-brushing monitor;
- the device, per poll: moderate; only a device the client identifies (the `X-Device-Id` header, the
  member page's cookie). The fallback, a hash of User-Agent and address, is kept for the monitor
  but not limited: a workplace's identical phones behind one NAT share it.

Limits are settings (`VOTE_ACCOUNT_LIMIT`, `VOTE_IP_LIMIT`, `VOTE_DEVICE_LIMIT`, and the
`…_WINDOW` seconds beside them), read from the environment (`UNIONHOME_VOTE_IP_LIMIT`, …) when
the settings do not name them, so a benchmark or a test can change them without code.
"""

from __future__ import annotations

import hashlib
import os
import time

from django.conf import settings

# name: (default limit, default window in seconds)
_DEFAULTS = {
    "ACCOUNT": (20, 60),
    "IP": (3000, 600),
    "DEVICE": (100, 600),
}


_cache: tuple[object, dict] = (None, {})


def limit(kind: str) -> tuple[int, int]:
    """(limit, window seconds) for "ACCOUNT" | "IP" | "DEVICE": settings, then environment, then default.

    Read once per settings object (every ballot asks; a test's settings override is a new object)."""
    global _cache
    holder = getattr(settings, "_wrapped", settings)
    if _cache[0] is not holder:  # held, so its id is never reused by another settings object
        _cache = (holder, {})
    found = _cache[1].get(kind)
    if found is None:
        found = _cache[1][kind] = _read(kind)
    return found


def _read(kind: str) -> tuple[int, int]:
    default_limit, default_window = _DEFAULTS[kind]
    lim = getattr(settings, f"VOTE_{kind}_LIMIT", None)
    if lim is None:
        lim = os.environ.get(f"UNIONHOME_VOTE_{kind}_LIMIT") or default_limit
    win = getattr(settings, f"VOTE_{kind}_WINDOW", None)
    if win is None:
        win = os.environ.get(f"UNIONHOME_VOTE_{kind}_WINDOW") or default_window
    return int(lim), max(1, int(win))


def account_key(user_id: int) -> str:
    return f"ballot:u:{user_id}"


def ip_key(poll_id: int, ip: str) -> str:
    return f"ballot:ip:{poll_id}:{ip}"


def ip_key_prefix(poll_id: int) -> str:
    return f"ballot:ip:{poll_id}:"


def device_key(poll_id: int, device: str) -> str:
    return f"ballot:d:{poll_id}:{device}"


def device_hash(header_value: str, user_agent: str, ip: str | None) -> tuple[str, bool]:
    """(what the API stores as the device, whether the client identified it): a hash of the client's
    device id, else of User-Agent + address (never the raw values: they can identify a person across
    sites). Only an identified device is rate-limited: identical phones behind one NAT share the
    fallback hash."""
    if header_value and header_value.strip():
        raw, identified = "id:" + header_value.strip()[:200], True
    else:
        raw, identified = f"ua:{user_agent[:300]}|{ip or ''}", False
    return hashlib.sha256(raw.encode()).hexdigest()[:32], identified


def keys_for(user_id: int, poll_id: int, ip: str | None, device: str, now: float | None = None) -> list[tuple]:
    """[(key, window_start, limit, window_seconds)] for one attempt, sorted by key: every
    transaction touches these rows in the same order, so two never wait on each other in a cycle."""
    now = time.time() if now is None else now
    out = []
    for kind, key in (
        ("ACCOUNT", account_key(user_id)),
        ("IP", ip_key(poll_id, ip) if ip else None),
        ("DEVICE", device_key(poll_id, device) if device else None),
    ):
        if key is None:
            continue
        lim, win = limit(kind)
        out.append((key[:120], int(now // win) * win, lim, win))
    out.sort()
    return out
