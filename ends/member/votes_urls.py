"""The member end's votes pages; included into the member namespace by urls.py."""

from django.urls import path

from . import votes_views

urlpatterns = [
    path("polls/", votes_views.poll_list, name="polls"),
    path("polls/<int:pk>/", votes_views.poll_detail, name="poll"),
    path("polls/<int:pk>/receipt/", votes_views.poll_receipt, name="poll_receipt"),
    path("polls/<int:pk>/options/<int:option_id>/", votes_views.poll_share, name="poll_share"),
    path("polls/<int:pk>/options/<int:option_id>/photo/", votes_views.poll_photo, name="poll_photo"),
]
