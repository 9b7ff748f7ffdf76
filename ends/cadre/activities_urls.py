"""The cadre end's activities pages; included into the cadre namespace by urls.py."""

from django.urls import path

from . import activities_views

urlpatterns: list = [
    path("activities/", activities_views.activity_hub, name="activities"),
    path("activities/<int:pk>/", activities_views.activity_entry, name="activity"),
    path("activities/<int:pk>/decide/", activities_views.proposal_decide, name="activity_decide"),
    path("activities/<int:pk>/review/", activities_views.proposal_review, name="activity_review"),
    path("activities/<int:pk>/checkin/", activities_views.activity_checkin, name="activity_checkin"),
    path("activities/<int:pk>/checkin/qr/", activities_views.activity_checkin_qr, name="activity_checkin_qr"),
    path("activities/<int:pk>/checkin/card/", activities_views.activity_checkin_card, name="activity_checkin_card"),
]
