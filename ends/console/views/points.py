"""Points: an org's budget (allocate down, mint at the top), grants to members, earning rules and
expiry, and who earned what. Every move of points goes through points.services."""

from __future__ import annotations

import datetime as dt

from django.db.models import OuterRef, Q, Subquery, Sum
from django.http import HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.http import require_POST

from core import audit, idcard, phones, pii, spreadsheets
from core.errors import DomainError, Invalid
from members.importing import ImportFileError
from members.models import Member
from orgs import scoping
from orgs.models import Org
from points.models import Account, AccountKind, EarnAction, EarningRule, Entry, Movement, MovementKind
from points.services import budgets, earning, expiry, ledger

from ..common import breadcrumbs, cadre_required, current_org, error_dict, page, page_query, paginate

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CHILDREN_SHOWN = 100
SEARCH_LIMIT = 20
EXPORT_LIMIT = 100_000
PHONE_HEADERS = {"手机号", "手机号码", "手机", "联系电话"}
ID_HEADERS = {"身份证号", "身份证号码", "身份证"}


def _int_or_raw(value):
    """A typed number as int; anything else is passed on as is, so the service names the field."""
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return value


def budget_of(org: Org) -> int:
    """The org's budget balance, read without creating an account on a GET."""
    return Account.objects.filter(kind=AccountKind.BUDGET, org=org).values_list("balance", flat=True).first() or 0


def _budget_errors(e: DomainError, balance: int) -> dict:
    errors = error_dict(e)
    if e.code == ledger.PointsErrors.INSUFFICIENT_BUDGET:
        errors["amount"] = _("超出本组织积分预算（当前余额 %(n)s）") % {"n": f"{balance:,}"}
        errors.pop("alert", None)
    return errors


# --- 积分预算 -----------------------------------------------------------------------------------


def _children(org: Org):
    budget = Account.objects.filter(kind=AccountKind.BUDGET, org=OuterRef("pk")).values("balance")[:1]
    qs = Org.objects.filter(parent=org).annotate(budget=Subquery(budget)).order_by("path")
    return list(qs[:CHILDREN_SHOWN]), qs.count()


def _movements(request, org: Org):
    kind = request.GET.get("kind", "")
    qs = Movement.objects.filter(Q(org=org) | Q(source=f"org:{org.pk}")).select_related("actor", "org")
    if kind in MovementKind.values:
        qs = qs.filter(kind=kind)
    pager = paginate(request, qs.order_by("-id"), 30)
    rows = list(pager.object_list)
    account = Account.objects.filter(kind=AccountKind.BUDGET, org=org).first()
    ids = [m.pk for m in rows]
    deltas = {}
    if account and ids:
        deltas = dict(
            Entry.objects.filter(movement_id__in=ids, account=account)
            .values("movement_id")
            .annotate(s=Sum("amount"))
            .values_list("movement_id", "s")
        )
    totals = dict(
        Entry.objects.filter(movement_id__in=ids, amount__gt=0)
        .values("movement_id")
        .annotate(s=Sum("amount"))
        .values_list("movement_id", "s")
    )
    targets = {m.pk: int(m.source[4:]) for m in rows if m.source.startswith("org:") and m.source[4:].isdigit()}
    names = dict(Org.objects.filter(pk__in=set(targets.values())).values_list("pk", "name"))
    for m in rows:
        m.delta = deltas.get(m.pk, 0)
        m.total = totals.get(m.pk, 0)
        m.to_org_name = names.get(targets.get(m.pk))
    pager.object_list = rows
    return pager, kind


def _points_page(request, org: Org, *, errors=None, form="", values=None, status=200):
    user = request.user
    children, child_count = _children(org)
    movements, kind = _movements(request, org)
    return page(
        request,
        "console/points.html",
        {
            "nav": "points",
            "org": org,
            "crumbs": breadcrumbs(user, org),
            "balance": budget_of(org),
            "children": children,
            "child_count": child_count,
            "children_cut": child_count > len(children),
            "movements": movements,
            "kind": kind,
            "kinds": MovementKind.choices,
            "is_admin": scoping.covers(user, org, admin=True),
            "can_mint": org.parent_id is None and scoping.covers(user, org, admin=True),
            "errors": errors or {},
            "form": form,
            "values": values or {},
            "chosen_to": (values or {}).get("to_org") or request.GET.get("to", ""),
            "query": page_query(request),
        },
        status=status,
    )


@cadre_required
def budget_page(request):
    return _points_page(request, current_org(request))


@cadre_required
@require_POST
def allocate(request):
    user = request.user
    org = current_org(request)
    values = request.POST
    try:
        raw = values.get("to_org", "").strip()
        if not raw:
            raise Invalid("to_org_required", _("请选择下拨到的组织"), fields={"to_org": _("请选择下级组织")})
        to_org = scoping.org_for_cadre(user, raw) if raw.isdigit() else None
        if to_org is None:
            raise Invalid("to_org_required", _("请选择下拨到的组织"), fields={"to_org": _("请选择下级组织")})
        budgets.allocate(
            user,
            org,
            to_org,
            _int_or_raw(values.get("amount", "")),
            values.get("reason", "").strip(),
            ip=audit.client_ip(request),
        )
    except DomainError as e:
        errors = _budget_errors(e, budget_of(org))
        if e.status == 404:
            errors = {"to_org": e.message}
        return _points_page(request, org, errors=errors, form="allocate", values=values, status=e.status)
    return redirect(f"{reverse('console:points')}?org={org.pk}&done=allocate")


@cadre_required
@require_POST
def mint(request):
    user = request.user
    org = current_org(request)
    values = request.POST
    try:
        budgets.mint(
            user,
            org,
            _int_or_raw(values.get("amount", "")),
            values.get("reason", "").strip(),
            ip=audit.client_ip(request),
        )
    except DomainError as e:
        return _points_page(request, org, errors=error_dict(e), form="mint", values=values, status=e.status)
    return redirect(f"{reverse('console:points')}?org={org.pk}&done=mint")


# --- 积分发放 -----------------------------------------------------------------------------------


def _search(request, org: Org):
    q = request.GET.get("q", "").strip()
    qs = Member.objects.filter(org__path__startswith=org.path).select_related("org")
    if q:
        qs = qs.filter(name__icontains=q)
    return q, paginate(request, qs.order_by("name", "id"), SEARCH_LIMIT)


def _grant_page(request, org, *, errors=None, values=None, preview=None, status=200, **extra):
    user = request.user
    q, found = _search(request, org)
    ctx = {
        "nav": "points_grant",
        "org": org,
        "crumbs": breadcrumbs(user, org),
        "balance": budget_of(org),
        "is_admin": scoping.covers(user, org, admin=True),
        "q": q,
        "found": found,
        "query": page_query(request),
        "errors": errors or {},
        "values": values or {},
        "preview": preview,
        "done": request.GET.get("done"),
        "done_n": request.GET.get("n"),
    }
    ctx.update(extra)
    return page(request, "console/points_grant.html", ctx, status=status)


@cadre_required
def grant_page(request):
    return _grant_page(request, current_org(request))


def _ids(raw_list: list[str]) -> list[str]:
    out: list[str] = []
    for raw in raw_list:
        out.extend(p.strip() for p in str(raw).split(",") if p.strip())
    return out


@cadre_required
@require_POST
def grant(request):
    """Grant to the checked members, or to the list confirmed from an upload's preview."""
    user = request.user
    org = current_org(request)
    values = request.POST
    ids = _ids(values.getlist("member_ids"))
    try:
        n = budgets.grant(
            user,
            org,
            ids,
            _int_or_raw(values.get("amount", "")),
            values.get("reason", ""),
            ip=audit.client_ip(request),
        )
    except DomainError as e:
        errors = _budget_errors(e, budget_of(org))
        if "member_ids" in errors:
            errors["member_ids"] = e.message  # the sentence, with the unknown ids, not just the short reason
        preview = None
        if values.get("from_list"):
            preview = _preview_from_ids(org, ids, values.get("unmatched", ""))
        return _grant_page(
            request, org, errors=errors, values=values, preview=preview, checked=set(ids), status=e.status
        )
    return redirect(f"{reverse('console:points_grant')}?org={org.pk}&done=grant&n={n}")


def _column(header: list) -> tuple[int, str] | None:
    for i, cell in enumerate(header):
        key = str(cell or "").replace(" ", "").replace("*", "").strip()
        if key in PHONE_HEADERS:
            return i, "phone"
    for i, cell in enumerate(header):
        key = str(cell or "").replace(" ", "").replace("*", "").strip()
        if key in ID_HEADERS:
            return i, "id_number"
    return None


def match_list(org: Org, rows: list[list]) -> tuple[list[Member], list[dict], str]:
    """Members of the org's subtree named by the sheet's 手机号 (or 身份证号) column, and the rows that
    named none (row numbers as Excel shows them)."""
    if not rows:
        raise ImportFileError("empty_file", _("表格是空的"), fields={"file": _("表格是空的")})
    col = _column(rows[0])
    if col is None:
        raise ImportFileError(
            "missing_column", _("表格第一行需要有“手机号”或“身份证号”列"), fields={"file": _("缺少手机号或身份证号列")}
        )
    index, kind = col
    unmatched: list[dict] = []
    wanted: dict[str, int] = {}  # blind index → first row number
    for number, row in enumerate(rows[1:], start=2):
        raw = row[index] if index < len(row) else None
        if raw is None or str(raw).strip() == "":
            if any(str(c or "").strip() for c in row):
                unmatched.append({"row": number, "reason": _("未填写")})
            continue
        try:
            if kind == "phone":
                key = pii.phone_index(phones.validate(raw))
            else:
                if isinstance(raw, float):
                    raise idcard.IdNumberError("number", _("身份证号被Excel存成了数字"))
                key = pii.id_number_index(idcard.validate(raw))
        except (phones.PhoneError, idcard.IdNumberError) as e:
            unmatched.append({"row": number, "reason": e.message})
            continue
        if key in wanted:
            unmatched.append({"row": number, "reason": _("与第%(row)s行重复") % {"row": wanted[key]}})
            continue
        wanted[key] = number
    field = "phone_hash" if kind == "phone" else "id_number_hash"
    found: dict[str, Member] = {}
    keys = list(wanted)
    for i in range(0, len(keys), 500):
        for m in Member.objects.filter(
            **{f"{field}__in": keys[i : i + 500]}, org__path__startswith=org.path
        ).select_related("org"):
            found.setdefault(getattr(m, field), m)
    matched: list[Member] = []
    for key, number in wanted.items():
        m = found.get(key)
        if m is None:
            unmatched.append({"row": number, "reason": _("不是本组织（含下级）的会员")})
        else:
            m.row = number
            matched.append(m)
    unmatched.sort(key=lambda u: u["row"])
    matched.sort(key=lambda m: m.row)
    return matched, unmatched, kind


def _preview_from_ids(org, ids, unmatched_raw: str):
    """Rebuild a preview after a failed confirm (the list came back as ids)."""
    members = list(
        Member.objects.filter(user_id__in=[i for i in ids if i.isdigit()], org__path__startswith=org.path)
        .select_related("org")
        .order_by("name")
    )
    unmatched = []
    for part in unmatched_raw.split(";"):
        num, _sep, reason = part.partition(":")
        if num.isdigit():
            unmatched.append({"row": int(num), "reason": reason})
    return {"matched": members, "unmatched": unmatched, "ids": ",".join(ids), "unmatched_raw": unmatched_raw}


@cadre_required
@require_POST
def grant_preview(request):
    org = current_org(request)
    values = request.POST
    upload = request.FILES.get("file")
    if upload is None:
        return _grant_page(request, org, errors={"file": _("请选择要上传的 .xlsx 文件")}, values=values, status=422)
    try:
        matched, unmatched, kind = match_list(org, spreadsheets.read_rows(upload, upload.name))
    except spreadsheets.SpreadsheetError as e:  # ImportFileError (from match_list) is one too
        errors = error_dict(e)
        errors.setdefault("file", e.message)
        errors.pop("alert", None)
        return _grant_page(request, org, errors=errors, values=values, status=e.status)
    preview = {
        "matched": matched,
        "unmatched": unmatched,
        "kind": kind,
        "file_name": upload.name,
        "ids": ",".join(str(m.user_id) for m in matched),
        "unmatched_raw": ";".join(f"{u['row']}:{u['reason']}" for u in unmatched),
    }
    return _grant_page(request, org, values=values, preview=preview)


# --- 积分规则 -----------------------------------------------------------------------------------


def _ancestor_chain(org: Org) -> list[Org]:
    return [*Org.objects.get_ancestors(org), org]


def _rules_page(request, org: Org, *, errors=None, form="", values=None, status=200):
    user = request.user
    chain = _ancestor_chain(org)
    depth = {o.pk: i for i, o in enumerate(chain)}
    rules = list(EarningRule.objects.filter(org__in=chain).select_related("org"))
    rules.sort(key=lambda r: (list(EarnAction.values).index(r.action), -depth[r.org_id]))
    effective = {a: earning.rule_for(org, a) for a in EarnAction.values}
    rows = []
    for r in rules:
        eff = effective.get(r.action)
        r.effective = eff is not None and eff.pk == r.pk
        r.own = r.org_id == org.pk
        r.visible_org = scoping.covers(user, r.org)
        if r.effective:
            r.state = "effective"
        elif not r.active:
            r.state = "inactive"
        else:
            r.state = "overridden"
        rows.append(r)
    missing = [(a, label) for a, label in EarnAction.choices if effective.get(a) is None]
    editing = request.GET.get("action", "")
    own = {r.action: r for r in rules if r.own}
    if not values:
        base = own.get(editing) or effective.get(editing)
        values = {"action": editing or EarnAction.CHECKIN}
        if base is not None:
            values.update(
                amount=base.amount,
                daily_cap=base.daily_cap,
                total_cap=base.total_cap or "",
                active="1" if base.active else "",
            )
        else:
            values.update(daily_cap=1, active="1")
    policy = expiry.policy_for(org)
    today = timezone.localdate()
    if form == "expiry":
        ex = {k: str(request.POST.get(k, "")) for k in ("month", "day", "notice_days")}
    else:
        base = policy
        ex = {
            "month": str(base.month if base else 12),
            "day": str(base.day if base else 31),
            "notice_days": str(base.notice_days if base else 30),
        }
    return page(
        request,
        "console/points_rules.html",
        {
            "nav": "points_rules",
            "org": org,
            "crumbs": breadcrumbs(user, org),
            "rules": rows,
            "missing": missing,
            "actions": EarnAction.choices,
            "own_actions": set(own),
            "is_admin": scoping.covers(user, org, admin=True),
            "policy": policy,
            "next_expiry": expiry.next_expiry(policy, today) if policy else None,
            "months": range(1, 13),
            "ex": ex,
            "errors": errors or {},
            "form": form,
            "values": values,
        },
        status=status,
    )


@cadre_required
def rules_page(request):
    return _rules_page(request, current_org(request))


def _optional_int(raw: str, field: str):
    raw = (raw or "").strip()
    if not raw:
        return None
    try:
        return int(raw)
    except ValueError:
        raise Invalid("invalid_value", _("应为正整数"), fields={field: _("应为正整数")}) from None


@cadre_required
@require_POST
def rule_save(request):
    user = request.user
    org = current_org(request)
    values = request.POST
    try:
        daily = _optional_int(values.get("daily_cap", ""), "daily_cap")
        budget_total = _optional_int(values.get("total_cap", ""), "total_cap")
        earning.set_rule(
            user,
            org,
            values.get("action", ""),
            _int_or_raw(values.get("amount", "")),
            daily if daily is not None else 1,
            budget_total,
            bool(values.get("active")),
            ip=audit.client_ip(request),
        )
    except DomainError as e:
        return _rules_page(request, org, errors=error_dict(e), form="rule", values=values, status=e.status)
    return redirect(f"{reverse('console:points_rules')}?org={org.pk}&done=rule")


@cadre_required
@require_POST
def expiry_save(request):
    user = request.user
    org = current_org(request)
    values = request.POST
    try:
        notice = _optional_int(values.get("notice_days", ""), "notice_days")
        if notice is None or not 0 <= notice <= 365:
            raise Invalid("invalid_value", _("提前提醒天数应为0到365"), fields={"notice_days": _("应为0到365")})
        expiry.set_policy(
            user, org, values.get("month", ""), values.get("day", ""), notice, ip=audit.client_ip(request)
        )
    except DomainError as e:
        return _rules_page(request, org, errors=error_dict(e), form="expiry", values=values, status=e.status)
    return redirect(f"{reverse('console:points_rules')}?org={org.pk}&done=expiry")


# --- 积分明细 -----------------------------------------------------------------------------------


def _date(raw: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat((raw or "").strip())
    except ValueError:
        return None


def _earnings(request, org: Org):
    kind = request.GET.get("kind", "")
    start, end = _date(request.GET.get("from", "")), _date(request.GET.get("to", ""))
    qs = Entry.objects.filter(account__kind=AccountKind.MEMBER, account__user__member__org__path__startswith=org.path)
    if kind in MovementKind.values:
        qs = qs.filter(movement__kind=kind)
    tz = timezone.get_current_timezone()
    if start:
        qs = qs.filter(created_at__gte=dt.datetime.combine(start, dt.time.min, tzinfo=tz))
    if end:
        qs = qs.filter(created_at__lt=dt.datetime.combine(end + dt.timedelta(days=1), dt.time.min, tzinfo=tz))
    filters = {"kind": kind, "from": start.isoformat() if start else "", "to": end.isoformat() if end else ""}
    return qs, filters


@cadre_required
def earnings_page(request):
    user = request.user
    org = current_org(request)
    qs, filters = _earnings(request, org)
    rows = paginate(
        request,
        qs.select_related("movement", "account__user__member__org").order_by("-id"),
    )
    sums = qs.aggregate(plus=Sum("amount", filter=Q(amount__gt=0)), minus=Sum("amount", filter=Q(amount__lt=0)))
    export_q = request.GET.copy()
    export_q.pop("page", None)
    export_q["org"] = org.pk
    return page(
        request,
        "console/points_earnings.html",
        {
            "nav": "points_earnings",
            "org": org,
            "crumbs": breadcrumbs(user, org),
            "rows": rows,
            "filters": filters,
            "kinds": MovementKind.choices,
            "plus": sums["plus"] or 0,
            "minus": -(sums["minus"] or 0),
            "query": page_query(request),
            "export_query": export_q.urlencode(),
        },
    )


@cadre_required
def earnings_export(request):
    user = request.user
    org = current_org(request)
    qs, filters = _earnings(request, org)
    qs = qs.select_related("movement", "account__user__member__org").order_by("-id")[:EXPORT_LIMIT]
    n = 0

    def rows():
        nonlocal n
        yield [_("姓名"), _("手机号"), _("所在组织"), _("类型"), _("原因"), _("积分"), _("时间")]
        for e in qs.iterator(chunk_size=2000):
            m = e.account.user.member
            yield [
                m.name,
                m.phone_masked,
                m.org.name,
                e.movement.get_kind_display(),
                e.movement.reason,
                e.amount,
                timezone.localtime(e.created_at).strftime("%Y-%m-%d %H:%M:%S"),
            ]
            n += 1

    data = spreadsheets.xlsx_bytes(rows(), title=_("积分明细"))
    audit.record(user, "points.export", org=org, summary=f"{n} rows {filters}", ip=audit.client_ip(request))
    response = HttpResponse(data, content_type=XLSX)
    response["Content-Disposition"] = f'attachment; filename="points-{org.pk}-{timezone.localdate():%Y%m%d}.xlsx"'
    return response
