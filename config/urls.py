from django.conf import settings
from django.urls import include, path, re_path
from django.views.static import serve

from api.api import not_found_view
from api.api import urls as api_urls

urlpatterns = [
    path("api/v1/", api_urls()),
    re_path(r"^api/", not_found_view),
    path("i18n/", include("django.conf.urls.i18n")),
    path("m/", include("ends.member.urls")),
    path("c/", include("ends.cadre.urls")),
    path("console/", include("ends.console.urls")),
    # Uploads are images we re-encoded ourselves; one machine serves them itself (a CDN or the
    # front proxy can take this path over in a larger deployment).
    re_path(r"^media/(?P<path>.+)$", serve, {"document_root": settings.MEDIA_ROOT}),
    path("", include("ends.portal.urls")),
]
if settings.UNIONHOME_DEV_INBOX:
    urlpatterns.insert(0, path("dev/", include("ends.portal.dev_urls")))
