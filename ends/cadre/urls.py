from django.urls import path

from . import views

app_name = "cadre"
urlpatterns = [path("", views.home, name="home")]
