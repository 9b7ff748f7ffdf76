from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "ends.console"
    label = "console"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_in

        from accounts.twofactor import forget_sign_in

        # Every login (SMS on /m/, the cadre end /c/, a member's account merge) starts without the
        # console's proofs; only the console's own password login and code step set them again.
        user_logged_in.connect(forget_sign_in, dispatch_uid="console.forget_sign_in")
