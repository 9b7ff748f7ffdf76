"""Demo live sessions: one upcoming (with reminders), one ended with a replay, its viewers per
minute (presence rows) and approved comments. Fast bulk inserts, deterministic for a given rng.

The stream and replay addresses are placeholders: a deployment pastes its provider's HLS URLs.
"""

from __future__ import annotations

import datetime as dt
import random

from django.utils import timezone

from members.models import Member

from .models import Comment, CommentStatus, LiveSession, Presence, Reminder
from .services.presence import epoch_minute

COMMENTS = [
    "老师讲得很清楚，受益匪浅！",
    "请问灵活就业人员怎么参加工伤保险？",
    "打卡学习",
    "案例很实用，建议多办几期",
    "回放在哪里看？",
    "点赞工会！",
    "加班费的计算基数是怎么定的？",
    "讲得通俗易懂",
]


def seed(rng: random.Random, org, admin, now: dt.datetime | None = None) -> dict:
    """`org`: the host (e.g. the federation, so every member sees them); `admin`: an admin cadre of it."""
    now = now or timezone.now()
    local = timezone.localtime(now)
    tomorrow = local.replace(hour=19, minute=30, second=0, microsecond=0) + dt.timedelta(days=1)
    upcoming = LiveSession.objects.create(
        org=org,
        title="劳动合同法实务：入职、加班与离职那些事",
        speaker="区总工会法律服务中心 李律师",
        description="结合真实案例，讲清劳动合同签订、加班费计算、经济补偿和维权途径。直播中可以留言提问。",
        starts_at=tomorrow,
        ends_at=tomorrow + dt.timedelta(minutes=90),
        stream_url="https://live.example.com/unionhome/law-lecture.m3u8",
        min_minutes=20,
        points_reward=10,
        created_by=admin,
    )
    last_week = local.replace(hour=15, minute=0, second=0, microsecond=0) - dt.timedelta(days=6)
    ended = LiveSession.objects.create(
        org=org,
        title="职工心理健康讲座：压力管理与情绪调节",
        speaker="心理咨询师 王老师",
        description="一线职工的压力从哪里来？怎样照顾好自己的情绪？王老师带来简单实用的方法。",
        starts_at=last_week,
        ends_at=last_week + dt.timedelta(minutes=60),
        stream_url="https://live.example.com/unionhome/mental-health.m3u8",
        replay_url="https://vod.example.com/unionhome/mental-health/index.m3u8",
        min_minutes=15,
        points_reward=0,
        auto_approve_comments=False,
        created_by=admin,
    )
    people = list(
        Member.objects.filter(org__path__startswith=org.path, certified_at__isnull=False)
        .order_by("id")
        .values_list("user_id", flat=True)[:2000]
    )
    viewers = rng.sample(people, min(120, len(people)))
    start = epoch_minute(ended.starts_at)
    rows = []
    for uid in viewers:  # people come a little late and leave at different times
        first = start + int(rng.expovariate(1 / 4))
        last = min(start + 59, first + rng.randint(3, 60))
        rows += [Presence(session=ended, user_id=uid, minute=m) for m in range(first, last + 1)]
    Presence.objects.bulk_create(rows, batch_size=2000)
    Comment.objects.bulk_create(
        [
            Comment(
                session=ended,
                user_id=uid,
                body=rng.choice(COMMENTS),
                status=CommentStatus.APPROVED,
                minute=start + rng.randint(2, 58),
                moderated_by=admin,
                moderated_at=ended.ends_at,
            )
            for uid in viewers[:24]
        ]
    )
    Reminder.objects.bulk_create([Reminder(session=upcoming, user_id=uid) for uid in viewers[:30]])
    return {"upcoming": upcoming.pk, "ended": ended.pk, "presence_rows": len(rows)}
