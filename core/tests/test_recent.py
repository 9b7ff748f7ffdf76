"""core.recent: values kept for a few seconds, then read again; a full memory starts again empty."""

from core import recent
from core.recent import Recent


def test_a_value_is_kept_for_its_seconds_then_gone(monkeypatch):
    now = [100.0]
    monkeypatch.setattr(recent.time, "monotonic", lambda: now[0])
    r: Recent[int, str] = Recent(5.0)
    r.put(1, "poll")
    assert r.get(1) == "poll" and 1 in r
    now[0] = 104.9
    assert r.get(1) == "poll"
    now[0] = 105.0
    assert r.get(1) is None and 1 not in r


def test_forget_clear_and_a_full_memory_starting_again(monkeypatch):
    r: Recent[int, int] = Recent(60.0, size=3)
    for k in range(3):
        r.put(k, k * 10)
    r.forget(1)
    assert [r.get(k) for k in range(3)] == [0, None, 20]
    r.put(3, 30)  # two held, room for a third
    r.put(4, 40)  # full: starts again with this one alone
    assert [r.get(k) for k in range(5)] == [None, None, None, None, 40]
    r.clear()
    assert r.get(4) is None
