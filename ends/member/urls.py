from django.urls import path

from . import views

app_name = "member"
urlpatterns = [
    path("", views.home, name="home"),
    path("login/", views.login_view, name="login"),
    path("logout/", views.logout_view, name="logout"),
    path("password/", views.password_view, name="password"),
    path("certify/", views.certify, name="certify"),
    path("join/", views.join, name="join"),
    path("orgs/", views.org_options, name="org_options"),
    path("card/", views.card, name="card"),
    path("card/qr/", views.card_qr, name="card_qr"),
    path("transfer/", views.transfer, name="transfer"),
    path("transfer/<int:pk>/cancel/", views.transfer_cancel, name="transfer_cancel"),
]
