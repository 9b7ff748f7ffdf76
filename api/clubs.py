"""Interest clubs (兴趣联盟)."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["clubs"])
