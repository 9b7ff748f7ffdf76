"""A realistic, deterministic demo district: the tree, cadres, certified members and followers.

Everything derives from one random.Random(seed), so the same seed gives the same district
(names, phones, ID numbers) on any machine and database.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from collections.abc import Iterator

from django.contrib.auth.hashers import make_password
from django.db import transaction
from django.utils import timezone
from faker.providers.company.zh_CN import Provider as CompanyProvider
from faker.providers.person.zh_CN import Provider as PersonProvider

from accounts.models import User
from activities import demo as activities_demo
from clubs import demo as clubs_demo
from core import idcard, pii
from elections import demo as election_demo
from live import demo as live_demo
from members.models import JoinApplication, Member, MembershipPeriod, Transfer
from orgs.models import CadreRole, Org, OrgKind
from votes import demo as votes_demo

FEDERATION = "锦城区总工会"
STREETS = [
    ("东山街道工会", OrgKind.STREET),
    ("西河街道工会", OrgKind.STREET),
    ("南湖街道工会", OrgKind.STREET),
    ("北城街道工会", OrgKind.STREET),
    ("文昌街道工会", OrgKind.STREET),
    ("柳城街道工会", OrgKind.STREET),
    ("青云镇工会", OrgKind.TOWN),
    ("白鹭镇工会", OrgKind.TOWN),
    ("桃源镇工会", OrgKind.TOWN),
    ("金沙镇工会", OrgKind.TOWN),
    ("茶店镇工会", OrgKind.TOWN),
    ("万兴镇工会", OrgKind.TOWN),
]
GRASSROOTS_TOTAL = 2480 - 1 - len(STREETS)
FOLLOWER_RATIO = (400_000 - 165_000) / 165_000  # Longquanyi: 400k followers, of whom 165k certified members
REGION_CODES = ["510112", "510104", "510105", "510106", "510107", "510108", "510113", "510114", "510115", "510121"]
MOBILE_PREFIXES = [
    "133",
    "135",
    "136",
    "137",
    "138",
    "139",
    "150",
    "151",
    "152",
    "157",
    "158",
    "159",
    "166",
    "177",
    "180",
    "181",
    "182",
    "186",
    "187",
    "188",
    "189",
    "191",
    "198",
    "199",
]
COMMUNITY_WORDS = [
    "和平",
    "幸福",
    "光明",
    "龙泉",
    "驿都",
    "星光",
    "阳光",
    "锦绣",
    "滨河",
    "书房",
    "桂花",
    "玉带",
    "洪河",
    "明蜀",
    "北泉",
    "平安",
    "建设",
    "长柏",
    "同安",
    "怡和",
    "金桂",
    "枫林",
    "柏合",
    "芦溪",
]
VILLAGE_WORDS = [
    "石盘",
    "松林",
    "桃花",
    "红光",
    "双槐",
    "长松",
    "井泉",
    "梨花",
    "山泉",
    "万兴",
    "宝狮",
    "东风",
    "茶林",
    "黄土",
    "沙河",
    "新华",
    "五星",
    "白鹤",
    "金龙",
    "双龙",
    "大兴",
    "柏杨",
    "青龙",
    "柳溪",
]
ENTERPRISE_KINDS = [
    "汽车零部件有限公司",
    "物流有限公司",
    "食品有限公司",
    "建设工程有限公司",
    "科技有限公司",
    "制造有限公司",
    "商贸有限公司",
    "物业服务有限公司",
    "医疗器械有限公司",
    "环保科技有限公司",
]
JOINT_WORDS = ["工业园区", "商圈", "楼宇", "快递物流", "网约车司机", "外卖骑手", "家政服务", "小微企业"]
WORKPLACES = ["生产部", "质检部", "物流部", "行政部", "销售部", "研发中心", "财务部", "客服中心", "一车间", "二车间"]


@dataclasses.dataclass
class Credentials:
    password: str
    district_admin: dict
    cadres: list[dict]
    members: list[dict]
    followers: list[dict]
    verifiers: list[dict] = dataclasses.field(default_factory=list)  # merchants' 核销员 accounts

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


class Generator:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.phones: set[str] = set()
        self.ids: set[str] = set()
        self.surnames = list(PersonProvider.last_names.keys())
        self.surname_weights = list(PersonProvider.last_names.values())
        self.given = list(PersonProvider.first_names)

    def name(self) -> str:
        surname = self.rng.choices(self.surnames, self.surname_weights)[0]
        given = self.rng.choice(self.given)
        if len(given) == 1 and self.rng.random() < 0.6:
            given += self.rng.choice(self.given)[0]
        return surname + given

    def phone(self) -> str:
        while True:
            p = self.rng.choice(MOBILE_PREFIXES) + f"{self.rng.randrange(10**8):08d}"
            if p not in self.phones:
                self.phones.add(p)
                return p

    def id_number(self) -> str:
        while True:
            birth = dt.date(1965, 1, 1) + dt.timedelta(days=self.rng.randrange(365 * 38))
            first17 = self.rng.choice(REGION_CODES) + birth.strftime("%Y%m%d") + f"{self.rng.randrange(1000):03d}"
            value = first17 + idcard.check_digit(first17)
            if value not in self.ids:
                self.ids.add(value)
                return value

    def company(self) -> str:
        return self.rng.choice(CompanyProvider.company_prefixes) + self.rng.choice(ENTERPRISE_KINDS)


def _grassroots_names(gen: Generator, street: str, count: int) -> Iterator[tuple[str, str]]:
    used: set[str] = set()
    base = street.replace("街道工会", "").replace("镇工会", "")
    while len(used) < count:
        roll = gen.rng.random()
        if roll < 0.62:
            name, kind = gen.company() + "工会", OrgKind.ENTERPRISE
        elif roll < 0.78:
            name, kind = f"{base}{gen.rng.choice(COMMUNITY_WORDS)}社区工会", OrgKind.COMMUNITY
        elif roll < 0.88:
            name, kind = f"{base}{gen.rng.choice(VILLAGE_WORDS)}村工会", OrgKind.VILLAGE
        elif roll < 0.95:
            name, kind = f"{base}{gen.rng.choice(JOINT_WORDS)}联合工会", OrgKind.JOINT
        else:
            name, kind = (
                f"{base}{gen.rng.choice(['中心小学', '卫生院', '便民服务中心', '第一中学', '文化站'])}工会",
                OrgKind.INSTITUTION,
            )
        if name in used:
            continue
        used.add(name)
        yield name, kind


def build_tree(gen: Generator) -> tuple[Org, list[Org], list[Org]]:
    root = Org.objects.add_root({"name": FEDERATION, "kind": OrgKind.FEDERATION})
    streets, grassroots = [], []
    per_street = [GRASSROOTS_TOTAL // len(STREETS)] * len(STREETS)
    for i in range(GRASSROOTS_TOTAL - sum(per_street)):
        per_street[i] += 1
    for (street_name, kind), count in zip(STREETS, per_street, strict=True):
        street = Org.objects.add_child(root, {"name": street_name, "kind": kind, "parent": root})
        streets.append(street)
        # Children paths computed in one go: a bulk insert instead of ~2,500 add_child round trips.
        children = []
        for n, (name, gkind) in enumerate(_grassroots_names(gen, street_name, count), start=1):
            children.append(
                Org(
                    name=name,
                    kind=gkind,
                    parent=street,
                    path=street.path + Org._int2str(n).rjust(Org.steplen, "0"),
                    depth=street.depth + 1,
                    numchild=0,
                )
            )
        Org.objects.bulk_create(children, batch_size=1000)
        Org.objects.filter(pk=street.pk).update(numchild=len(children))
        grassroots.extend(children)
    grassroots = list(Org.objects.filter(depth=3).order_by("path"))
    return root, streets, grassroots


def seed(members: int, seed_value: int, password: str, progress=print) -> Credentials:
    gen = Generator(seed_value)
    pw_hash = make_password(password)  # one hash for every demo account: seeding 500k accounts stays fast
    now = timezone.now()
    with transaction.atomic():
        root, streets, grassroots = build_tree(gen)
    progress(f"组织：{1 + len(streets) + len(grassroots)} 个")

    # Union sizes are skewed: a few big enterprises, many small unions.
    weights = [gen.rng.paretovariate(1.3) for _ in grassroots]

    def make_people(n: int, *, member_orgs: list[Org] | None, certified: bool) -> list[tuple[User, Member | None]]:
        out = []
        for i in range(n):
            name, phone = gen.name(), gen.phone()
            u = User(
                name=name,
                phone_enc=pii.encrypt(phone),
                phone_hash=pii.phone_index(phone),
                password=pw_hash,
                claimed_at=now,
            )
            u._phone = phone
            m = None
            if member_orgs is not None:
                org = member_orgs[i]
                idn = gen.id_number()
                m = Member(
                    org=org,
                    name=name,
                    id_number_enc=pii.encrypt(idn),
                    id_number_hash=pii.id_number_index(idn),
                    phone_enc=u.phone_enc,
                    phone_hash=u.phone_hash,
                    gender=idcard.gender(idn),
                    joined_on=dt.date(2005, 1, 1) + dt.timedelta(days=gen.rng.randrange(7000)),
                    workplace=gen.rng.choice(WORKPLACES),
                    certified_at=now if certified else None,
                )
            out.append((u, m))
        return out

    def store(people: list[tuple[User, Member | None]]) -> None:
        with transaction.atomic():
            User.objects.bulk_create([u for u, _ in people], batch_size=1000)
            ms = []
            for u, m in people:
                if m is not None:
                    m.user_id = u.pk
                    ms.append(m)
            Member.objects.bulk_create(ms, batch_size=1000)
            MembershipPeriod.objects.bulk_create(
                [MembershipPeriod(member_id=m.pk, org_id=m.org_id, started_at=now, how="roster") for m in ms],
                batch_size=1000,
            )

    # Cadres: the district admin, an admin and a staff cadre per street/town, a chair per grassroots union.
    cadre_orgs = [root] + [s for s in streets for _ in (0, 1)] + grassroots
    cadre_people = make_people(len(cadre_orgs), member_orgs=cadre_orgs, certified=True)
    store(cadre_people)
    roles = []
    for idx, ((u, _), org) in enumerate(zip(cadre_people, cadre_orgs, strict=True)):
        role = "staff" if 1 <= idx <= 2 * len(streets) and idx % 2 == 0 else "admin"
        roles.append(CadreRole(user_id=u.pk, org=org, role=role, title="主席" if role == "admin" else "干事"))
    CadreRole.objects.bulk_create(roles, batch_size=1000)
    progress(f"干部：{len(roles)} 人")

    member_orgs = gen.rng.choices(grassroots, weights, k=members)
    member_list: list[dict] = []
    for start in range(0, members, 5000):
        batch = make_people(min(5000, members - start), member_orgs=member_orgs[start : start + 5000], certified=True)
        store(batch)
        member_list.extend({"phone": u._phone, "org_id": m.org_id} for u, m in batch if len(member_list) < 1000)
        progress(f"会员：{min(start + 5000, members)}/{members}")

    n_followers = round(members * FOLLOWER_RATIO)
    follower_list: list[dict] = []
    for start in range(0, n_followers, 10000):
        batch = make_people(min(10000, n_followers - start), member_orgs=None, certified=False)
        store(batch)
        follower_list.extend({"phone": u._phone, "org_id": None} for u, _ in batch if len(follower_list) < 1000)
    progress(f"粉丝：{n_followers} 人")

    _seed_requests(gen, grassroots, now)
    _seed_points(gen, root, streets, grassroots, cadre_people[0][0], now)
    progress("积分：预算、规则、商城已就绪")

    election_demo.seed(gen.rng, grassroots, now)
    progress("选举：一场已结束（含结果），一场进行中")
    clubs_demo.seed(gen.rng, cadre_people[0][0])  # the district admin decides the proposals
    live_demo.seed(gen.rng, root, cadre_people[0][0], now)  # sessions hosted by the federation
    progress("兴趣联盟与在线直播已就绪")
    activities_demo.seed(gen.rng, root=root, streets=streets, admin=cadre_people[0][0], now=now)
    progress("活动：报名中、已满（候补）、已结束（含签到）与待审核的会员发起活动")
    # Last: it backdates the demo accounts' join dates, so demo ballots don't look like new accounts.
    votes_demo.seed(gen.rng, root=root, admin=cadre_people[0][0], now=now)
    progress("投票：一场进行中的投票评选（含监测数据），一场已结束待评奖的评选大赛")

    # Last as well, so the random draws above stay as they were before this account existed.
    verifier = _seed_verifier(gen, root, cadre_people[0][0], password)

    admin_user = cadre_people[0][0]
    cadre_list = [
        {"phone": u._phone, "org_id": org.pk, "role": r.role}
        for (u, _), org, r in zip(cadre_people[1:], cadre_orgs[1:], roles[1:], strict=True)
    ]
    cadre_list.sort(key=lambda c: (c["role"] != "admin", 0))  # admins first; different subtrees come first too
    return Credentials(
        password=password,
        district_admin={"phone": admin_user._phone, "org_id": root.pk},
        cadres=cadre_list[:1000],
        members=member_list,
        followers=follower_list,
        verifiers=[verifier],
    )


def _seed_verifier(gen: Generator, root: Org, admin, password: str) -> dict:
    """A cinema's 核销员: signs in to the cadre end and confirms the federation's pickup codes, nothing else."""
    from rewards.services import verifiers

    phone = gen.phone()
    User.objects.create_user(phone, password=password, name="影城前台")
    verifiers.add_verifier(admin, root.pk, phone, "万达影城（演示商户）")
    return {"phone": phone, "org_id": root.pk}


def _seed_requests(gen: Generator, grassroots: list[Org], now) -> None:
    """A few pending join applications and transfers, so the cadre end has work on day one."""
    followers = list(User.objects.filter(member__isnull=True).order_by("-id")[:40])
    apps = []
    for u in followers[:24]:
        idn = gen.id_number()
        apps.append(
            JoinApplication(
                user=u,
                org=gen.rng.choice(grassroots[:60]),
                name=u.name,
                id_number_enc=pii.encrypt(idn),
                id_number_hash=pii.id_number_index(idn),
                workplace=gen.rng.choice(WORKPLACES),
            )
        )
    JoinApplication.objects.bulk_create(apps)
    movers = list(Member.objects.filter(org__depth=3).order_by("-id")[:12])
    Transfer.objects.bulk_create(
        [
            Transfer(
                member=m,
                from_org_id=m.org_id,
                to_org=gen.rng.choice([g for g in grassroots[:60] if g.pk != m.org_id]),
                reason="工作调动",
            )
            for m in movers
        ]
    )


FEDERATION_BUDGET = 10_000_000
REWARDS = [
    ("电影票（2D通兑）", "ticket", 300, 500),
    ("超市购物卡 50元", "voucher", 800, 200),
    ("保温杯", "goods", 260, 300),
    ("劳动保护手套（10副）", "goods", 120, 800),
    ("体检套餐优惠券", "voucher", 500, 100),
    ("图书券 30元", "voucher", 350, 300),
    ("职工书屋定制帆布包", "goods", 150, 400),
    ("游泳馆单次体验券", "ticket", 200, 150),
]


def _seed_points(gen: Generator, root: Org, streets: list[Org], grassroots: list[Org], admin, now) -> None:
    """The federation's budget allocated down the tree, earning rules, and a stocked mall."""
    from points.models import EarningRule
    from points.services import budgets
    from rewards.services import lottery, mall

    budgets.mint(None, root, FEDERATION_BUDGET, "年度积分预算")
    for street in streets:
        budgets.allocate(admin, root, street, 300_000, "年度预算下拨")
    for union in grassroots[::20]:
        street = next(s for s in streets if union.path.startswith(s.path))
        budgets.allocate(admin, street, union, 2_000, "基层工会预算")
    EarningRule.objects.bulk_create(
        [
            EarningRule(org=root, action="checkin", amount=5, daily_cap=1, created_by=admin),
            EarningRule(org=root, action="read_article", amount=2, daily_cap=5, created_by=admin),
            EarningRule(org=root, action="vote", amount=10, daily_cap=3, created_by=admin),
            EarningRule(org=root, action="survey", amount=10, daily_cap=3, created_by=admin),
            EarningRule(org=root, action="activity_checkin", amount=20, daily_cap=2, created_by=admin),
        ]
    )
    for i, (title, kind, cost, stock) in enumerate(REWARDS):
        org = root if i % 2 == 0 else streets[i % len(streets)]
        mall.create_reward(
            admin, org, title=title, kind=kind, cost=cost, stock=stock, per_member_limit=2 if cost < 300 else 1
        )
    lottery.create_lottery(
        admin,
        root,
        title="年度职工积分抽奖",
        description="全区职工均可参与，每人限一次；开奖后公布随机种子，中奖结果人人可验证。",
        entry_cost=50,
        prizes=[("一等奖 手机", 1), ("二等奖 电饭煲", 3), ("三等奖 电影票", 20)],
        opens_at=now,
        closes_at=now + dt.timedelta(days=7),
        draw_at=now + dt.timedelta(days=7),
    )
