from django.conf import settings
from django.urls import include, path, re_path

from api.api import api, not_found_view

urlpatterns = [
    path("api/v1/", api.urls),
    re_path(r"^api/", not_found_view),
    path("i18n/", include("django.conf.urls.i18n")),
    path("m/", include("ends.member.urls")),
    path("c/", include("ends.cadre.urls")),
    path("console/", include("ends.console.urls")),
    path("", include("ends.portal.urls")),
]
if settings.UNIONHOME_DEV_INBOX:
    urlpatterns.insert(0, path("dev/", include("ends.portal.dev_urls")))
