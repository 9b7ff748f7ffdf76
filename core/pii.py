"""PII at rest: AES-256-GCM ciphertext, a keyed blind index to find it, masks to show it.

The master key comes from UNIONHOME_PII_KEY (base64 of 32 bytes). On a laptop without
one, a development key is generated once and kept outside the repository
(~/.config/unionhome/pii-dev.key), so a fresh clone can run at once.
Two sub-keys are derived with HKDF: one encrypts, one computes the blind index, so
the index reveals nothing even to someone holding the ciphertexts.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEV_KEY_PATH = Path(os.environ.get("UNIONHOME_DEV_KEY_PATH", Path.home() / ".config" / "unionhome" / "pii-dev.key"))


def _master_key() -> bytes:
    configured = settings.UNIONHOME_PII_KEY
    if configured:
        key = base64.b64decode(configured)
        if len(key) != 32:
            raise ImproperlyConfigured("UNIONHOME_PII_KEY must be base64 of 32 bytes")
        return key
    if not settings.DEBUG:
        raise ImproperlyConfigured("UNIONHOME_PII_KEY must be set when DEBUG is off")
    if not DEV_KEY_PATH.exists():
        DEV_KEY_PATH.parent.mkdir(parents=True, exist_ok=True)
        tmp = DEV_KEY_PATH.with_suffix(f".tmp{os.getpid()}")
        tmp.write_bytes(base64.b64encode(os.urandom(32)))
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, DEV_KEY_PATH)  # atomic: two processes starting at once agree on one key
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    return base64.b64decode(DEV_KEY_PATH.read_bytes().strip())


@functools.cache
def _keys() -> tuple[AESGCM, bytes]:
    master = _master_key()

    def derive(info: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)

    return AESGCM(derive(b"unionhome pii encryption v1")), derive(b"unionhome pii blind index v1")


def encrypt(value: str) -> bytes:
    """Encrypt a PII string; a fresh nonce each time, so equal values never look equal."""
    aes, _ = _keys()
    nonce = os.urandom(12)
    return nonce + aes.encrypt(nonce, value.encode(), None)


def decrypt(blob: bytes | memoryview | None) -> str:
    if not blob:
        return ""
    blob = bytes(blob)
    aes, _ = _keys()
    return aes.decrypt(blob[:12], blob[12:], None).decode()


def blind_index(kind: str, value: str) -> str:
    """Keyed hash of a normalized value: equal values find each other, nothing else leaks."""
    _, key = _keys()
    return hmac.new(key, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def phone_index(phone: str) -> str:
    return blind_index("phone", phone)


def id_number_index(id_number: str) -> str:
    return blind_index("idno", id_number.upper())


def mask_phone(phone: str) -> str:
    if len(phone) < 7:
        return "*" * len(phone)
    return phone[:3] + "****" + phone[-4:]


def mask_id_number(id_number: str) -> str:
    if len(id_number) < 7:
        return "*" * len(id_number)
    return id_number[:3] + "*" * (len(id_number) - 7) + id_number[-4:]
