"""Polls and contests (API.md "Votes": /polls)."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["votes"])
