"""Demo polls for the demo district: an open poll with a few thousand ballots and a brushing
attempt to find on the monitor, and a closed, sealed contest whose ranking waits to be published.

    from votes import demo as votes_demo
    votes_demo.seed(rng)          # after the district, its people and cadres exist

Deterministic for a given `rng` (a random.Random) on a given district. Ballots are bulk-inserted
in the order they were cast, and the counters, the 10-minute buckets and the monitor's roll-up are
written to agree with them: a recount matches.
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from core import bulk, pii
from orgs.models import CadreRole, Org

from .models import COUNTER_SHARDS, Ballot, BallotBucket, Option, OptionCount, Poll
from .services import contest, monitor, polls
from .services.ballots import bucket_of
from .services.receipts import ALPHABET

POLL_TITLE = "最有故事的好职工"
CANDIDATES = [
    ("王秀英", "公交驾驶员，安全行车三十年零事故，车厢里常备老花镜和雨伞。"),
    ("李建国", "汽车零部件厂焊工，带出四十多名徒弟，三项技术革新被全厂推广。"),
    ("张丽", "社区卫生服务中心护士，疫情期间连续上门服务独居老人两百余户。"),
    ("刘强", "快递小哥，暴雨夜帮被困群众转移，被街坊称为“雨夜骑士”。"),
    ("陈静", "环卫工人，十二年清扫同一条街，捡到的失物全部物归原主。"),
    ("杨志华", "物流公司调度员，自学编程优化排班，每月为同事减少加班近千小时。"),
    ("赵桂兰", "食品厂质检员，坚持“问题不过夜”，所在班组连续八年零投诉。"),
    ("黄磊", "建筑工地塔吊司机，业余组织工友读书会，带动两百多人拿到学历证书。"),
    ("周敏", "外卖骑手，用午休时间为小区老人代购药品，坚持了整整三年。"),
    ("吴海燕", "村小学炊事员，二十年变着花样给孩子们做营养午餐。"),
    ("徐卫东", "电力抢修工，冰灾中连续奋战七十二小时恢复两个镇的供电。"),
    ("孙晓梅", "物业保洁员，发起楼道“共享书架”，让整栋楼的邻居成了朋友。"),
]
CONTEST_TITLE = "职工创新成果评选大赛"
ENTRIES = [
    ("焊接变形智能矫正夹具", "李建国班组：焊后变形率下降六成，已在三条产线使用。"),
    ("冷链运输温度预警小程序", "物流部自研：温度异常五分钟内提醒司机和调度。"),
    ("社区慢病随访一张表", "社区卫生服务中心：把六张随访表合成一张，随访时间减半。"),
    ("塔吊盲区视频辅助系统", "建设工程公司：四个摄像头消除吊装盲区，全年零事故。"),
    ("食品检验样品流转条码化", "质检部：样品从登记到出报告全程扫码，差错归零。"),
    ("公交车厢无障碍折叠坡板", "公交分公司：轮椅乘客上下车时间缩短到三十秒。"),
    ("配电线路故障快速定位仪", "供电所：巡线定位从半天缩短到二十分钟。"),
    ("环卫作业路线优化方案", "环卫所：同样人力多覆盖一成路段，步行距离减少。"),
]
CRITERIA = [
    {"name": "创新性", "max_score": 10, "weight": 4},
    {"name": "实用性", "max_score": 10, "weight": 3},
    {"name": "推广价值", "max_score": 10, "weight": 3},
]
TIERS = [{"name": "一等奖", "count": 1}, {"name": "二等奖", "count": 2}, {"name": "三等奖", "count": 3}]
# Where people vote from: carrier NATs (many people each), home broadband, workplaces.
CARRIER_NETS = ["117.136.{}.0", "223.104.{}.0", "112.97.{}.0", "39.144.{}.0"]
BROADBAND_NETS = ["182.148.{}.0", "171.221.{}.0", "125.69.{}.0", "110.185.{}.0"]
HOUR_WEIGHTS = [1, 0.4, 0.2, 0.2, 0.3, 0.6, 2, 5, 8, 6, 5, 5, 8, 7, 5, 5, 5, 6, 7, 9, 10, 9, 6, 3]


def _receipt(rng: random.Random, used: set[str]) -> str:
    while True:
        code = "".join(rng.choices(ALPHABET, k=12))
        if code not in used:
            used.add(code)
            return code


def _ip(rng: random.Random, net: str) -> tuple[str, str]:
    base = net.format(rng.randrange(256))
    prefix = base + "/24"
    return base[:-1] + str(rng.randrange(2, 254)), prefix


def _at(rng: random.Random, start: dt.datetime, end: dt.datetime) -> dt.datetime:
    """A moment between start and end, more likely at the busy hours of a day (Shanghai time)."""
    days = max(1, (end - start).days + 1)
    for _ in range(50):
        day = timezone.localtime(start).replace(hour=0, minute=0, second=0, microsecond=0)
        day += dt.timedelta(days=rng.randrange(days))
        hour = rng.choices(range(24), HOUR_WEIGHTS)[0]
        when = day + dt.timedelta(hours=hour, seconds=rng.randrange(3600), microseconds=rng.randrange(10**6))
        if start <= when < end:
            return when
    return start + (end - start) * rng.random()


def _new_accounts(rng: random.Random, n: int, joined_from: dt.datetime) -> list[int]:
    """n bought-looking follower accounts (virtual-operator numbers, default names) created during a poll."""
    phones: list[str] = []
    taken = set()
    while len(phones) < n:
        phone = rng.choice(["170", "171", "165", "167"]) + f"{rng.randrange(10**8):08d}"
        if phone not in taken:
            taken.add(phone)
            phones.append(phone)
    hashes = {p: pii.phone_index(p) for p in phones}
    exists = set(User.objects.filter(phone_hash__in=hashes.values()).values_list("phone_hash", flat=True))
    users = [
        User(
            name=f"用户{rng.randrange(10**6):06d}",
            phone_enc=pii.encrypt(p),
            phone_hash=hashes[p],
            password="!",
            date_joined=joined_from + dt.timedelta(minutes=i),
        )
        for i, p in enumerate(phones)
        if hashes[p] not in exists
    ]
    User.objects.bulk_create(users)
    # bulk_create leaves date_joined to auto_now_add: set the times the accounts "appeared".
    for u in users:
        User.objects.filter(pk=u.pk).update(date_joined=u.date_joined)
    return [u.pk for u in users]


def _write_ballots(poll: Poll, rows: list[tuple], rng: random.Random) -> int:
    """rows: (voter_id, option_id, created_at, ip, prefix, device, new_account). One ballot a day
    per voter (duplicates of a day are dropped), inserted in time order with counters and buckets."""
    rows.sort(key=lambda r: r[2])
    used_days: set[tuple[int, dt.date]] = set()
    receipts: set[str] = set()
    ballots, shards, buckets = [], defaultdict(int), defaultdict(lambda: [0, 0])
    for voter, option_id, when, ip, prefix, device, new in rows:
        day = timezone.localdate(when) if poll.ballots_per_day else timezone.localdate(poll.opens_at)
        if (voter, day) in used_days:
            continue
        used_days.add((voter, day))
        ballots.append(
            (
                poll.pk,
                voter,
                bulk.db_date(day),
                1,
                str(option_id),
                _receipt(rng, receipts),
                bulk.db_datetime(when),
                ip,
                prefix,
                device,
                new,
            )
        )
        shards[(option_id, voter % COUNTER_SHARDS)] += 1
        bucket = buckets[(option_id, bucket_of(when))]
        bucket[0] += 1
        bucket[1] += int(new)
    fields = ["poll_id", "voter_id", "day", "n", "choices", "receipt", "created_at", "ip", "ip_prefix", "device"]
    bulk.insert(Ballot, [*fields, "new_account"], ballots)
    for (option_id, shard), n in shards.items():
        OptionCount.objects.filter(option_id=option_id, shard=shard).update(votes=n, ballots=n)
    BallotBucket.objects.bulk_create(
        [
            BallotBucket(poll=poll, option_id=o, bucket=b, votes=n, ballots=n, new_accounts=na)
            for (o, b), (n, na) in buckets.items()
        ]
    )
    return len(ballots)


def seed(rng: random.Random, *, root: Org | None = None, admin=None, now: dt.datetime | None = None) -> dict:
    """The demo poll and contest; returns their ids and counts."""
    # On the hour: _at draws again when a moment falls outside its window, so a window that moved
    # by the seconds between two runs could change how many draws follow, and with them every later
    # account and ballot of the same seed.
    now = (now or timezone.now()).replace(minute=0, second=0, microsecond=0)
    root = root or Org.objects.get_root_nodes().order_by("path").first()
    admin = admin or CadreRole.objects.filter(org=root, role="admin").order_by("id").first().user
    cadre_ids = set(CadreRole.objects.values_list("user_id", flat=True))
    people = [
        pk
        for pk in User.objects.filter(is_active=True).order_by("id").values_list("pk", flat=True)
        if pk not in cadre_ids
    ]
    opens = now - dt.timedelta(days=5)
    # The district's people were there long before the poll (seed_demo creates them all "now"); else
    # every demo ballot, seeded or cast later, would count as one from a new account on the monitor.
    User.objects.filter(date_joined__gt=opens).update(date_joined=now - dt.timedelta(days=400))

    with transaction.atomic():
        poll = polls.create_poll(
            admin,
            root,
            title=POLL_TITLE,
            description="讲述身边普通劳动者的不普通故事。每位用户每天可投1票，投票结果实时公布。",
            options=[{"title": t, "description": d} for t, d in CANDIDATES],
            max_choices=1,
            ballots_per_day=1,
            eligibility="everyone",
            results="live",
            opens_at=opens,
            closes_at=now + dt.timedelta(days=9),
        )
        ids = [o.pk for o in Option.objects.filter(poll=poll).order_by("position")]
        popularity = [rng.paretovariate(1.6) for _ in ids]
        rows: list[tuple] = []
        voters = rng.sample(people, min(len(people), 1600))
        for voter in voters:
            home = rng.choice(BROADBAND_NETS if rng.random() < 0.6 else CARRIER_NETS)
            device = f"{rng.getrandbits(128):032x}"
            favourite = rng.choices(ids, popularity)[0]
            for _ in range(rng.choice([1, 1, 1, 2, 2, 3])):
                ip, prefix = _ip(rng, home if rng.random() < 0.75 else rng.choice(CARRIER_NETS))
                option = favourite if rng.random() < 0.85 else rng.choices(ids, popularity)[0]
                rows.append((voter, option, _at(rng, opens, now - dt.timedelta(minutes=5)), ip, prefix, device, False))
        # A brushing attempt two nights ago: 150 fresh accounts, one /24, three phones, one candidate.
        night = timezone.localtime(now - dt.timedelta(days=2)).replace(hour=2, minute=10, second=0, microsecond=0)
        bots = _new_accounts(rng, 150, night - dt.timedelta(hours=3))
        target = ids[-3]
        for i, voter in enumerate(bots):
            when = night + dt.timedelta(seconds=i * 8 + rng.randrange(8))
            rows.append((voter, target, when, f"61.183.45.{10 + i % 200}", "61.183.45.0/24", f"farm{i % 3:029d}", True))
        # And one device lending itself to 40 different accounts across networks.
        for voter in rng.sample(voters, 40):
            ip, prefix = _ip(rng, rng.choice(CARRIER_NETS))
            when = _at(rng, now - dt.timedelta(days=1), now - dt.timedelta(hours=2))
            rows.append((voter, ids[2], when, ip, prefix, "0" * 24 + "devfarm1", False))
        n_poll = _write_ballots(poll, rows, rng)
    monitor.rollup(poll)

    # The contest: voting ran for two weeks and closed two days ago; the judges have scored.
    with transaction.atomic():
        entry = polls.create_poll(
            admin,
            root,
            kind="contest",
            title=CONTEST_TITLE,
            description="网络投票占40%，评委评分占60%。设一等奖1名、二等奖2名、三等奖3名。",
            options=[{"title": t, "description": d} for t, d in ENTRIES],
            max_choices=3,
            eligibility="members",
            results="live",
            vote_weight=40,
            prize_tiers=TIERS,
            opens_at=now - dt.timedelta(days=16),
            closes_at=now + dt.timedelta(days=1),
        )
        c_opens, c_closes = now - dt.timedelta(days=16), now - dt.timedelta(days=2)
        Poll.objects.filter(pk=entry.pk).update(opens_at=c_opens, closes_at=c_closes)
        entry.refresh_from_db()
        c_ids = [o.pk for o in Option.objects.filter(poll=entry).order_by("position")]
        members = list(
            User.objects.filter(member__certified_at__isnull=False, cadre_roles__isnull=True)
            .order_by("id")
            .values_list("pk", flat=True)
        )
        c_rows = []
        liked = [rng.paretovariate(1.4) for _ in c_ids]
        for voter in rng.sample(members, min(len(members), 1200)):
            ip, prefix = _ip(rng, rng.choice(BROADBAND_NETS + CARRIER_NETS))
            c_rows.append((voter, rng.choices(c_ids, liked)[0], _at(rng, c_opens, c_closes), ip, prefix, "", False))
        n_contest = _write_ballots(entry, c_rows, rng)
        judge_cadres = list(
            CadreRole.objects.filter(org__depth=2, role="admin").order_by("id").values_list("user_id", flat=True)[:3]
        )
        contest.set_judges(admin, entry, judge_cadres)
        criteria = contest.set_criteria(admin, entry, CRITERIA)
        quality = [rng.uniform(5.5, 9.5) for _ in c_ids]
        for judge in User.objects.filter(pk__in=judge_cadres).order_by("id"):
            for option_id, q in zip(c_ids, quality, strict=True):
                scores = {c.pk: round(min(10, max(0, rng.gauss(q, 0.8))) * 2) / 2 for c in criteria}
                contest.submit_scores(judge, entry, option_id, scores)
    polls.seal(entry)
    entry.refresh_from_db()
    return {
        "poll_id": poll.pk,
        "poll_ballots": n_poll,
        "contest_id": entry.pk,
        "contest_ballots": n_contest,
        "judges": judge_cadres,
        "ranking_ties_at_cut": sum(1 for r in contest.ranking(entry) if r["tie_at_cut"]),
    }
