"""What a process read lately, kept for a few seconds: the rush paths (a ballot's poll, a sale's
reward, a sign-up's activity) skip a read that the request just before them made. Each user keeps
in here only what cannot change, or what its write checks again on the live row."""

from __future__ import annotations

import time


class Recent[K, V]:
    """A per-process memory of values for `seconds` each (time.monotonic), at most `size` of them:
    when full it starts again empty (a rush touches a handful of keys, not thousands)."""

    def __init__(self, seconds: float, *, size: int = 1024):
        self.seconds = seconds
        self.size = size
        self._items: dict[K, tuple[V, float]] = {}

    def get(self, key: K) -> V | None:
        hit = self._items.get(key)
        if hit is None or time.monotonic() >= hit[1]:
            return None
        return hit[0]

    def put(self, key: K, value: V) -> None:
        if len(self._items) >= self.size:
            self._items.clear()
        self._items[key] = (value, time.monotonic() + self.seconds)

    def forget(self, key: K) -> None:
        self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()

    def __contains__(self, key: K) -> bool:
        return self.get(key) is not None
