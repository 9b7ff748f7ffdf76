from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "ends.portal"
    label = "portal"
