"""The cadre end's votes pages; included into the cadre namespace by urls.py."""

from django.urls import path

from . import votes_views

urlpatterns = [
    path("judge/", votes_views.judge_list, name="judge_list"),
    path("judge/<int:pk>/", votes_views.judge_scores, name="judge"),
    path("judge/<int:pk>/options/<int:option_id>/photo/", votes_views.judge_photo, name="judge_photo"),
]
