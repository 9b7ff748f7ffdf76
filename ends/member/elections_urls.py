"""The member end's elections pages; included into the member namespace by urls.py."""

from django.urls import path

from . import elections_views

urlpatterns: list = [
    path("elections/", elections_views.election_list, name="elections"),
    path("elections/<int:pk>/", elections_views.election_detail, name="election"),
]
