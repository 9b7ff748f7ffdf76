import os

from django.conf import settings
from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
if settings.UNSAFE_REASONS:
    # The names of the settings, never their values (config/settings.py, "Refuse to serve unsafe").
    raise RuntimeError(
        "Refusing to start with DEBUG off: " + "; ".join(settings.UNSAFE_REASONS) + ". See README, Production."
    )
application = get_wsgi_application()
