"""The public REST API v1 (API.md). Thin: parse, call one service or selector, shape the answer."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from ninja import File, NinjaAPI, Query, Schema, Status
from ninja.files import UploadedFile

from accounts import services as accounts
from core.audit import client_ip
from core.errors import Invalid, NotFound
from members import jobs
from members import services as members
from orgs import scoping
from orgs import services as orgs
from orgs.models import Org

from . import errors
from .activities import router as activities_router
from .auth import TokenAuth
from .certification import router as certification_router
from .clubs import router as clubs_router
from .elections import router as elections_router
from .live import router as live_router
from .lottery import router as lottery_router
from .pagination import page_of
from .points import router as points_router
from .schemas import (
    HealthOut,
    MemberList,
    MeOut,
    OrgIn,
    OrgList,
    OrgOut,
    TokenIn,
    TokenOut,
)
from .votes import router as votes_router

api = NinjaAPI(
    title="UnionHome API",
    version="1",
    description="网上职工之家 REST API v1. The contract is ../shared/design/API.md.",
    auth=TokenAuth(),
    urls_namespace="api",
)
errors.install(api)


@api.get("/health", auth=None, response=HealthOut, tags=["system"])
def health(request: HttpRequest):
    """Liveness probe; touches no database."""
    return {"status": "ok"}


# --- accounts ---------------------------------------------------------------------------------


@api.post("/auth/token", auth=None, response=TokenOut, tags=["accounts"])
def token(request: HttpRequest, payload: TokenIn):
    user = accounts.login_with_password(request, payload.phone, payload.password, client_ip(request))
    raw, expires = accounts.issue_token(user)
    return {"token": raw, "expires_at": expires.isoformat()}


@api.post("/auth/token/revoke", response={204: None}, tags=["accounts"])
def token_revoke(request: HttpRequest):
    """Ends the bearer token this request was made with, at once; the person's other tokens stay."""
    accounts.revoke_token(request.bearer_token)
    return Status(204, None)


@api.get("/me", response=MeOut, tags=["accounts"])
def me(request: HttpRequest):
    user = request.auth
    ms = user.membership  # loaded with the token (accounts.services.user_for_token)
    body = {
        "id": user.pk,
        "name": user.name,
        "phone_masked": user.phone_masked,
        "certified": ms.certified,
        "org": {"id": ms.org_id, "name": ms.org_name} if ms.org_id else None,
        "roles": [{"org_id": org_id, "role": role} for _, role, org_id in scoping.cadre_roles(user)],
        "points_balance": user.points_balance,
    }
    # The most called operation: built to MeOut's shape by hand (tests hold it to the schema), so
    # the answer skips a second validation pass.
    return JsonResponse(body, json_dumps_params={"ensure_ascii": False})


# --- orgs -------------------------------------------------------------------------------------


def _org_out(org: Org) -> dict:
    return {"id": org.pk, "name": org.name, "kind": org.kind, "parent_id": org.parent_id, "is_active": org.is_active}


def _org(org_id: int) -> Org:
    org = Org.objects.filter(pk=org_id).first()
    if org is None:
        raise NotFound(_("未找到该组织"))
    return org


class Paging(Schema):
    page: int = 1
    page_size: int = 50


@api.get("/orgs/{int:org_id}", response=OrgOut, tags=["orgs"])
def org_detail(request: HttpRequest, org_id: int):
    return _org_out(_org(org_id))


@api.get("/orgs/{int:org_id}/children", response=OrgList, tags=["orgs"])
def org_children(request: HttpRequest, org_id: int, paging: Query[Paging]):
    org = _org(org_id)
    items, count = page_of(Org.objects.filter(parent=org).order_by("path"), paging.page, paging.page_size)
    return {"items": [_org_out(o) for o in items], "count": count}


@api.post("/orgs", response={201: OrgOut}, tags=["orgs"])
def org_create(request: HttpRequest, payload: OrgIn):
    parent = scoping.org_for_cadre(request.auth, payload.parent_id)
    org = orgs.create_org(request.auth, parent, payload.name, payload.kind, ip=client_ip(request))
    return Status(201, _org_out(org))


class MemberFilter(Paging):
    direct: bool = False


@api.get("/orgs/{int:org_id}/members", response=MemberList, tags=["members"])
def org_members(request: HttpRequest, org_id: int, filters: Query[MemberFilter]):
    org = scoping.org_for_cadre(request.auth, org_id)
    qs = members.members_for(request.auth, org, direct=filters.direct).order_by("id")
    items, count = page_of(qs, filters.page, filters.page_size)
    return {
        "items": [
            {
                "id": m.user_id,
                "name": m.name,
                "phone_masked": m.phone_masked,
                "id_number_masked": m.id_number_masked,
                "certified": m.certified,
                "org_id": m.org_id,
            }
            for m in items
        ],
        "count": count,
    }


class ImportQuery(Schema):
    dry_run: bool = False


@api.post("/orgs/{int:org_id}/members/import", response={200: dict, 202: dict}, tags=["members"])
def org_members_import(request: HttpRequest, org_id: int, query: Query[ImportQuery], file: File[UploadedFile] = None):
    org = scoping.org_for_cadre(request.auth, org_id, admin=True)
    if file is None:
        raise Invalid("file_required", _("请上传名册文件（multipart 字段 file）"), fields={"file": _("必填")})
    job = jobs.start_import(
        request.auth, org, file, file.name or "", file.size, dry_run=query.dry_run, ip=client_ip(request)
    )
    payload = jobs.job_payload(job)
    if job.status == "done":
        return Status(200, {k: payload[k] for k in ("created", "updated", "unchanged", "errors")})
    return Status(202, {"job_id": job.pk, "status_url": f"/api/v1/imports/{job.pk}"})


@api.get("/imports/{int:job_id}", response=dict, tags=["members"])
def import_status(request: HttpRequest, job_id: int):
    return jobs.job_payload(jobs.job_for(request.auth, job_id))


@api.post("/imports/{int:job_id}/cancel", response=dict, tags=["members"])
def import_cancel(request: HttpRequest, job_id: int):
    """Stop a queued or running import and delete its upload; 409 `import_finished` once it ended."""
    return jobs.job_payload(jobs.cancel_import(request.auth, job_id, ip=client_ip(request)))


api.add_router("", activities_router)
api.add_router("", votes_router)
api.add_router("", points_router)
api.add_router("", lottery_router)
api.add_router("", elections_router)
api.add_router("", clubs_router)
api.add_router("", live_router)
api.add_router("", certification_router)


# Django matches URL patterns in order, one regex each: the writes that come in rushes are
# placed right after the health probe instead of after every operation registered before them.
_RUSH_ROUTES = (
    "polls/<int:poll_id>/ballots",
    "activities/<int:activity_id>/signups",
    "rewards/<int:reward_id>/redemptions",
)


def urls() -> tuple[list, str, str]:
    """`api.urls`, with the rush operations matched first after /health."""
    patterns, app_name, namespace = api.urls
    rush = [p for p in patterns if str(p.pattern) in _RUSH_ROUTES]
    rest = [p for p in patterns if str(p.pattern) not in _RUSH_ROUTES]
    after = next(i for i, p in enumerate(rest) if str(p.pattern) == "health") + 1
    return [*rest[:after], *rush, *rest[after:]], app_name, namespace


def not_found_view(request: HttpRequest, *args, **kwargs) -> HttpResponse:
    return errors.error_response(404, "not_found", _("没有这个API地址"))
