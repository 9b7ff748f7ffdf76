import re

from django.conf import settings
from django.http import Http404
from django.shortcuts import render

from accounts.models import SmsOutbox, User
from members.models import Member
from orgs.models import Org

_CODE = re.compile(r"\d{6}")


def home(request):
    root = Org.objects.get_root_nodes().first()
    stats = {
        "orgs": Org.objects.filter(is_active=True).count(),
        "members": Member.objects.count(),
        "certified": Member.objects.filter(certified_at__isnull=False).count(),
        "followers": User.objects.filter(is_active=True, member__isnull=True).count(),
    }
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
