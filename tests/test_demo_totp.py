"""demo_totp prints the code the console accepts for a demo admin, and only in debug."""

from __future__ import annotations

import io

import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from django_otp.plugins.otp_totp.models import TOTPDevice


@pytest.mark.django_db
@override_settings(DEBUG=True)
def test_demo_totp_prints_the_code_the_device_accepts(district):
    admin = district.district_admin
    with pytest.raises(CommandError, match="no device yet"):
        call_command("demo_totp", admin.phone)
    device = TOTPDevice.objects.create(user=admin, name="console", confirmed=False)
    out = io.StringIO()
    call_command("demo_totp", admin.phone, stdout=out)
    code = out.getvalue().strip()
    assert len(code) == 6 and code.isdigit()
    assert device.verify_token(code)


@pytest.mark.django_db
def test_demo_totp_refuses_without_debug(district):
    TOTPDevice.objects.create(user=district.district_admin, name="console", confirmed=True)
    with override_settings(DEBUG=False), pytest.raises(CommandError, match="demo only"):
        call_command("demo_totp", district.district_admin.phone)
