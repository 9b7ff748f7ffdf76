from django.apps import AppConfig


class MemberConfig(AppConfig):
    name = "ends.member"
    label = "member"
