from django.urls import path

from . import views

app_name = "dev"
urlpatterns = [path("sms/", views.dev_sms_inbox, name="sms")]
