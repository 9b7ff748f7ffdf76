from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "ends.console"
    label = "console"
