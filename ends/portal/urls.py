from django.urls import include, path

from . import lottery_views, views

app_name = "portal"
urlpatterns = [
    path("", views.home, name="home"),
    path("lotteries/<int:pk>/", lottery_views.lottery_public, name="lottery"),
    path("lotteries/<int:pk>/record.json", lottery_views.lottery_record_json, name="lottery_record"),
    path("", include("ends.portal.votes_urls")),
    path("", include("ends.portal.elections_urls")),
    path("", include("ends.portal.activities_urls")),
    path("", include("ends.portal.clubs_urls")),
    path("", include("ends.portal.live_urls")),
]
