import secrets

# No 0/O, 1/I/L: a cadre types these from a phone screen.
ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"


def pickup_code(length: int = 10) -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def normalize(code: object) -> str:
    return str(code or "").strip().upper().replace(" ", "").replace("-", "")
