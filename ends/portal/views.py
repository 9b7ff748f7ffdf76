import re

from django.conf import settings
from django.core.cache import cache
from django.http import Http404
from django.shortcuts import render

from accounts.models import SmsOutbox, User
from members.models import Member
from orgs.models import Org

_CODE = re.compile(r"\d{6}")


def _stats() -> dict[str, int]:
    return {
        "orgs": Org.objects.filter(is_active=True).count(),
        "members": Member.objects.count(),
        "certified": Member.objects.filter(certified_at__isnull=False).count(),
        "followers": User.objects.filter(is_active=True, member__isnull=True).count(),
    }


def home(request):
    root = Org.objects.get_root_nodes().first()
    # Public and hit often; at a province's scale these counts scan millions of rows. A minute old is fine.
    stats = cache.get_or_set("portal:stats", _stats, 60)
    return render(request, "portal/home.html", {"root": root, "stats": stats})


def dev_sms_inbox(request):
    """Development only: the SMS messages the dev backend 'sent' (phones masked), codes pulled out to copy."""
    if not settings.UNIONHOME_DEV_INBOX:
        raise Http404
    sent = list(SmsOutbox.objects.all()[:50])
    for m in sent:
        found = _CODE.search(m.text)
        m.code = found.group(0) if found else ""
    return render(request, "portal/dev_sms.html", {"messages_sent": sent})
