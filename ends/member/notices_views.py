"""Member end notifications (/m/notices/): my notices newest first, unread marked; mark all read;
open one (marks it read, then goes to what it is about); the unread badge the home page loads."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from notifications.models import Notification
from notifications.services import notices

LIMIT = 100


@login_required
def notice_list(request):
    items = list(notices.recent(request.user, LIMIT))
    unread = sum(1 for n in items if n.read_at is None)
    return render(request, "member/notices.html", {"items": items, "unread": unread})


@login_required
@require_POST
def notices_read_all(request):
    notices.mark_read(request.user)
    return redirect("member:notices")


@login_required
def notice_open(request, pk: int):
    """Marks the notice read and follows its link (only links into this site; else back to the list)."""
    notice = Notification.objects.filter(user=request.user, pk=pk).first()
    if notice is None:
        return redirect("member:notices")
    notices.mark_read(request.user, [notice.pk])
    target = notice.url or ""
    if target and url_has_allowed_host_and_scheme(target, {request.get_host()}, require_https=request.is_secure()):
        return redirect(target)
    return redirect("member:notices")


@login_required
def notices_badge(request):
    """htmx: the unread count for the home page's entry (nothing when there is none)."""
    n = notices.unread_count(request.user)
    if not n:
        return HttpResponse("")
    return HttpResponse(format_html('<span class="m-badge" id="notices-badge">{}</span>', n if n < 100 else "99+"))
