from django.apps import AppConfig


class CadreConfig(AppConfig):
    name = "ends.cadre"
    label = "cadre"
