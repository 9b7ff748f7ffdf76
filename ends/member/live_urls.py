"""The member end's live pages; included into the member namespace by urls.py."""

from django.urls import path  # noqa: F401 - used once pages are added

urlpatterns: list = []
