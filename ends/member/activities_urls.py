"""The member end's activities pages and notifications; included into the member namespace by urls.py."""

from django.urls import path

from . import activities_views, notices_views

urlpatterns: list = [
    path("activities/", activities_views.activity_list, name="activities"),
    path("activities/new/", activities_views.activity_propose, name="activity_propose"),
    path("activities/<int:pk>/", activities_views.activity_detail, name="activity"),
    path("activities/<int:pk>/signup/", activities_views.activity_signup, name="activity_signup"),
    path("activities/<int:pk>/cancel/", activities_views.activity_cancel, name="activity_cancel"),
    path("activities/<int:pk>/checkin/", activities_views.activity_checkin, name="activity_checkin"),
    path("notices/", notices_views.notice_list, name="notices"),
    path("notices/read/", notices_views.notices_read_all, name="notices_read_all"),
    path("notices/badge/", notices_views.notices_badge, name="notices_badge"),
    path("notices/<int:pk>/", notices_views.notice_open, name="notice_open"),
]
