"""PII at rest: AES-256-GCM ciphertext, a keyed blind index to find it, masks to show it.

The master key comes from UNIONHOME_PII_KEY (base64 of 32 bytes). On a laptop without
one, a development key is generated once and kept outside the repository
(~/.config/unionhome/pii-dev.key), so a fresh clone can run at once.
Two sub-keys are derived with HKDF: one encrypts, one computes the blind index, so
the index reveals nothing even to someone holding the ciphertexts.

Rotation (`manage.py rotate_pii_key`, core/pii_rotation.py): old master keys listed in
UNIONHOME_PII_OLD_KEYS still decrypt, tried after the current key (AES-GCM's tag says which key
a ciphertext was written with); encryption and blind indexes always use the current key. A
ciphertext no key opens raises `UndecryptableError`, never garbage.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import os
from pathlib import Path
from typing import NamedTuple

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

DEV_KEY_PATH = Path(os.environ.get("UNIONHOME_DEV_KEY_PATH", Path.home() / ".config" / "unionhome" / "pii-dev.key"))


class UndecryptableError(InvalidTag):
    """A ciphertext that neither UNIONHOME_PII_KEY nor any of UNIONHOME_PII_OLD_KEYS opens:
    tampered, or written with a key no longer configured."""


def _parse_key(value: str, name: str) -> bytes:
    try:
        key = base64.b64decode(value.strip())
    except ValueError:  # bad padding; other stray characters are dropped, as they always were
        key = b""
    if len(key) != 32:
        raise ImproperlyConfigured(f"{name} must be base64 of 32 bytes")
    return key


def _master_key() -> bytes:
    configured = settings.UNIONHOME_PII_KEY
    if configured:
        return _parse_key(configured, "UNIONHOME_PII_KEY")
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


def _old_master_keys() -> list[bytes]:
    listed = getattr(settings, "UNIONHOME_PII_OLD_KEYS", "") or ""
    return [_parse_key(k, "each of UNIONHOME_PII_OLD_KEYS") for k in listed.split(",") if k.strip()]


_UNDECRYPTABLE = "PII ciphertext opens with neither UNIONHOME_PII_KEY nor any of UNIONHOME_PII_OLD_KEYS"


class _Key(NamedTuple):
    aes: AESGCM  # encrypts and decrypts
    index: bytes  # HMAC key of the blind indexes


def _derive(master: bytes) -> _Key:
    def derive(info: bytes) -> bytes:
        return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(master)

    return _Key(AESGCM(derive(b"unionhome pii encryption v1")), derive(b"unionhome pii blind index v1"))


@functools.cache
def _keys() -> tuple[_Key, ...]:
    """The current key first, then the old ones in the order listed. Tests that change the
    settings call `_keys.cache_clear()`."""
    return tuple(_derive(master) for master in dict.fromkeys([_master_key(), *_old_master_keys()]))


def old_key_count() -> int:
    """How many old keys decrypt besides the current one (UNIONHOME_PII_OLD_KEYS; the current key
    and repeats, if listed there, are not counted)."""
    return len(_keys()) - 1


def encrypt(value: str) -> bytes:
    """Encrypt a PII string with the current key; a fresh nonce each time, so equal values never look equal."""
    aes = _keys()[0].aes
    nonce = os.urandom(12)
    return nonce + aes.encrypt(nonce, value.encode(), None)


def decrypt(blob: bytes | memoryview | None) -> str:
    """The plaintext; the current key is tried first (one AES-GCM open when it fits, as before
    rotation existed), then each old key. Raises UndecryptableError when none fits."""
    if not blob:
        return ""
    blob = bytes(blob)
    keys = _keys()
    try:
        return keys[0].aes.decrypt(blob[:12], blob[12:], None).decode()
    except InvalidTag:
        pass
    for key in keys[1:]:
        try:
            return key.aes.decrypt(blob[:12], blob[12:], None).decode()
        except InvalidTag:
            continue
    raise UndecryptableError(_UNDECRYPTABLE)


def decrypt_with_key_number(blob: bytes | memoryview) -> tuple[str, int]:
    """The plaintext and which key opened it: 0 the current one, n the n-th old one (for
    `rotate_pii_key`, which must know whether a row is already under the current key)."""
    blob = bytes(blob)
    nonce, body = blob[:12], blob[12:]
    for number, key in enumerate(_keys()):
        try:
            return key.aes.decrypt(nonce, body, None).decode(), number
        except InvalidTag:
            continue
    raise UndecryptableError(_UNDECRYPTABLE)


def blind_index(kind: str, value: str, *, key_number: int = 0) -> str:
    """Keyed hash of a normalized value: equal values find each other, nothing else leaks.

    Always under the current key; `key_number` n > 0 (the n-th old key) is for `rotate_pii_key`,
    which checks that a stored index is the old key's index of its value before replacing it."""
    return hmac.new(_keys()[key_number].index, f"{kind}:{value}".encode(), hashlib.sha256).hexdigest()


def phone_index(phone: str, *, key_number: int = 0) -> str:
    return blind_index("phone", phone, key_number=key_number)


def id_number_index(id_number: str, *, key_number: int = 0) -> str:
    return blind_index("idno", id_number.upper(), key_number=key_number)


def mask_phone(phone: str) -> str:
    if len(phone) < 7:
        return "*" * len(phone)
    return phone[:3] + "****" + phone[-4:]


def mask_id_number(id_number: str) -> str:
    if len(id_number) < 7:
        return "*" * len(id_number)
    return id_number[:3] + "*" * (len(id_number) - 7) + id_number[-4:]
