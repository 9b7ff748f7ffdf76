"""Demo activities for the demo district: open, full (with a waitlist), past (with check-ins and
points paid through the ledger) and one member proposal waiting for a cadre.

    from activities import demo as activities_demo
    activities_demo.seed(gen.rng, root=root, streets=streets, admin=admin, now=now)

Deterministic for a given random generator (titles, orgs, people, times, check-in keys); rows are
written in bulk, and points move only through `ledger.post`, so `manage.py reconcile_points`
still passes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from members.models import Member
from orgs.models import CadreRole, Org
from points.models import Account, AccountKind, MovementKind
from points.services import ledger

from .models import Activity, ActivityStatus, Signup, SignupStatus

SIZES = {"key": "size", "label": "T恤尺码", "required": True, "choices": ["S", "M", "L", "XL", "XXL"]}
CONTACT = {"key": "contact", "label": "紧急联系人及电话", "required": True, "choices": []}
CHILD = {"key": "child_age", "label": "孩子年龄", "required": True, "choices": ["3-6岁", "7-9岁", "10-12岁"]}


@dataclasses.dataclass(frozen=True)
class Plan:
    title: str
    category: str
    place: str
    description: str
    level: str  # "root", "street" or "union": which org publishes it
    days: float  # start, from now (negative: in the past)
    hour: int
    hours: float
    capacity: int
    signups: int  # how many sign up (beyond capacity: waitlisted)
    waitlist: bool = True
    eligibility: str = "members"
    extra: tuple = ()
    cost: int = 0
    reward: int = 0
    attend: float = 0.0  # for past activities: the share of confirmed who checked in


PLANS = [
    Plan(
        "职工羽毛球联赛（初赛）",
        "sports",
        "区全民健身中心羽毛球馆",
        "单打、双打分组进行，自带球拍，场馆提供用球。",
        "street",
        6,
        9,
        4,
        48,
        31,
        extra=(SIZES,),
        reward=20,
    ),
    Plan(
        "东安湖绿道万步行",
        "sports",
        "东安湖公园南门集合",
        "全程约8公里，沿途设补给点，完成全程赠送纪念品。",
        "root",
        9,
        8,
        3,
        300,
        122,
        reward=10,
    ),
    Plan(
        "劳动合同法专题讲座",
        "lecture",
        "区总工会职工服务中心报告厅",
        "邀请执业律师讲解劳动合同签订、变更、解除中的常见问题，现场答疑。",
        "root",
        4,
        14,
        2,
        20,
        26,
        reward=10,
    ),
    Plan(
        "职工心理健康讲座：压力与情绪管理",
        "lecture",
        "区工人文化宫二楼多功能厅",
        "国家二级心理咨询师主讲，讲座后可预约一对一咨询。",
        "street",
        11,
        19,
        1.5,
        80,
        23,
    ),
    Plan(
        "迎新春书法创作交流会",
        "culture",
        "区工人文化宫三楼书画室",
        "现场挥毫写春联，笔墨纸砚由工会提供，作品可带回家。",
        "union",
        13,
        14,
        3,
        30,
        9,
    ),
    Plan(
        "非遗剪纸体验课",
        "culture",
        "街道综合文化站一楼活动室",
        "剪纸非遗传承人现场教学，适合零基础职工。",
        "street",
        16,
        14,
        2,
        25,
        25,
        waitlist=False,
    ),
    Plan(
        "社区敬老志愿服务",
        "volunteer",
        "龙泉街道敬老院",
        "陪伴老人聊天、打扫卫生、表演节目，志愿时长计入志愿服务记录。",
        "union",
        7,
        9,
        3,
        15,
        6,
        extra=(CONTACT,),
        reward=15,
    ),
    Plan(
        "无偿献血公益行",
        "volunteer",
        "区中心血站献血屋",
        "年满18周岁、身体健康的职工和家属均可参加，献血前请吃清淡早餐。",
        "root",
        12,
        9,
        6,
        100,
        18,
        eligibility="everyone",
    ),
    Plan(
        "亲子运动会",
        "family",
        "区体育中心田径场",
        "亲子接力、袋鼠跳、两人三足，每个家庭限报一名职工带一名孩子。",
        "street",
        19,
        9,
        3,
        60,
        44,
        extra=(CHILD, CONTACT),
    ),
    Plan(
        "桃花沟春季踏青（含午餐）",
        "outing",
        "桃花故里景区游客中心",
        "工会包车往返，含农家乐午餐，报名需50积分，取消可退。",
        "root",
        15,
        8,
        8,
        45,
        0,
        cost=50,
    ),
    # Ended: attendance recorded, points paid.
    Plan(
        "职工篮球友谊赛",
        "sports",
        "区体育中心篮球馆",
        "各街道职工代表队友谊赛，赛后合影留念。",
        "street",
        -10,
        14,
        3,
        40,
        40,
        extra=(SIZES,),
        reward=20,
        attend=0.85,
    ),
    Plan(
        "个人所得税年度汇算讲解",
        "lecture",
        "区总工会职工服务中心报告厅",
        "税务部门专家讲解专项附加扣除填报与年度汇算步骤。",
        "root",
        -6,
        14,
        2,
        120,
        96,
        reward=10,
        attend=0.78,
    ),
    Plan(
        "亲子手工DIY：做一盏花灯",
        "family",
        "街道职工之家活动室",
        "材料由工会提供，亲子共同完成一盏花灯。",
        "union",
        -3,
        15,
        2,
        20,
        20,
        extra=(CHILD,),
        reward=10,
        attend=0.9,
    ),
]

PROPOSAL = Plan(
    "周末环湖骑行",
    "outing",
    "东安湖环湖绿道北入口",
    "由骑行爱好者发起，全程约25公里，自备自行车和头盔，中途休息两次。",
    "union",
    10,
    8,
    4,
    20,
    0,
)


def _start(now: dt.datetime, days: float, hour: int) -> dt.datetime:
    local = timezone.localtime(now) + dt.timedelta(days=days)
    return local.replace(hour=hour, minute=0 if hour % 2 else 30, second=0, microsecond=0)


def _admin_of(org: Org, fallback) -> int:
    found = CadreRole.objects.filter(org=org, role="admin").order_by("id").values_list("user_id", flat=True).first()
    return found or fallback.pk


def _people(rng: random.Random, org: Org, n: int, exclude: set[int]) -> list[int]:
    """n certified members of the org's subtree (not cadres), chosen by the generator."""
    pool = list(
        Member.objects.filter(org__path__startswith=org.path, certified_at__isnull=False)
        .exclude(user_id__in=exclude)
        .order_by("user_id")
        .values_list("user_id", flat=True)[: max(4 * n, 200)]
    )
    return rng.sample(pool, min(n, len(pool)))


def _answers(rng: random.Random, extra: tuple) -> dict:
    out = {}
    for f in extra:
        if f["choices"]:
            out[f["key"]] = rng.choice(f["choices"])
        else:
            out[f["key"]] = rng.choice(["爱人", "父亲", "母亲", "同事"]) + " 139****" + f"{rng.randrange(10000):04d}"
    return out


def seed(rng: random.Random, *, root: Org, streets: list[Org], admin, now: dt.datetime | None = None) -> dict:
    """Create the demo activities; returns what was made (for the seed's progress line)."""
    now = now or timezone.now()
    cadres = set(CadreRole.objects.values_list("user_id", flat=True))
    depth = root.depth + 2  # grassroots unions
    sizes = dict(
        Member.objects.filter(certified_at__isnull=False, org__depth=depth)
        .values_list("org_id")
        .annotate(n=Count("id"))
        .order_by()
    )
    budgets = dict(Account.objects.filter(kind=AccountKind.BUDGET, org__depth=depth).values_list("org_id", "balance"))
    unions = [
        Union(org, sizes.get(org.pk, 0), budgets.get(org.pk, 0))
        for org in Org.objects.filter(depth=depth, pk__in=list(sizes)).order_by("path")
    ]
    counts = {"activities": 0, "signups": 0, "checked_in": 0, "points": 0}
    with transaction.atomic():
        for plan in PLANS:
            _one(rng, plan, root, streets, unions, admin, now, cadres, counts)
        _proposal(rng, root, unions, now, cadres, counts)
    return counts


@dataclasses.dataclass(frozen=True)
class Union:
    org: Org
    members: int
    budget: int


def _org_for(rng: random.Random, plan: Plan, root: Org, streets: list[Org], unions: list[Union]) -> Org:
    if plan.level == "root":
        return root
    if plan.level == "street":
        return rng.choice(streets)
    # A union with enough members for the plan, and budget for its points.
    fit = [
        u.org
        for u in unions
        if u.members >= plan.signups + 2 and (not plan.reward or u.budget >= plan.reward * plan.signups)
    ]
    return rng.choice(fit) if fit else rng.choice(streets)


def _one(rng, plan: Plan, root, streets, unions, admin, now, cadres, counts) -> Activity:
    org = _org_for(rng, plan, root, streets, unions)
    starts = _start(now, plan.days, plan.hour)
    ends = starts + dt.timedelta(hours=plan.hours)
    opens = min(now, starts) - dt.timedelta(days=7)
    organizer = _admin_of(org, admin)
    activity = Activity.objects.create(
        org=org,
        title=plan.title,
        category=plan.category,
        description=plan.description,
        place=plan.place,
        starts_at=starts,
        ends_at=ends,
        signup_opens_at=opens,
        signup_closes_at=starts - dt.timedelta(hours=2),
        cancel_until=starts - dt.timedelta(days=1) if plan.days > 1 else starts - dt.timedelta(hours=2),
        capacity=plan.capacity,
        waitlist=plan.waitlist,
        eligibility=plan.eligibility,
        extra_fields=list(plan.extra),
        points_cost=plan.cost,
        points_reward=plan.reward,
        status=ActivityStatus.PUBLISHED,
        organizer_id=organizer,
        created_by_id=organizer,
        checkin_secret=f"{rng.getrandbits(256):064x}",
    )
    people = _people(rng, org, plan.signups, cadres)
    confirmed_n = min(len(people), plan.capacity)
    if not plan.waitlist:
        people = people[:confirmed_n]
    rows = []
    for i, user_id in enumerate(people):
        created = opens + dt.timedelta(minutes=7 + i * rng.randrange(3, 40))
        created = min(created, starts - dt.timedelta(hours=3), now - dt.timedelta(minutes=5))
        confirmed = i < confirmed_n
        rows.append(
            Signup(
                activity=activity,
                user_id=user_id,
                status=SignupStatus.CONFIRMED if confirmed else SignupStatus.WAITLISTED,
                answers=_answers(rng, plan.extra),
                created_at=created,
                confirmed_at=created if confirmed else None,
            )
        )
    Signup.objects.bulk_create(rows)
    made = list(Signup.objects.filter(activity=activity).order_by("id"))
    confirmed = [s for s in made if s.status == SignupStatus.CONFIRMED]
    waitlisted = len(made) - len(confirmed)
    checked: list[Signup] = []
    if plan.days < 0 and plan.attend:
        checked = [s for s in confirmed if rng.random() < plan.attend]
        for s in checked:
            s.checked_in_at = starts - dt.timedelta(minutes=rng.randrange(0, 25))
            s.checkin_method = "qr" if rng.random() < 0.9 else "card"
        if checked and plan.reward:
            budget = ledger.budget_account(org)
            accounts = ledger.member_accounts([s.user_id for s in checked])
            movement = ledger.post(
                MovementKind.EARN,
                [(budget, accounts[s.user_id], plan.reward) for s in checked],
                reason=f"活动签到：{plan.title}",
                org=org,
                source=f"activity:{activity.pk}",
            )
            for s in checked:
                s.reward = movement
            counts["points"] += plan.reward * len(checked)
        Signup.objects.bulk_update(checked, ["checked_in_at", "checkin_method", "reward"])
    Activity.objects.filter(pk=activity.pk).update(
        confirmed_count=len(confirmed), waitlist_count=waitlisted, checked_in_count=len(checked)
    )
    counts["activities"] += 1
    counts["signups"] += len(made)
    counts["checked_in"] += len(checked)
    return activity


def _proposal(rng, root, unions, now, cadres, counts) -> None:
    """A member's proposal waiting for their union's cadres."""
    union = next(
        (u.org for u in unions if u.members >= 5 and CadreRole.objects.filter(org=u.org, role="admin").exists()),
        None,
    )
    if union is None:
        return
    proposer = _people(rng, union, 1, cadres)
    if not proposer:
        return
    starts = _start(now, PROPOSAL.days, PROPOSAL.hour)
    Activity.objects.create(
        org=union,
        title=PROPOSAL.title,
        category=PROPOSAL.category,
        description=PROPOSAL.description,
        place=PROPOSAL.place,
        starts_at=starts,
        ends_at=starts + dt.timedelta(hours=PROPOSAL.hours),
        signup_opens_at=now,
        signup_closes_at=starts - dt.timedelta(hours=12),
        cancel_until=starts - dt.timedelta(days=1),
        capacity=PROPOSAL.capacity,
        status=ActivityStatus.PROPOSED,
        member_initiated=True,
        organizer_id=proposer[0],
        created_by_id=proposer[0],
        checkin_secret=f"{rng.getrandbits(256):064x}",
    )
    counts["activities"] += 1
