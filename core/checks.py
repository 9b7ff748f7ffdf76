"""`check --deploy` names every development part left in place with debug off (the web server
itself refuses to start on them: config/wsgi.py)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Error, Tags, register


@register(Tags.security, deploy=True)
def development_parts(app_configs, **kwargs) -> list[Error]:
    return [Error(reason, id="unionhome.E001") for reason in settings.UNSAFE_REASONS]
