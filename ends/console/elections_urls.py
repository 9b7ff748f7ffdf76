"""The console end's elections pages; included into the console namespace by urls.py."""

from django.urls import path

from .views import elections

urlpatterns: list = [
    path("elections/", elections.election_list, name="elections"),
    path("elections/new/", elections.election_new, name="election_new"),
    path("elections/members/", elections.election_members, name="election_members"),
    path("elections/<int:election_id>/", elections.election_detail, name="election"),
    path("elections/<int:election_id>/turnout/", elections.election_turnout, name="election_turnout"),
    path("elections/<int:election_id>/close/", elections.election_close, name="election_close"),
    path("elections/<int:election_id>/next-round/", elections.election_next_round, name="election_next_round"),
    path("elections/<int:election_id>/report.pdf", elections.election_report, name="election_report"),
]
