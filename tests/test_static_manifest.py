"""Production serves static files through the hashed manifest: collectstatic must succeed with
every vendored asset (a JS file naming a source map we did not ship fails it, and with it every
page of a DEBUG=0 server)."""

from __future__ import annotations

import json

from django.core.management import call_command
from django.test import override_settings


def test_collectstatic_builds_the_manifest_for_every_vendored_asset(tmp_path):
    storages = {
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
        "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
    }
    with override_settings(STATIC_ROOT=tmp_path, STORAGES=storages):
        call_command("collectstatic", "--noinput", "-v0")
    paths = json.loads((tmp_path / "staticfiles.json").read_text())["paths"]
    for asset in ("weui.min.css", "htmx.min.js", "echarts.min.js", "hls.min.js", "jsQR.js"):
        assert f"vendor/{asset}" in paths
