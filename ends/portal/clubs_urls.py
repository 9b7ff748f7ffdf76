"""The portal end's clubs pages; included into the portal namespace by urls.py."""

from django.urls import path  # noqa: F401 - used once pages are added

urlpatterns: list = []
