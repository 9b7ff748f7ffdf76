"""The portal end's elections pages; included into the portal namespace by urls.py."""

from django.urls import path

from . import elections_views

urlpatterns: list = [
    path("elections/<int:pk>/", elections_views.election_public, name="election"),
    path("elections/<int:pk>/recount/", elections_views.election_recount, name="election_recount"),
    path("elections/<int:pk>/record.json", elections_views.election_record_json, name="election_record"),
]
