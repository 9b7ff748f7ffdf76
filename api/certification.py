"""实名认证 over the API (API.md "Membership self-service"): name + ID → a code to the roster phone → done."""

from __future__ import annotations

from django.http import HttpRequest
from ninja import Router, Schema, Status

from accounts.services import user_for_token
from core.audit import client_ip
from members import certification

router = Router(tags=["members"])


class CertificationIn(Schema):
    name: str
    id_number: str
    code: str | None = None
    # The roster phone is dead: ask the roster row's union to approve instead (after a code was sent).
    request_review: bool = False


@router.post("/me/certification", response={200: dict, 202: dict})
def certify(request: HttpRequest, payload: CertificationIn):
    user, ip = request.auth, client_ip(request)
    if payload.request_review:
        certification.request_review(user, payload.name, payload.id_number, ip=ip)
        return Status(202, {"status": "review_pending"})
    if payload.code is None:
        result = certification.start(user, payload.name, payload.id_number, ip=ip)
        if isinstance(result, certification.CodeSent):
            return Status(202, {"status": "code_sent", "phone_masked": result.phone_masked})
    else:
        certification.complete(user, payload.name, payload.id_number, payload.code, ip=ip)
    return _me_now(request)


def _me_now(request: HttpRequest):
    """GET /me's body for whoever the caller's token now speaks for (the roster account, after a merge)."""
    from .api import me  # api.api mounts this router

    raw = request.headers.get("Authorization", "").partition(" ")[2].strip()
    request.auth = user_for_token(raw) or request.auth
    return me(request)
