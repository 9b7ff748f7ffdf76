"""The hash chain over an election's ballots, and the digest of its receipts. Pure functions.

Published at close, so that a ballot removed, added or altered afterwards is detected:

- Each ballot's canonical form is the JSON text of ``{"id": <public id>, "marks": {<candidate
  id>: <mark>, ...}}`` with keys sorted, no spaces (``separators=(",", ":")``), UTF-8.
- Ballots are taken in ascending public id (random hex, so this order says nothing about when
  a ballot was cast).
- ``h0 = sha256("unionhome-election:<election id>")``; ``h_i = sha256(h_{i-1} + canonical_i)``
  (the previous hash as 64 hex characters, then the canonical text); hashes are hex digests.
- The head is ``h_n`` (``h0`` when there are no ballots).

The receipts digest is ``sha256`` of the sorted receipt codes joined by newlines: it pins the
list of participants' receipts published beside the ballots.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping

ALGORITHM = "sha256-chain-v1"


def canonical(public_id: str, marks: Mapping[str, str]) -> str:
    return json.dumps(
        {"id": public_id, "marks": dict(marks)}, sort_keys=True, separators=(",", ":"), ensure_ascii=False
    )


def genesis(election_id: int) -> str:
    return hashlib.sha256(f"unionhome-election:{election_id}".encode()).hexdigest()


def links(election_id: int, ballots: Iterable[tuple[str, Mapping[str, str]]]) -> list[str]:
    """The running hash after each ballot, ballots taken in ascending public id."""
    h = genesis(election_id)
    out = []
    for public_id, marks in sorted(ballots, key=lambda b: b[0]):
        h = hashlib.sha256((h + canonical(public_id, marks)).encode()).hexdigest()
        out.append(h)
    return out


def head(election_id: int, ballots: Iterable[tuple[str, Mapping[str, str]]]) -> str:
    chain = links(election_id, ballots)
    return chain[-1] if chain else genesis(election_id)


def receipts_digest(receipts: Iterable[str]) -> str:
    return hashlib.sha256("\n".join(sorted(receipts)).encode()).hexdigest()
