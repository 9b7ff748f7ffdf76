"""Live sessions (在线直播)."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["live"])
