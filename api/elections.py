"""Elections (API.md "Votes": /elections)."""

from __future__ import annotations

from ninja import Router

router = Router(tags=["elections"])
