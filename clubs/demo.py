"""Demo interest clubs: a few active clubs in different unions with members and posts, an
approval-only club with join requests waiting, and one proposal for a cadre to decide.

Built through the services (so counts, admins and notices are what real use makes); fast
(well under a second for the demo district) and deterministic for a given rng.
"""

from __future__ import annotations

import random

from django.db.models import Count

from members.models import Member
from orgs.models import Org

from .services import clubs as svc

CLUBS = [
    ("登山徒步联盟", "户外", "open", "每月第二个周六登龙泉山或周边山峰，新手友好，有领队和安全员。"),
    ("摄影爱好者联盟", "摄影", "open", "扫街、人像、风光，每月一次外拍和作品点评。手机党同样欢迎！"),
    ("职工羽毛球俱乐部", "球类", "approval", "每周二、四晚上七点半在职工活动中心，场地有限，加入需审核。"),
    ("翰墨书法协会", "书画", "open", "每周六上午临帖交流，逢年节为社区写春联、送福字。"),
]
PROPOSAL = ("职工合唱团", "音乐", "open", "想组建一支合唱团，排练红歌和流行合唱，参加区职工文艺汇演。")
POSTS = [
    ("本周活动通知", "本周六上午8点集合，请穿运动鞋、带好饮用水，雨天顺延。"),
    ("新成员欢迎", "欢迎新加入的工友！有问题可以在活动时找管理员。"),
]


def seed(rng: random.Random, admin) -> dict:
    """`admin`: a cadre whose role covers the unions (the district admin). Returns what it made."""
    unions = list(
        Org.objects.filter(numchild=0, members__certified_at__isnull=False)
        .annotate(n=Count("members"))
        .filter(n__gte=12)
        .order_by("-n", "id")[:4]
    )
    made = {"clubs": [], "proposal": None}
    for (name, category, policy, description), union in zip(CLUBS, unions, strict=False):
        people = list(
            Member.objects.filter(org=union, certified_at__isnull=False)
            .order_by("id")
            .values_list("user_id", flat=True)
        )
        rng.shuffle(people)
        founder, *others = people
        users = {m.user_id: m.user for m in Member.objects.filter(user_id__in=people).select_related("user")}
        club = svc.propose(users[founder], name=name, category=category, description=description, join_policy=policy)
        club = svc.decide(admin, club.pk, approve=True)
        joiners = others[: rng.randint(6, min(20, len(others)))]
        for uid in joiners:
            svc.join(users[uid], club.pk)
        if policy == "approval":  # approve most, leave two requests waiting for the club admin
            for uid in joiners[:-2]:
                svc.decide_join(users[founder], club.pk, uid, approve=True)
        for title, body in POSTS[: rng.randint(1, len(POSTS))]:
            svc.post(users[founder], club.pk, title=title, body=body)
        made["clubs"].append(club.pk)
    if unions:
        union = unions[-1]
        proposer = Member.objects.filter(org=union, certified_at__isnull=False).order_by("-id").select_related("user")
        name, category, policy, description = PROPOSAL
        club = svc.propose(proposer.first().user, name=name, category=category, description=description)
        made["proposal"] = club.pk
    return made
