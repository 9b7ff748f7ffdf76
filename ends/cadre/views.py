"""Cadre OA end (干部OA, /c/): approvals of join applications and transfers, member-card checks."""

from __future__ import annotations

from functools import wraps
from urllib.parse import parse_qs, urlsplit

from django.contrib import messages
from django.contrib.auth import login, logout
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from accounts import services as auth_services
from core.audit import client_ip
from core.errors import DomainError, Throttled
from ends.member.web import error_context, safe_next, throttle_message
from members import certification, services
from orgs import scoping
from orgs.models import CadreRoleKind, Org
from rewards.services.verifiers import is_verifier

BACKEND = "accounts.backends.PhonePasswordBackend"


def cadre_required(view):
    """Signed-in cadres only: others go to the cadre login, a merchant's 核销员 to its one page, other
    signed-in non-cadres see why (403)."""
    return _guarded(view, verifiers_too=False)


def pickup_allowed(view):
    """Cadres and 核销员 (rewards.services.verifiers): the pickup page only."""
    return _guarded(view, verifiers_too=True)


def _guarded(view, *, verifiers_too: bool):
    @wraps(view)
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect(reverse("cadre:login") + "?" + urlencode({"next": request.get_full_path()}))
        if not scoping.is_cadre(request.user):
            if not is_verifier(request.user):
                return render(request, "cadre/not_cadre.html", status=403)
            if not verifiers_too:
                return redirect("cadre:pickup")
        return view(request, *args, **kwargs)

    return wrapper


def login_view(request):
    home = reverse("cadre:home")
    if (
        request.user.is_authenticated
        and request.method == "GET"
        and (scoping.is_cadre(request.user) or is_verifier(request.user))
    ):
        return redirect(safe_next(request, home))
    ctx = {"phone": request.POST.get("phone", "").strip(), "errors": {}, "error": "", "next": safe_next(request, "")}
    if request.method == "POST":
        try:
            user = auth_services.login_with_password(
                request, ctx["phone"], request.POST.get("password", ""), client_ip(request)
            )
        except Throttled as e:
            ctx["error"] = throttle_message(e)
        except DomainError as e:
            ctx.update(error_context(e))
        else:
            login(request, user, backend=BACKEND)
            return redirect(safe_next(request, home))
    return render(request, "cadre/login.html", ctx)


@require_POST
def logout_view(request):
    logout(request)
    return redirect("cadre:login")


def _roles(user) -> list[dict]:
    orgs = Org.objects.in_bulk([org_id for _, _, org_id in scoping.cadre_roles(user)])
    labels = dict(CadreRoleKind.choices)
    return [
        {"org": orgs[org_id], "role": labels.get(role, role)}
        for _, role, org_id in scoping.cadre_roles(user)
        if org_id in orgs
    ]


@cadre_required
def home(request):
    user = request.user
    return render(
        request,
        "cadre/home.html",
        {
            "roles": _roles(user),
            "pending_joins": services.join_applications_for(user).count(),
            "pending_transfers": services.transfers_for(user).count(),
            "pending_transfers_to_decide": services.transfers_for(user)
            .filter(scoping.path_q(user, "to_org__path"))
            .count(),
        },
    )


# --- join applications --------------------------------------------------------------------------


def _joins_context(user) -> dict:
    return {
        "apps": services.join_applications_for(user).order_by("created_at", "id")[:100],
        "reviews": certification.reviews_for(user).order_by("created_at", "id")[:100],
        "form_for": None,
        "errors": {},
    }


@cadre_required
def joins(request):
    return render(request, "cadre/joins.html", _joins_context(request.user))


@cadre_required
@require_POST
def join_decide(request, pk: int):
    approve = request.POST.get("decision") == "approve"
    reason = request.POST.get("reason", "")
    try:
        app = services.decide_join(request.user, pk, approve, reason, ip=client_ip(request))
    except DomainError as e:
        if e.status == 404:
            return render(request, "cadre/not_found.html", status=404)
        ctx = {**_joins_context(request.user), "form_for": int(pk), "reason": reason, **error_context(e)}
        return render(request, "cadre/joins.html", ctx, status=e.status)
    if approve:
        messages.success(request, _("已通过 %(name)s 的入会申请") % {"name": app.name})
    else:
        messages.success(request, _("已驳回 %(name)s 的入会申请") % {"name": app.name})
    return redirect("cadre:joins")


@cadre_required
@require_POST
def certification_decide(request, pk: int):
    """A roster row's phone is dead: the cadre, having checked who is asking, hands it over or not."""
    approve = request.POST.get("decision") == "approve"
    reason = request.POST.get("reason", "")
    try:
        review = certification.decide_review(request.user, pk, approve, reason, ip=client_ip(request))
    except DomainError as e:
        if e.status == 404:
            return render(request, "cadre/not_found.html", status=404)
        ctx = {**_joins_context(request.user), "review_for": int(pk), "reason": reason, **error_context(e)}
        return render(request, "cadre/joins.html", ctx, status=e.status)
    name = review.member.name
    if approve:
        messages.success(request, _("已通过 %(name)s 的实名认证") % {"name": name})
    else:
        messages.success(request, _("已驳回 %(name)s 的实名认证申请") % {"name": name})
    return redirect("cadre:joins")


# --- transfers ----------------------------------------------------------------------------------


def _transfer_rows(user):
    rows = services.transfers_for(user).order_by("created_at", "id")[:100]
    return [{"t": t, "can_decide": scoping.covers(user, t.to_org)} for t in rows]


@cadre_required
def transfers(request):
    return render(
        request, "cadre/transfers.html", {"rows": _transfer_rows(request.user), "form_for": None, "errors": {}}
    )


@cadre_required
@require_POST
def transfer_decide(request, pk: int):
    approve = request.POST.get("decision") == "approve"
    reason = request.POST.get("reason", "")
    try:
        t = services.decide_transfer(request.user, pk, approve, reason, ip=client_ip(request))
    except DomainError as e:
        if e.status == 404:
            return render(request, "cadre/not_found.html", status=404)
        ctx = {"rows": _transfer_rows(request.user), "form_for": int(pk), "reason": reason, **error_context(e)}
        return render(request, "cadre/transfers.html", ctx, status=e.status)
    if approve:
        messages.success(request, _("已同意 %(name)s 转入 %(org)s") % {"name": t.member.name, "org": t.to_org.name})
    else:
        messages.success(request, _("已驳回 %(name)s 的转接申请") % {"name": t.member.name})
    return redirect("cadre:transfers")


# --- card verification --------------------------------------------------------------------------


def _token_from(text: str) -> str:
    """A scanner may hand over the whole link the QR encodes (…/c/verify/?t=TOKEN); take its token."""
    text = text.strip()
    if "t=" in text and ("/" in text or text.startswith("?")):
        found = parse_qs(urlsplit(text).query).get("t")
        if found:
            return found[0].strip()
    return text


@cadre_required
def verify(request):
    token = _token_from(request.POST.get("token") or request.GET.get("t") or "")
    ctx = {"token": token, "member": None, "errors": {}, "error": ""}
    status = 200
    if token:
        try:
            ctx["member"] = services.verify_card(request.user, token)
        except DomainError as e:
            ctx.update(error_context(e))
            status = e.status
    elif request.method == "POST":
        ctx["errors"] = {"token": _("请粘贴或扫描会员证二维码内容")}
    return render(request, "cadre/verify.html", ctx, status=status)
