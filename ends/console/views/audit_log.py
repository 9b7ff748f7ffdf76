"""The audit log of the cadre's subtrees, newest first."""

from __future__ import annotations

from django.db.models import Q
from django.utils.translation import gettext_lazy as _

from core.models import AuditLog
from orgs import scoping

from ..common import cadre_required, page, page_query, paginate

ACTION_LABELS = {
    "org.create": _("新建组织"),
    "org.rename": _("修改组织名称"),
    "org.move": _("移动组织"),
    "org.deactivate": _("停用组织"),
    "org.activate": _("恢复组织"),
    "cadre.appoint": _("任命干部"),
    "cadre.revoke": _("撤销干部"),
    "pii.view": _("查看完整信息"),
    "import.start": _("开始导入名册"),
    "import.done": _("导入名册"),
    "import.dry_run": _("校验名册"),
    "join.apply": _("申请入会"),
    "join.approve": _("通过入会申请"),
    "join.reject": _("驳回入会申请"),
    "transfer.request": _("申请转接"),
    "transfer.approve": _("通过转接"),
    "transfer.reject": _("驳回转接"),
    "member.certify": _("实名认证"),
    "card.verify": _("核验会员证"),
    "points.mint": _("发行积分预算"),
    "points.allocate": _("下拨积分预算"),
    "points.grant": _("发放积分"),
    "points.rule": _("设置积分规则"),
    "points.expiry_policy": _("设置积分有效期"),
    "points.export": _("导出积分明细"),
    "reward.create": _("上架商品"),
    "reward.cancel": _("取消兑换"),
    "reward.pickup": _("核销兑换"),
}


@cadre_required
def audit_list(request):
    user = request.user
    qs = AuditLog.objects.filter(scoping.path_q(user, "org_path")).select_related("actor")
    q = request.GET.get("q", "").strip()
    if q:
        qs = qs.filter(Q(action__icontains=q) | Q(summary__icontains=q))
    rows = paginate(request, qs.order_by("-at", "-id"))
    for r in rows.object_list:
        r.label = ACTION_LABELS.get(r.action, "")
    return page(request, "console/audit.html", {"nav": "audit", "rows": rows, "q": q, "query": page_query(request)})
