"""Activity cover images: checked by content, resized and re-encoded, never stored as uploaded.

An upload is read at most 5 MB + 1 byte, opened with Pillow, accepted only when its *content* is
JPEG, PNG, WebP or GIF (the name and the browser's content type say nothing), checked for a sane
pixel count (a decompression bomb is refused before it is decoded), then turned upright, flattened
on white, shrunk to at most 1280 px on the long side and saved as a fresh JPEG under a random name.
Whatever else the upload carried (EXIF with GPS, scripts appended after the image data) is gone.
"""

from __future__ import annotations

import io
import uuid

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils.translation import gettext as _

from core import audit
from core.errors import Invalid

from ..models import Activity
from .errors import ActivityErrors

MAX_BYTES = 5 * 1024 * 1024
MAX_SIDE = 1280
MAX_PIXELS = 40_000_000
FORMATS = {"JPEG", "PNG", "WEBP", "GIF"}


def _bad(code: str, message: str) -> Invalid:
    return Invalid(code, message, fields={"cover": message})


def reencode(uploaded_file) -> bytes:
    """The upload as a JPEG of at most MAX_SIDE px, or Invalid(fields={"cover"})."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    if uploaded_file is None:
        raise _bad(ActivityErrors.INVALID_IMAGE, _("请选择封面图片"))
    size = getattr(uploaded_file, "size", None)
    if size is not None and size > MAX_BYTES:
        raise _bad(ActivityErrors.IMAGE_TOO_LARGE, _("图片不能超过5MB"))
    data = uploaded_file.read(MAX_BYTES + 1)
    if len(data) > MAX_BYTES:
        raise _bad(ActivityErrors.IMAGE_TOO_LARGE, _("图片不能超过5MB"))
    if not data:
        raise _bad(ActivityErrors.INVALID_IMAGE, _("图片文件是空的"))
    try:
        with Image.open(io.BytesIO(data)) as probe:
            if probe.format not in FORMATS:
                raise _bad(ActivityErrors.UNSUPPORTED_IMAGE_TYPE, _("只支持 JPEG、PNG、WebP、GIF 格式的图片"))
            if probe.width * probe.height > MAX_PIXELS:
                raise _bad(ActivityErrors.IMAGE_TOO_LARGE, _("图片尺寸过大"))
            probe.verify()
        with Image.open(io.BytesIO(data)) as img:
            img.seek(0)  # an animated GIF or WebP: its first frame
            img = ImageOps.exif_transpose(img)
            if img.mode in ("RGBA", "LA", "P", "PA"):
                img = img.convert("RGBA")
                canvas = Image.new("RGB", img.size, (255, 255, 255))
                canvas.paste(img, mask=img.getchannel("A"))
                img = canvas
            else:
                img = img.convert("RGB")
            img.thumbnail((MAX_SIDE, MAX_SIDE), Image.Resampling.LANCZOS)
            out = io.BytesIO()
            img.save(out, "JPEG", quality=85, optimize=True)
    except Invalid:
        raise
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        raise _bad(ActivityErrors.INVALID_IMAGE, _("无法识别的图片文件，请上传 JPEG、PNG、WebP 或 GIF")) from None
    return out.getvalue()


def set_cover(actor, activity: Activity, uploaded_file, *, ip: str | None = None) -> Activity:
    """Replace the cover (organizer or admin cadre); the old file is removed once the new one is saved."""
    from .activities import _require_edit

    _require_edit(actor, activity)
    jpeg = reencode(uploaded_file)  # all the slow work before any transaction
    old = activity.cover.name if activity.cover else ""
    activity.cover.save(f"{activity.pk}-{uuid.uuid4().hex}.jpg", ContentFile(jpeg), save=False)
    with transaction.atomic():
        Activity.objects.filter(pk=activity.pk).update(cover=activity.cover.name)
        audit.record(actor, "activity.cover", org=activity.org, target=activity, summary=activity.title, ip=ip)
    if old:
        activity.cover.storage.delete(old)
    return activity
