"""The portal end's votes pages; included into the portal namespace by urls.py."""

from django.urls import path

from . import votes_views

urlpatterns = [
    path("polls/", votes_views.poll_index, name="polls"),
    path("polls/<int:pk>/", votes_views.poll_results, name="poll"),
    path("polls/<int:pk>/receipts/", votes_views.poll_receipts, name="poll_receipts"),
    path("polls/<int:pk>/recount/", votes_views.poll_recount, name="poll_recount"),
    path("polls/<int:pk>/record.json", votes_views.poll_record_json, name="poll_record"),
    path("polls/<int:pk>/options/<int:option_id>/photo/", votes_views.poll_photo, name="poll_photo"),
]
