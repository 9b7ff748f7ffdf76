from django.urls import include, path

from . import lottery_views, points_views, views

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
    path("points/", points_views.points, name="points"),
    path("mall/", points_views.mall_list, name="mall"),
    path("mall/<int:pk>/", points_views.reward_detail, name="reward"),
    path("mall/<int:pk>/redeem/", points_views.reward_redeem, name="reward_redeem"),
    path("redemptions/", points_views.redemptions, name="redemptions"),
    path("redemptions/<int:pk>/cancel/", points_views.redemption_cancel, name="redemption_cancel"),
    path("transfer/", views.transfer, name="transfer"),
    path("transfer/<int:pk>/cancel/", views.transfer_cancel, name="transfer_cancel"),
    path("lotteries/", lottery_views.lottery_list, name="lotteries"),
    path("lotteries/<int:pk>/", lottery_views.lottery_detail, name="lottery"),
    path("", include("ends.member.votes_urls")),
    path("", include("ends.member.elections_urls")),
    path("", include("ends.member.activities_urls")),
    path("", include("ends.member.clubs_urls")),
    path("", include("ends.member.live_urls")),
]
