"""The console end's activities pages; included into the console namespace by urls.py."""

from django.urls import path

from .views import activities

urlpatterns: list = [
    path("activities/", activities.activity_list, name="activities"),
    path("activities/new/", activities.activity_new, name="activity_new"),
    path("activities/orgs/pick/", activities.org_pick, name="activity_org_pick"),
    path("activities/proposals/", activities.proposal_list, name="activity_proposals"),
    path("activities/proposals/<int:pk>/decide/", activities.proposal_decide, name="activity_decide"),
    path("activities/<int:pk>/", activities.activity_detail, name="activity"),
    path("activities/<int:pk>/edit/", activities.activity_edit, name="activity_edit"),
    path("activities/<int:pk>/signups.xlsx", activities.activity_export, name="activity_export"),
    path("activities/<int:pk>/message/", activities.activity_message, name="activity_message"),
    path("activities/<int:pk>/cancel/", activities.activity_cancel, name="activity_cancel"),
]
