"""Every API operation has its own URL name: the idempotency layer registers operations by name
(claims_late, keeps_secret), and two views both called ballot_cast once made the poll ballot run
the election ballot's secret replay (a 500 on a retried poll ballot)."""

from __future__ import annotations

from django.urls import get_resolver


def test_api_url_names_are_unique():
    resolver = get_resolver()
    # One path can carry several methods under one name; a name on two different paths is the bug.
    paths: dict[str, set[str]] = {}

    def collect(patterns, namespace: str = "", prefix: str = "") -> None:
        for p in patterns:
            if hasattr(p, "url_patterns"):
                ns = f"{namespace}{p.namespace}:" if p.namespace else namespace
                collect(p.url_patterns, ns, prefix + str(p.pattern))
            elif p.name and namespace.startswith("api:"):
                paths.setdefault(namespace + p.name, set()).add(prefix + str(p.pattern))

    collect(resolver.url_patterns)
    assert paths, "no API routes found"
    shared = {name: sorted(ps) for name, ps in paths.items() if len(ps) > 1}
    assert not shared, shared
