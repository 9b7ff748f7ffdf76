"""The console end's votes pages; included into the console namespace by urls.py."""

from django.urls import path

from .views import votes

urlpatterns = [
    path("polls/", votes.poll_list, name="polls"),
    path("polls/new/", votes.poll_new, name="poll_new"),
    path("polls/orgs/", votes.org_pick, name="poll_org_pick"),
    path("polls/people/", votes.people_search, name="poll_people"),
    path("polls/<int:pk>/", votes.poll_detail, name="poll"),
    path("polls/<int:pk>/close/", votes.poll_close, name="poll_close"),
    path("polls/<int:pk>/options/<int:option_id>/photo/", votes.option_photo, name="poll_option_photo"),
    path("polls/<int:pk>/criteria/", votes.contest_criteria, name="poll_criteria"),
    path("polls/<int:pk>/judges/", votes.contest_judges, name="poll_judges"),
    path("polls/<int:pk>/monitor/", votes.poll_monitor, name="poll_monitor"),
    path("polls/<int:pk>/void/", votes.poll_void, name="poll_void"),
    path("polls/<int:pk>/ranking/", votes.poll_ranking, name="poll_ranking"),
    path("polls/<int:pk>/publish/", votes.poll_publish, name="poll_publish"),
]
