"""The console end's clubs pages; included into the console namespace by urls.py."""

from django.urls import path

from .views import clubs

urlpatterns = [
    path("clubs/", clubs.club_list, name="clubs"),
    path("clubs/<int:club_id>/", clubs.club_detail, name="club"),
    path("clubs/<int:club_id>/decide/", clubs.club_decide, name="club_decide"),
]
