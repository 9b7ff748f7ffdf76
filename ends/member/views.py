"""Member service end (会员服务, /m/): sign-in, certification, the member card, transfers."""

from __future__ import annotations

import segno
from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login, logout, update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.http import HttpResponseNotAllowed
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import services as auth_services
from core.audit import client_ip
from core.errors import DomainError, Throttled
from members import certification, services
from members.models import JoinApplication, RequestStatus
from orgs import scoping

from .web import active_org, error_context, safe_next, search_orgs, throttle_message

BACKEND = "accounts.backends.PhonePasswordBackend"


# --- sign-in ------------------------------------------------------------------------------------


def login_view(request):
    """SMS code (default tab; a new phone signs up as a follower) or password."""
    home = reverse("member:home")
    if request.user.is_authenticated and request.method == "GET":
        return redirect(safe_next(request, home))
    tab = "password" if (request.POST.get("tab") or request.GET.get("tab")) == "password" else "sms"
    ctx = {"tab": tab, "phone": request.POST.get("phone", "").strip(), "errors": {}, "error": "", "code_sent": False}
    ctx["next"] = safe_next(request, "")
    if request.method == "POST":
        action = request.POST.get("action", "")
        try:
            if action == "send_code":
                auth_services.send_login_code(ctx["phone"], ip=client_ip(request))
                ctx["code_sent"] = True
            elif tab == "sms":
                user, created = auth_services.sign_in_by_code(ctx["phone"], request.POST.get("code", ""))
                login(request, user, backend=BACKEND)
                if created:
                    messages.success(request, _("注册成功，您已成为粉丝。完成实名认证即可享受会员服务。"))
                return redirect(safe_next(request, home))
            else:
                user = auth_services.login_with_password(
                    request, ctx["phone"], request.POST.get("password", ""), client_ip(request)
                )
                login(request, user, backend=BACKEND)
                return redirect(safe_next(request, home))
        except Throttled as e:
            if action == "send_code":
                ctx["errors"] = {"phone": throttle_message(e)}
                ctx["retry_after"] = e.retry_after
            else:
                ctx["error"] = throttle_message(e)
        except DomainError as e:
            ctx.update(error_context(e))
    return render(request, "member/login.html", ctx, status=200)


@require_POST
def logout_view(request):
    logout(request)
    return redirect("member:login")


@login_required
def password_view(request):
    errors = {}
    if request.method == "POST":
        pw, pw2 = request.POST.get("password", ""), request.POST.get("password2", "")
        if pw != pw2:
            errors["password2"] = _("两次输入的密码不一致")
        else:
            try:
                validate_password(pw, request.user)
            except ValidationError as e:
                errors["password"] = " ".join(e.messages)
        if not errors:
            request.user.set_password(pw)
            request.user.save(update_fields=["password"])
            update_session_auth_hash(request, request.user)
            messages.success(request, _("密码已设置，下次可用手机号和密码登录"))
            return redirect("member:home")
    return render(
        request, "member/password.html", {"errors": errors, "has_password": request.user.has_usable_password()}
    )


# --- home ---------------------------------------------------------------------------------------


@login_required
def home(request):
    member = services.member_of(request.user)
    pending = (
        JoinApplication.objects.filter(user=request.user, status=RequestStatus.PENDING).select_related("org").first()
    )
    return render(
        request,
        "member/home.html",
        {"member": member, "pending_application": pending, "is_cadre": scoping.is_cadre(request.user)},
    )


# --- certification and joining ------------------------------------------------------------------


def _applications(user):
    return JoinApplication.objects.filter(user=user).select_related("org")[:10]


@login_required
def certify(request):
    """Two steps (members.certification): name + ID number → a code to the roster phone → the code.
    The ID number travels only in the form's own POST body between the steps, never the session."""
    user = request.user
    member = services.member_of(user)
    ctx = {"member": member, "errors": {}, "error": "", "applications": _applications(user), "step": "start"}
    ctx["reviews"] = certification.reviews_of(user)
    ctx["name"] = request.POST.get("name", member.name if member else user.name).strip()
    ctx["id_number"] = request.POST.get("id_number", "").strip()
    ctx["phone_masked"] = request.POST.get("phone_masked", "")[:20]
    action = request.POST.get("action", "start")
    if request.method == "POST" and not (member and member.certified):
        ip = client_ip(request)
        try:
            if action == "complete":
                ctx["step"] = "code"
                done = certification.complete(user, ctx["name"], ctx["id_number"], request.POST.get("code"), ip=ip)
            elif action == "review":
                ctx["step"] = "code"
                certification.request_review(user, ctx["name"], ctx["id_number"], ip=ip)
                messages.success(request, _("认证申请已提交，请等待工会审核"))
                return redirect("member:certify")
            else:
                done = certification.start(user, ctx["name"], ctx["id_number"], ip=ip)
                if isinstance(done, certification.CodeSent):
                    ctx["step"], ctx["phone_masked"] = "code", done.phone_masked
                    return render(request, "member/certify.html", ctx)
        except DomainError as e:
            ctx.update(error_context(e))
            ctx["failed"] = e.code == certification.CERTIFICATION_FAILED and action == "start"
            return render(request, "member/certify.html", ctx, status=e.status)
        if done.user_id != user.pk:  # the login moved onto the roster account
            login(request, done.user, backend=BACKEND)
        messages.success(request, _("实名认证成功，欢迎您，%(name)s") % {"name": done.name})
        return redirect("member:card")
    return render(request, "member/certify.html", ctx)


@login_required
def join(request):
    member = services.member_of(request.user)
    data = request.POST if request.method == "POST" else request.GET
    ctx = {
        "member": member,
        "errors": {},
        "error": "",
        "name": data.get("name", request.user.name).strip(),
        "id_number": data.get("id_number", "").strip(),
        "workplace": data.get("workplace", "").strip(),
        "q": data.get("q", "").strip(),
        "applications": _applications(request.user),
        "pending": JoinApplication.objects.filter(user=request.user, status=RequestStatus.PENDING).first(),
    }
    ctx["selected_org"] = active_org(data.get("org"))
    if request.method == "POST" and "search" not in request.POST:
        org = ctx["selected_org"]
        if org is None:
            ctx["errors"] = {"org": _("请选择要加入的工会")}
        else:
            try:
                services.apply_to_join(request.user, org, ctx["name"], ctx["id_number"], ctx["workplace"])
            except DomainError as e:
                ctx.update(error_context(e))
            else:
                messages.success(request, _("入会申请已提交，请等待 %(org)s 审核") % {"org": org.name})
                return redirect("member:join")
    ctx["orgs"] = search_orgs(ctx["q"])
    return render(request, "member/join.html", ctx)


@login_required
def org_options(request):
    """htmx: the union choices for a search box (radio inputs named by ?field=)."""
    field = "to_org" if request.GET.get("field") == "to_org" else "org"
    member = services.member_of(request.user)
    exclude = member.org_id if field == "to_org" and member else None
    orgs = search_orgs(request.GET.get("q", ""), exclude_id=exclude)
    return render(request, "member/_org_options.html", {"orgs": orgs, "field": field, "selected_org": None})


# --- member card --------------------------------------------------------------------------------


def _card_qr(request, member) -> dict:
    token = services.card_token(member)
    link = request.build_absolute_uri(reverse("cadre:verify")) + "?" + urlencode({"t": token})
    svg = segno.make(link, error="m").svg_inline(scale=4, border=2, dark="#111", omitsize=True)
    return {"qr_svg": svg, "ttl_minutes": settings.MEMBER_CARD_TTL_SECONDS // 60, "refresh_seconds": 240}


@login_required
def card(request):
    member = services.member_of(request.user)
    ctx = {"member": member}
    if member is not None and member.certified:
        ctx.update(_card_qr(request, member))
        ctx["since"] = member.periods.order_by("started_at").first()
    return render(request, "member/card.html", ctx)


@login_required
def card_qr(request):
    """htmx: a fresh QR before the old token expires."""
    member = services.member_of(request.user)
    if member is None or not member.certified:
        return render(request, "member/_card_qr.html", {"member": None}, status=403)
    return render(request, "member/_card_qr.html", {"member": member, **_card_qr(request, member)})


# --- transfer -----------------------------------------------------------------------------------


@login_required
def transfer(request):
    member = services.member_of(request.user)
    data = request.POST if request.method == "POST" else request.GET
    ctx = {"member": member, "errors": {}, "error": "", "q": data.get("q", "").strip()}
    ctx["reason"] = data.get("reason", "").strip()
    ctx["selected_org"] = active_org(data.get("to_org"))
    if member is not None:
        ctx["transfers"] = member.transfers.select_related("from_org", "to_org")[:20]
        ctx["periods"] = member.periods.select_related("org").order_by("-started_at")
        ctx["pending"] = member.transfers.filter(status=RequestStatus.PENDING).select_related("to_org").first()
        if request.method == "POST" and "search" not in request.POST:
            org = ctx["selected_org"]
            if org is None:
                ctx["errors"] = {"to_org": _("请选择转入的工会")}
            else:
                try:
                    services.request_transfer(request.user, org, ctx["reason"])
                except DomainError as e:
                    ctx.update(error_context(e))
                else:
                    messages.success(request, _("转接申请已提交，等待 %(org)s 审核") % {"org": org.name})
                    return redirect("member:transfer")
        ctx["orgs"] = search_orgs(ctx["q"], exclude_id=member.org_id)
    elif request.method == "POST":
        return HttpResponseNotAllowed(["GET"])
    return render(request, "member/transfer.html", ctx)


@login_required
@require_POST
def transfer_cancel(request, pk: int):
    try:
        services.cancel_transfer(request.user, pk)
    except DomainError as e:
        messages.error(request, e.message)
    else:
        messages.success(request, _("转接申请已撤回"))
    return redirect("member:transfer")
