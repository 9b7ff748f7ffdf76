"""The member end's live pages; included into the member namespace by urls.py."""

from django.urls import path

from . import live_views

urlpatterns = [
    path("live/", live_views.live_list, name="live_list"),
    path("live/<int:pk>/", live_views.live_detail, name="live"),
    path("live/<int:pk>/reminder/", live_views.live_reminder, name="live_reminder"),
    path("live/<int:pk>/heartbeat/", live_views.live_heartbeat, name="live_heartbeat"),
    path("live/<int:pk>/comments/", live_views.live_comments, name="live_comments"),
]
