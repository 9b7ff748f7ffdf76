"""The current console code of a demo admin, for trying the console without an authenticator app.

Admin cadres need a TOTP code after their password (accounts.twofactor). On a laptop demo nobody
has enrolled an app yet, so this prints the code of the person's device, the one being enrolled
included. Development only: with DEBUG off it refuses (whoever runs it can read the database
anyway, but a production shell is no place for a code printer).
"""

from __future__ import annotations

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from accounts.models import User
from core import phones, pii


class Command(BaseCommand):
    help = "Print the current console second-factor code of a demo admin (DEBUG only)."

    def add_arguments(self, parser):
        parser.add_argument("phone")

    def handle(self, *args, phone: str, **options):
        if not settings.DEBUG:
            raise CommandError("demo_totp is for the demo only (DEBUG=1)")
        user = User.objects.filter(phone_hash=pii.phone_index(phones.normalize(phone))).first()
        if user is None:
            raise CommandError("no account with that phone")
        device = TOTPDevice.objects.filter(user=user).order_by("-confirmed", "-id").first()
        if device is None:
            raise CommandError("no device yet: sign in to /console/ with the password first, then run this again")
        code = totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits, drift=device.drift)
        self.stdout.write(f"{code:0{device.digits}d}")
