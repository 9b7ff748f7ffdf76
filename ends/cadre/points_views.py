"""Cadre end points pages: 兑换核销 (/c/pickup/) and 发放积分 (/c/grant/).

The rules (scope, one-time pickup, budgets, admin-only grants) are rewards.services.mall's and
points.services.budgets'; these views gather the form and show the answers.
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import parse_qs, urlsplit

from django.contrib import messages
from django.db import IntegrityError, transaction
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from accounts.models import User
from core import pii
from core.audit import client_ip
from core.errors import DomainError
from core.models import IdempotencyRecord
from ends.member.web import error_context
from members.models import Member
from orgs import scoping
from orgs.models import Org
from points.services import budgets, ledger
from rewards.services import codes
from rewards.services import pickup as pickup_service

from .views import cadre_required, pickup_allowed

MEMBER_RESULTS = 30
PHONE_RE = re.compile(r"^1\d{10}$")
NONCES = "grant_nonces"
GRANT_FORM = "page cadre:grant"  # the nonces' operation in core.models.IdempotencyRecord


def _submitted_already() -> str:
    return _("这张表单已经提交过了，请查看发放结果后再操作")


# --- 兑换核销 -------------------------------------------------------------------------------------


def _code_from(text: str) -> str:
    """A scanner may hand over the whole link the QR encodes (…/c/pickup/?code=CODE); take its code."""
    text = (text or "").strip()
    if "code=" in text:
        found = parse_qs(urlsplit(text).query).get("code")
        if found:
            text = found[0]
    return codes.normalize(text)[:40]


def mask_name(name: str) -> str:
    name = name or ""
    if len(name) <= 1:
        return name
    if len(name) == 2:
        return name[0] + "*"
    return name[0] + "*" * (len(name) - 2) + name[-1]


def _who(p: pickup_service.Pickup) -> dict:
    member = getattr(p.user, "member", None)
    name = member.name if member is not None else p.user.name
    return {"name": mask_name(name), "phone": p.user.phone_masked, "org": member.org.name if member else ""}


@pickup_allowed
def pickup(request):
    """One box for mall redemption codes and lottery prize codes (rewards.services.pickup routes them)."""
    code = _code_from(request.POST.get("code") or request.GET.get("code") or "")
    ctx = {"code": code, "r": None, "done": None, "errors": {}, "error": "", "error_code": ""}
    ctx["is_cadre"] = scoping.is_cadre(request.user)  # a 核销员 gets this page alone, without the cadre tabs
    status = 200
    if request.method == "POST" and request.POST.get("confirm") and code:
        try:
            ctx["done"] = pickup_service.confirm(request.user, code, ip=client_ip(request))
        except DomainError as e:
            ctx.update(error_context(e))
            status = e.status
        else:
            ctx["who"] = _who(ctx["done"])
    elif code:
        try:
            ctx["r"] = pickup_service.find(request.user, code)
            ctx["who"] = _who(ctx["r"])
        except DomainError as e:
            ctx.update(error_context(e))
            status = e.status
    elif request.method == "POST":
        ctx["errors"] = {"code": _("请输入或扫描兑换码")}
    if ctx["error_code"] in ("already_picked_up", "cancelled") and code:
        ctx["r"] = pickup_service.find(request.user, code)
        ctx["who"] = _who(ctx["r"])
    return render(request, "cadre/pickup.html", ctx, status=status)


# --- 发放积分 -------------------------------------------------------------------------------------


def _grant_orgs(user) -> list[Org]:
    """The orgs the cadre holds a role on (the roots of their scope)."""
    ids = [org_id for _p, _r, org_id in scoping.cadre_roles(user)]
    return list(Org.objects.filter(pk__in=ids, is_active=True).order_by("path"))


def _chosen_org(user, raw, orgs: list[Org]) -> Org | None:
    try:
        org_id = int(raw)
    except (TypeError, ValueError):
        return orgs[0] if orgs else None
    for o in orgs:
        if o.pk == org_id:
            return o
    return None


def _search_members(org: Org, q: str):
    q = (q or "").strip()[:30]
    qs = Member.objects.filter(org__path__startswith=org.path).select_related("org", "user")
    if q:
        qs = qs.filter(name__icontains=q)
    return qs.order_by("name", "id")[:MEMBER_RESULTS]


def _phones(text: str) -> tuple[list[str], list[str]]:
    """(well-formed phones, malformed tokens) from a pasted list (one a line, or commas/spaces)."""
    good, bad = [], []
    for token in re.split(r"[\s,，;；、]+", text or ""):
        token = token.strip().replace("-", "")
        if not token:
            continue
        (good if PHONE_RE.match(token) else bad).append(token)
    return list(dict.fromkeys(good)), bad


def _ids_for_phones(org: Org, phones: list[str]) -> tuple[list[int], list[str]]:
    """Member user ids in the org subtree for the phones (login phones), and the phones not found."""
    by_hash = {pii.phone_index(p): p for p in phones}
    users = dict(User.objects.filter(phone_hash__in=list(by_hash)).values_list("phone_hash", "pk"))
    in_scope = set(
        Member.objects.filter(user_id__in=list(users.values()), org__path__startswith=org.path).values_list(
            "user_id", flat=True
        )
    )
    ids, missing = [], []
    for h, p in by_hash.items():
        uid = users.get(h)
        if uid in in_scope:
            ids.append(uid)
        else:
            missing.append(p)
    return ids, missing


def _new_nonce(request) -> str:
    nonce = secrets.token_urlsafe(12)
    request.session[NONCES] = ([*request.session.get(NONCES, [])] + [nonce])[-20:]
    return nonce


class _NonceSpent(Exception):
    pass


def _issued(request, nonce: str) -> bool:
    return bool(nonce) and nonce in request.session.get(NONCES, [])


def _spend_nonce(user, nonce: str) -> None:
    """One grant per form: the nonce becomes a row under the idempotency table's UNIQUE (user,
    operation, key), written in the grant's transaction. The session alone could not say so: two
    parallel posts both read it before either wrote it back. Raises _NonceSpent."""
    try:
        with transaction.atomic():
            IdempotencyRecord.objects.create(
                user=user, operation=GRANT_FORM, key=nonce[:200], request_hash="", done=True, status=201
            )
    except IntegrityError:
        raise _NonceSpent() from None


@cadre_required
def grant(request):
    user = request.user
    data = request.POST if request.method == "POST" else request.GET
    orgs = _grant_orgs(user)
    org = _chosen_org(user, data.get("org"), orgs)
    foreign = org is None and bool(orgs)
    if foreign:  # not one of my orgs: show my first, never act on another
        org = orgs[0]
    ctx = {
        "orgs": orgs,
        "org": org,
        "errors": {},
        "error": "",
        "q": data.get("q", "").strip(),
        "phones": data.get("phones", ""),
        "amount": data.get("amount", "").strip(),
        "reason": data.get("reason", "").strip(),
        "picked": [],
    }
    status = 200
    if foreign and request.method == "POST":
        ctx["error"], status = _("未找到该组织"), 404
    elif org is not None and request.method == "POST":
        picked_ids = [i for i in request.POST.getlist("member_ids") if i.isdigit()]
        ctx["picked"] = list(
            Member.objects.filter(user_id__in=picked_ids, org__path__startswith=org.path).select_related("org")
        )
    if org is not None and request.method == "POST" and "search" not in request.POST and not foreign:
        phones, bad = _phones(ctx["phones"])
        phone_ids, missing = _ids_for_phones(org, phones)
        errors = {}
        if bad:
            errors["phones"] = _("这些不是手机号：%(list)s") % {"list": "、".join(bad[:10])}
        elif missing:
            errors["phones"] = _("这些手机号不是本组织的会员：%(list)s") % {"list": "、".join(missing[:10])}
        try:
            amount = int(ctx["amount"])
        except ValueError:
            amount = ctx["amount"]  # budgets.grant says why
        ids = list(dict.fromkeys([m.user_id for m in ctx["picked"]] + phone_ids))
        if errors:
            ctx["errors"] = errors
            status = 422
        elif not _issued(request, nonce := request.POST.get("nonce", "")):
            ctx["error"], status = _submitted_already(), 409
        else:
            try:
                with transaction.atomic():
                    _spend_nonce(user, nonce)
                    n = budgets.grant(user, org, ids, amount, ctx["reason"], ip=client_ip(request))
            except _NonceSpent:
                ctx["error"], status = _submitted_already(), 409
            except DomainError as e:
                ctx.update(error_context(e))
                status = e.status
            else:
                request.session[NONCES] = [x for x in request.session.get(NONCES, []) if x != nonce]
                messages.success(request, _("已向 %(n)s 名会员各发放 %(amount)s 积分") % {"n": n, "amount": amount})
                return redirect(reverse("cadre:grant") + "?" + urlencode({"org": org.pk}))
    if org is not None:
        ctx["budget"] = ledger.budget_account(org).balance
        ctx["can_grant"] = scoping.covers(user, org, admin=True)
        picked = {m.user_id for m in ctx["picked"]}
        ctx["results"] = [m for m in _search_members(org, ctx["q"]) if m.user_id not in picked] if ctx["q"] else []
    ctx["nonce"] = _new_nonce(request)
    return render(request, "cadre/grant.html", ctx, status=status)


@cadre_required
def grant_members(request):
    """htmx: members of the chosen org's subtree by name, as checkboxes."""
    orgs = _grant_orgs(request.user)
    org = _chosen_org(request.user, request.GET.get("org"), orgs)
    q = request.GET.get("q", "").strip()
    results = _search_members(org, q) if org is not None and q else []
    return render(request, "cadre/_grant_members.html", {"results": results, "q": q})
