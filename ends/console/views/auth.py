"""Sign-in and sign-out of the console: phone + password, then a TOTP code for admin cadres
(accounts.twofactor); an admin resets another cadre's second factor."""

from __future__ import annotations

from urllib.parse import urlencode

from django.contrib.auth import login, logout
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import twofactor
from accounts.services import login_with_password
from core import audit
from core.errors import DomainError, NotFound, Throttled
from orgs import scoping
from orgs.models import CadreRole

from ..common import cadre_required, current_org
from .cadres import _cadres_page


def _next_url(request) -> str:
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, require_https=request.is_secure()):
        return ""
    return next_url


def _to_code_step(next_url: str):
    url = reverse("console:twofactor")
    return redirect(f"{url}?{urlencode({'next': next_url})}" if next_url else url)


def login_view(request):
    next_url = _next_url(request)
    user = request.user
    notice = ""
    if request.user.is_authenticated and request.method == "GET" and scoping.is_cadre(user):
        if twofactor.console_ready(request):
            return redirect(next_url or "console:home")
        if twofactor.signed_in_by_password(request):
            return _to_code_step(next_url)
        # Signed in elsewhere (an SMS code on /m/, the cadre end): the console needs its own password login.
        notice = _("进入管理平台需要在此用手机号和密码登录，短信验证码登录的账号不能直接进入。")
    errors: dict[str, str] = {}
    phone = ""
    status = 200
    if request.method == "POST":
        phone = request.POST.get("phone", "").strip()
        password = request.POST.get("password", "")
        if not phone:
            errors["phone"] = _("请填写手机号")
        if not password:
            errors["password"] = _("请填写密码")
        if not errors:
            try:
                user = login_with_password(request, phone, password, audit.client_ip(request))
            except Throttled as e:
                errors["general"] = e.message
                status = 429
            except DomainError as e:
                errors["password"] = e.message
                status = e.status
            else:
                login(request, user)
                twofactor.mark_password_sign_in(request)
                if not scoping.is_cadre(user):
                    return render(request, "console/no_role.html", status=403)
                if twofactor.needs_second_factor(user):
                    return _to_code_step(next_url)
                return redirect(next_url or "console:home")
        else:
            status = 422
    ctx = {"errors": errors, "phone": phone, "next": next_url, "notice": notice}
    return render(request, "console/login.html", ctx, status=status)


def twofactor_view(request):
    """After the password, for admin cadres: enrol a TOTP device (QR code + key) when none is
    confirmed, else enter the current code. Either way a right code marks the session verified."""
    next_url = _next_url(request)
    user = request.user
    if not user.is_authenticated or not twofactor.signed_in_by_password(request):
        login_url = reverse("console:login")
        return redirect(f"{login_url}?{urlencode({'next': next_url})}" if next_url else login_url)
    if not twofactor.needs_second_factor(user) or twofactor.is_verified(request):
        return redirect(next_url or "console:home")
    device = twofactor.confirmed_device(user)
    enrol = device is None
    if enrol:
        device = twofactor.enrolment_device(user)
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        try:
            twofactor.verify_code(request, device, request.POST.get("code", ""))
        except Throttled as e:
            errors["code"] = e.message
            status = 429
        except DomainError as e:
            errors.update(e.fields or {"code": e.message})
            status = e.status
        else:
            return redirect(next_url or "console:home")
    ctx = {"errors": errors, "next": next_url, "enrol": enrol, "masked_phone": user.phone_masked}
    if enrol:
        uri = twofactor.otpauth_uri(device, user)
        ctx.update(qr_svg=mark_safe(twofactor.qr_svg(uri)), manual_key=twofactor.manual_key(device))
    response = render(request, "console/twofactor.html", ctx, status=status)
    # The enrolment page carries the secret: never keep it in a cache.
    response["Cache-Control"] = "no-store"
    return response


@require_POST
def logout_view(request):
    logout(request)
    return redirect("console:login")


@cadre_required
@require_POST
def twofactor_reset(request, cadre_id: int):
    """Remove a cadre's TOTP device (a lost phone); the service checks scope and audits it."""
    cadre = (
        scoping.scoped(CadreRole.objects.select_related("org", "user"), request.user, "org__path")
        .filter(pk=cadre_id)
        .first()
    )
    if cadre is None:
        raise NotFound(_("未找到该干部"))
    org = current_org(request)
    try:
        twofactor.reset_second_factor(request.user, cadre, ip=audit.client_ip(request))
    except DomainError as e:
        if isinstance(e, NotFound):
            raise
        return _cadres_page(request, org, errors={"revoke": e.message, "revoke_id": cadre.pk}, status=e.status)
    return redirect(f"{reverse('console:cadres')}?{urlencode({'org': org.pk, 'twofactor_reset': cadre.pk})}")
