"""Which stream and replay addresses a session may carry.

A stream is an HLS playlist from the streaming provider: an http(s) URL whose path ends in
`.m3u8`. Some providers hand out play URLs without the extension; their hosts are named in
`LIVE_PROVIDER_HOSTS` (a setting, or the comma-separated env `UNIONHOME_LIVE_PROVIDER_HOSTS`),
and any address on such a host (or a subdomain of it) is accepted. A replay may also be an
MP4 file, which every browser plays natively.
"""

from __future__ import annotations

import os
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.utils.translation import gettext as _

from core.errors import Invalid

_validate = URLValidator(schemes=["http", "https"])


def provider_hosts() -> tuple[str, ...]:
    configured = getattr(settings, "LIVE_PROVIDER_HOSTS", None)
    if configured is None:
        configured = os.environ.get("UNIONHOME_LIVE_PROVIDER_HOSTS", "").split(",")
    return tuple(h.strip().lower().lstrip(".") for h in configured if h and h.strip())


def _on_provider(host: str) -> bool:
    host = host.lower()
    return any(host == h or host.endswith("." + h) for h in provider_hosts())


def clean_url(raw: object, field: str, *, replay: bool = False, required: bool = True) -> str:
    """The trimmed URL, or Invalid naming `field`."""
    url = str(raw or "").strip()
    if not url:
        if required:
            raise Invalid("required", _("请填写播放地址"), fields={field: _("必填")})
        return ""
    if len(url) > 500:
        raise Invalid("too_long", _("地址不能超过500个字符"), fields={field: _("不能超过500个字符")})
    try:
        _validate(url)
    except ValidationError:
        msg = _("请填写以 http:// 或 https:// 开头的完整地址")
        raise Invalid("invalid_url", msg, fields={field: msg}) from None
    parts = urlsplit(url)
    path = parts.path.lower()
    kinds = (".m3u8", ".mp4") if replay else (".m3u8",)
    if path.endswith(kinds) or _on_provider(parts.hostname or ""):
        return url
    msg = _("回放地址应为 .m3u8（HLS）或 .mp4 文件") if replay else _("直播地址应为 HLS 播放地址（.m3u8）")
    raise Invalid("invalid_stream_url", msg, fields={field: msg})


def is_mp4(url: str) -> bool:
    return urlsplit(url).path.lower().endswith(".mp4")
