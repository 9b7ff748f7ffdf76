"""Sign-in and sign-out of the console (phone + password)."""

from __future__ import annotations

from django.contrib.auth import login, logout
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts.services import login_with_password
from core import audit
from core.errors import DomainError, Throttled
from orgs import scoping


def login_view(request):
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    if not url_has_allowed_host_and_scheme(next_url, {request.get_host()}, require_https=request.is_secure()):
        next_url = ""
    if request.user.is_authenticated and request.method == "GET" and scoping.is_cadre(request.user):
        return redirect(next_url or "console:home")
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
                if not scoping.is_cadre(user):
                    return render(request, "console/no_role.html", status=403)
                return redirect(next_url or "console:home")
        else:
            status = 422
    return render(request, "console/login.html", {"errors": errors, "phone": phone, "next": next_url}, status=status)


@require_POST
def logout_view(request):
    logout(request)
    return redirect("console:login")
