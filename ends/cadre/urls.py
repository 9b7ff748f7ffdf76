from django.urls import include, path

from . import points_views, views

app_name = "cadre"
urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("joins/", views.joins, name="joins"),
    path("joins/<int:pk>/decide/", views.join_decide, name="join_decide"),
    path("certifications/<int:pk>/decide/", views.certification_decide, name="certification_decide"),
    path("transfers/", views.transfers, name="transfers"),
    path("transfers/<int:pk>/decide/", views.transfer_decide, name="transfer_decide"),
    path("verify/", views.verify, name="verify"),
    path("pickup/", points_views.pickup, name="pickup"),
    path("grant/", points_views.grant, name="grant"),
    path("grant/members/", points_views.grant_members, name="grant_members"),
    path("", include("ends.cadre.votes_urls")),
    path("", include("ends.cadre.elections_urls")),
    path("", include("ends.cadre.activities_urls")),
    path("", include("ends.cadre.clubs_urls")),
    path("", include("ends.cadre.live_urls")),
]
