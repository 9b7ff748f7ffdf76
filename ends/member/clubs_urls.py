"""The member end's clubs pages; included into the member namespace by urls.py."""

from django.urls import path

from . import clubs_views

urlpatterns = [
    path("clubs/", clubs_views.club_list, name="clubs"),
    path("clubs/new/", clubs_views.club_propose, name="club_propose"),
    path("clubs/<int:pk>/", clubs_views.club_detail, name="club"),
    path("clubs/<int:pk>/join/", clubs_views.club_join, name="club_join"),
    path("clubs/<int:pk>/leave/", clubs_views.club_leave, name="club_leave"),
    path("clubs/<int:pk>/manage/", clubs_views.club_manage, name="club_manage"),
    path("clubs/<int:pk>/manage/posts/", clubs_views.club_post, name="club_post"),
    path("clubs/<int:pk>/manage/requests/<int:user_id>/", clubs_views.club_request_decide, name="club_request_decide"),
    path("clubs/<int:pk>/manage/members/<int:user_id>/promote/", clubs_views.club_promote, name="club_promote"),
]
