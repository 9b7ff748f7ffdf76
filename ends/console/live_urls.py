"""The console end's live pages; included into the console namespace by urls.py."""

from django.urls import path

from .views import live

urlpatterns = [
    path("live/", live.live_list, name="live_list"),
    path("live/new/", live.live_new, name="live_new"),
    path("live/<int:session_id>/", live.live_detail, name="live"),
    path("live/<int:session_id>/edit/", live.live_edit, name="live_edit"),
    path("live/<int:session_id>/timeline/", live.live_timeline, name="live_timeline"),
    path("live/<int:session_id>/replay/", live.live_replay, name="live_replay"),
    path("live/<int:session_id>/cancel/", live.live_cancel, name="live_cancel"),
    path("live/<int:session_id>/moderate/", live.live_moderate, name="live_moderate"),
]
