"""Ballot receipts: what they look like and how a typed one is read back."""

from __future__ import annotations

import secrets

# No 0/O, 1/I/L: read aloud over a phone or copied from a screen without mix-ups.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
LENGTH = 12  # 31^12 ≈ 7.9e17: unguessable, and a collision is a one-in-10^11 event even at 10M ballots


_SPACE = len(ALPHABET) ** LENGTH


def new_receipt() -> str:
    """One uniform draw from the 31^12 receipts (one call to the OS's randomness, not twelve)."""
    n = secrets.randbelow(_SPACE)
    out = []
    for _ in range(LENGTH):
        n, i = divmod(n, 31)
        out.append(ALPHABET[i])
    return "".join(out)


def normalize(code: object) -> str:
    """What a person typed, as stored: upper case, without spaces and dashes (shown as XXXX-XXXX-XXXX)."""
    return "".join(ch for ch in str(code or "").upper() if ch not in " -\t")[:32]


def display(code: str) -> str:
    return "-".join(code[i : i + 4] for i in range(0, len(code), 4))
