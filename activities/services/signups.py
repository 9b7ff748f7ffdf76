"""Signing up, the waitlist, cancelling, the sign-up list, its export and messages to participants.

Seats are a database guarantee. A sign-up is one transaction of a few plain statements (the
hot path of a rush; see points/services/ledger.py for why no ORM there):

1. before any transaction, one read: the activity, its org path, the person's live sign-up, their
   club membership and the org's budget account. Refusals (not found, not eligible, already
   signed up, outside the window, full without a waitlist) answer from it without taking a lock;
2. `UPDATE activity SET confirmed_count = confirmed_count + 1 WHERE … confirmed_count < capacity`:
   the conditional update decides who gets a seat, and the CHECK confirmed_count <= capacity
   backs it. When it changes nothing and the activity has a waitlist, `waitlist_count + 1`
   instead (its new value is the person's position);
3. for a points cost, the ledger posting (member → the org's budget), only for a confirmed seat;
4. `INSERT signup … ON CONFLICT DO NOTHING`: the partial unique index (one live sign-up per
   person) turns a parallel second sign-up into `already_signed_up`, rolling back step 2.

On PostgreSQL a free seat without a points cost is steps 2 and 4 in one self-committing statement
(a data-modifying WITH, as ballots are cast): the activity row every sign-up of a rush takes is
then held for one statement, not across the round trips to a COMMIT. And once a process has read an
activity that needs nothing but a seat (open to everyone or to its subtree's certified members, no
extra fields, no points cost, inside the window), its next sign-ups for a few seconds skip step 1:
that statement re-checks on the live row what the read said, and anything else is read as above.

The activity row is taken first, so on PostgreSQL sign-ups of one activity queue on it and get
their ids in that order: the waitlist, ordered by id, is first come first served. Every
transaction that touches an activity takes its row first (sign-ups, cancellations, check-ins,
edits, cancelling the activity), then sign-up rows, then points accounts (members by id, then
budgets, as the ledger does), so none waits on another in a cycle.

A points cost is paid when a seat is confirmed: at sign-up, or at promotion from the waitlist
(a waitlisted person who can no longer pay is dropped from the waitlist and told). It goes to
the activity org's budget account and comes back from it on cancellation, so
`manage.py reconcile_points` covers it like every other movement.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import re

from django.db import connection, transaction
from django.db.models import Case, F, IntegerField, QuerySet, Value, When
from django.utils import timezone
from django.utils.translation import gettext as _

from core import audit, pii, spreadsheets
from core.errors import DomainError, Forbidden, Invalid, NotFound
from core.recent import Recent
from core.sql import INTEGRITY_ERRORS, DriverCursor, aware, loaded
from members.services import member_of, standing_of
from notifications.services.notices import notify
from orgs import scoping
from points.models import Account, AccountKind, Movement, MovementKind
from points.services import ledger

from ..models import Activity, ActivityStatus, Eligibility, Signup, SignupStatus
from . import fields as checks
from .errors import ActivityErrors

MAX_ID = 2**62


# --- plain statements ------------------------------------------------------------------------------


_LOAD_SQL = (
    "SELECT a.id, a.status, a.eligibility, a.org_id, o.path, a.club_id, a.starts_at, a.ends_at,"
    " a.signup_opens_at, a.signup_closes_at, a.capacity, a.waitlist, a.confirmed_count, a.extra_fields,"
    " a.points_cost, a.title, a.organizer_id, a.created_by_id, o.name, o.depth,"
    " (SELECT s.status FROM activities_signup s"
    "   WHERE s.activity_id = a.id AND s.user_id = %s AND s.status <> 'cancelled'),"
    " (SELECT 1 FROM clubs_clubmembership cm JOIN clubs_club c ON c.id = cm.club_id"
    "   WHERE cm.club_id = a.club_id AND cm.user_id = %s AND cm.status = 'active' AND c.status = 'active'),"
    " (SELECT pa.id FROM points_account pa WHERE pa.kind = 'budget' AND pa.org_id = a.org_id)"
    " FROM activities_activity a JOIN orgs_org o ON o.id = a.org_id WHERE a.id = %s"
)
_SEAT_SQL = (
    "UPDATE activities_activity SET confirmed_count = confirmed_count + 1"
    " WHERE id = %s AND status = 'published' AND confirmed_count < capacity"
)
_WAIT_SQL = (
    "UPDATE activities_activity SET waitlist_count = waitlist_count + 1"
    " WHERE id = %s AND status = 'published' RETURNING waitlist_count"
)
_INSERT_SQL = (
    "INSERT INTO activities_signup (activity_id, user_id, status, answers, created_at, confirmed_at,"
    " cancelled_by_activity, checkin_method, payment_id) VALUES (%s, %s, %s, {json}, %s, %s, %s, '', %s)"
    " ON CONFLICT DO NOTHING RETURNING id"
)
# PostgreSQL, a seat and its sign-up in one self-committing statement: the activity row, which every
# sign-up of a rush takes, is held for this statement only, not across further round trips to a
# COMMIT. A second live sign-up of the person breaks the partial unique index, and the violation
# undoes the seat with the rest of the statement. No seat (full, or no longer published): no row.
_PG_SEAT_SIGNUP_SQL = (
    "WITH s AS (UPDATE activities_activity SET confirmed_count = confirmed_count + 1"
    " WHERE id = %(activity)s AND status = 'published' AND confirmed_count < capacity RETURNING id)"
    " INSERT INTO activities_signup (activity_id, user_id, status, answers, created_at, confirmed_at,"
    " cancelled_by_activity, checkin_method, payment_id)"
    " SELECT s.id, %(user)s, 'confirmed', CAST(%(answers)s AS jsonb), %(at)s, %(at)s, false, '', NULL FROM s"
    " RETURNING id"
)
# PostgreSQL, a rush's sign-up without its read: the activity as last read in this process (for a
# few seconds, see _remember) says the sign-up needs nothing but a seat; this statement then checks
# on the live row everything that decision used (published, the window, no points cost, no extra
# fields, the eligibility and the org), so an edit made since is never missed: it takes nothing,
# and the sign-up goes the usual way. A second live sign-up of the person breaks the partial
# unique index, as in _PG_SEAT_SIGNUP_SQL.
_PG_FAST_SIGNUP_SQL = (
    "WITH s AS (UPDATE activities_activity SET confirmed_count = confirmed_count + 1"
    " WHERE id = %(activity)s AND status = 'published' AND confirmed_count < capacity"
    " AND signup_opens_at <= %(at)s AND %(at)s < signup_closes_at AND points_cost = 0"
    " AND COALESCE(extra_fields, '[]'::jsonb) = '[]'::jsonb AND eligibility = %(eligibility)s"
    " AND org_id = %(org)s RETURNING id)"
    " INSERT INTO activities_signup (activity_id, user_id, status, answers, created_at, confirmed_at,"
    " cancelled_by_activity, checkin_method, payment_id)"
    " SELECT s.id, %(user)s, 'confirmed', '{}'::jsonb, %(at)s, %(at)s, false, '', NULL FROM s"
    " RETURNING id"
)
_INSERT_BY_VENDOR = {
    "postgresql": _INSERT_SQL.format(json="CAST(%s AS jsonb)"),
    "sqlite": _INSERT_SQL.format(json="%s"),
}


@dataclasses.dataclass(slots=True)
class ActivityRow:
    """What signing up needs to know, read in one statement."""

    id: int
    status: str
    eligibility: str
    org_id: int
    org_path: str
    club_id: int | None
    starts_at: dt.datetime
    ends_at: dt.datetime
    signup_opens_at: dt.datetime
    signup_closes_at: dt.datetime
    capacity: int
    waitlist: bool
    confirmed_count: int
    extra_fields: list
    points_cost: int
    title: str
    organizer_id: int
    created_by_id: int
    org_name: str
    org_depth: int
    my_status: str | None
    club_member: bool
    budget_account_id: int | None

    def org(self):
        from orgs.models import Org

        org = Org(id=self.org_id, path=self.org_path, name=self.org_name, depth=self.org_depth)
        org._state.adding = False
        return org


@dataclasses.dataclass(frozen=True, slots=True)
class _Open:
    """An activity a sign-up could take a seat in without reading it first (PostgreSQL)."""

    eligibility: str
    org_id: int
    org_path: str


_open: Recent[int, _Open] = Recent(5.0, size=4096)


def _remember(a: ActivityRow, now: dt.datetime) -> None:
    """After a read: whether the next sign-ups may take the one-statement way. Only the org's path is
    trusted from here without a check on the live row (an org moved in the tree is seen within
    _open.seconds)."""
    if (
        a.status == ActivityStatus.PUBLISHED
        and a.signup_opens_at <= now < a.signup_closes_at
        and a.confirmed_count < a.capacity
        and not a.points_cost
        and not a.extra_fields
        and a.eligibility in (Eligibility.EVERYONE, Eligibility.MEMBERS)
    ):
        _open.put(a.id, _Open(a.eligibility, a.org_id, a.org_path))
    else:
        _open.forget(a.id)


def _fast_way(aid: int, standing, answers: object) -> _Open | None:
    """The remembered activity if this sign-up needs nothing but a seat in it (as the rules below
    would say: open to everyone, or to the certified members of its subtree; no answers)."""
    o = _open.get(aid)
    if o is None or answers not in (None, {}):
        return None
    return o if eligibility_error(o.eligibility, o.org_path, False, standing) is None else None


def _load(db: DriverCursor, activity_id: int, user_id: int) -> ActivityRow | None:
    row = db.run(_LOAD_SQL, [user_id, user_id, activity_id]).fetchone()
    if row is None:
        return None
    extra = row[13]
    if isinstance(extra, str | bytes):
        extra = json.loads(extra or "[]")
    return ActivityRow(
        id=row[0],
        status=row[1],
        eligibility=row[2],
        org_id=row[3],
        org_path=row[4],
        club_id=row[5],
        starts_at=aware(row[6]),
        ends_at=aware(row[7]),
        signup_opens_at=aware(row[8]),
        signup_closes_at=aware(row[9]),
        capacity=row[10],
        waitlist=bool(row[11]),
        confirmed_count=row[12],
        extra_fields=extra or [],
        points_cost=row[14],
        title=row[15],
        organizer_id=row[16],
        created_by_id=row[17],
        org_name=row[18],
        org_depth=row[19],
        my_status=row[20],
        club_member=row[21] is not None,
        budget_account_id=row[22],
    )


# --- rules (pure: pages can ask them without writing anything) -------------------------------------


def _reaches(user, a: ActivityRow, standing) -> bool:
    if user.pk in (a.organizer_id, a.created_by_id):
        return True
    if any(a.org_path.startswith(p) for p, _r, _o in scoping.cadre_roles(user)):
        return True
    if a.status in (ActivityStatus.PROPOSED, ActivityStatus.REJECTED):
        return False
    return (
        a.eligibility == Eligibility.EVERYONE
        or (standing.org_path is not None and standing.org_path.startswith(a.org_path))
        or a.club_member
    )


def eligibility_error(eligibility: str, org_path: str, club_member: bool, standing) -> Forbidden | None:
    """403 not_eligible with the reason, or None."""
    if eligibility == Eligibility.MEMBERS:
        if not standing.certified or standing.org_path is None:
            return Forbidden(ActivityErrors.NOT_ELIGIBLE, _("该活动仅限认证会员报名，请先完成实名认证"))
        if not standing.org_path.startswith(org_path):
            return Forbidden(ActivityErrors.NOT_ELIGIBLE, _("您所在的工会不在本活动的报名范围内"))
    elif eligibility == Eligibility.CLUB and not club_member:
        return Forbidden(ActivityErrors.NOT_ELIGIBLE, _("该活动仅限兴趣联盟成员报名"))
    return None


def window_error(status: str, opens: dt.datetime, closes: dt.datetime, now: dt.datetime) -> DomainError | None:
    if status == ActivityStatus.CANCELLED:
        return DomainError(ActivityErrors.SIGNUP_CLOSED, _("活动已取消"))
    if status != ActivityStatus.PUBLISHED:
        return DomainError(ActivityErrors.SIGNUP_CLOSED, _("活动尚未发布"))
    if now < opens:
        return DomainError(ActivityErrors.SIGNUP_NOT_OPEN, _("报名尚未开始"))
    if now >= closes:
        return DomainError(ActivityErrors.SIGNUP_CLOSED, _("报名已截止"))
    return None


def _full() -> DomainError:
    return DomainError(ActivityErrors.FULL, _("名额已满"))


# --- the hot path ----------------------------------------------------------------------------------


def sign_up(user, activity_id: object, answers: object = None, *, ip: str | None = None) -> Signup:
    """Sign the person up: confirmed while seats last, then waitlisted (when the activity keeps a
    waitlist), or raise: 404 unknown/out of reach; 403 not_eligible; 409 already_signed_up | full |
    signup_not_open | signup_closed | insufficient_points; 422 answers_required | invalid_answers.

    Never more confirmed than seats and never two live sign-ups per person, however many arrive
    at once (see the module docstring); a refusal changes nothing."""
    try:
        aid = int(activity_id)
    except (TypeError, ValueError, OverflowError):
        raise NotFound(_("未找到该活动")) from None
    if not 0 < aid < MAX_ID:
        raise NotFound(_("未找到该活动"))
    standing = standing_of(user)
    now = timezone.now()
    with DriverCursor() as db:  # one cursor for the read and the transaction
        if db.pg and (known := _fast_way(aid, standing, answers)) is not None:
            signup_id = _pg_fast_signup(db, aid, user.pk, known, now)
            if signup_id is not None:
                return _loaded_signup(signup_id, aid, user, SignupStatus.CONFIRMED, {}, now, None, None)
            _open.forget(aid)  # full, or changed since: read it
        a = _load(db, aid, user.pk)
        if db.pg and a is not None:
            _remember(a, now)
        if a is None or not _reaches(user, a, standing):
            raise NotFound(_("未找到该活动"))
        if a.status != ActivityStatus.PUBLISHED:
            error = window_error(a.status, a.signup_opens_at, a.signup_closes_at, now)
        elif a.my_status is not None:
            error = DomainError(ActivityErrors.ALREADY_SIGNED_UP, _("您已报名该活动"))
        else:
            error = eligibility_error(a.eligibility, a.org_path, a.club_member, standing) or window_error(
                a.status, a.signup_opens_at, a.signup_closes_at, now
            )
        if error is not None:
            raise error
        answers = checks.clean_answers(a.extra_fields, answers)
        if a.confirmed_count >= a.capacity and not a.waitlist:
            raise _full()  # answered from the read: no lock taken for the many refusals of a rush
        at = db.dt(now)
        answers_json = json.dumps(answers, ensure_ascii=False) if answers else "{}"
        if db.pg and not a.points_cost:
            signup_id = _pg_seat_and_signup(db, aid, user.pk, answers_json, now)
            if signup_id is not None:
                return _loaded_signup(signup_id, aid, user, SignupStatus.CONFIRMED, answers, now, None, None)
            # No seat: the transaction below tells a waitlist place, full and cancelled apart.
        insert = _INSERT_BY_VENDOR["postgresql" if db.pg else "sqlite"]
        with transaction.atomic():  # as short as possible: on SQLite it holds the one writer lock
            position = None
            if db.run(_SEAT_SQL, [aid]).rowcount == 1:
                status = SignupStatus.CONFIRMED
            elif a.waitlist:
                row = db.run(_WAIT_SQL, [aid]).fetchone()
                if row is None:
                    raise DomainError(ActivityErrors.SIGNUP_CLOSED, _("活动已取消"))
                status, position = SignupStatus.WAITLISTED, row[0]
            else:
                # Full, or cancelled since the read (the seat UPDATE asks for a published activity).
                state = db.run("SELECT status FROM activities_activity WHERE id = %s", [aid]).fetchone()
                if state and state[0] == ActivityStatus.CANCELLED:
                    raise DomainError(ActivityErrors.SIGNUP_CLOSED, _("活动已取消"))
                raise _full()
            payment = None
            if status == SignupStatus.CONFIRMED and a.points_cost:
                payment = _pay(a, user, a.points_cost)
            row = db.run(
                insert,
                [
                    aid,
                    user.pk,
                    status.value,
                    answers_json,
                    at,
                    at if status == SignupStatus.CONFIRMED else None,
                    False,
                    payment.pk if payment else None,
                ],
            ).fetchone()
            if row is None:  # a parallel sign-up of the same person won; this one leaves no trace
                raise DomainError(ActivityErrors.ALREADY_SIGNED_UP, _("您已报名该活动"))
    return _loaded_signup(row[0], aid, user, status, answers, now, payment, position)


def _pg_fast_signup(db: DriverCursor, aid: int, user_id: int, known: _Open, now: dt.datetime) -> int | None:
    """The new sign-up's id, or None when the live row did not allow it (see _PG_FAST_SIGNUP_SQL)."""
    params = {"activity": aid, "user": user_id, "at": now, "eligibility": known.eligibility, "org": known.org_id}
    return _pg_seat_statement(db, _PG_FAST_SIGNUP_SQL, params)


def _pg_seat_and_signup(db: DriverCursor, aid: int, user_id: int, answers_json: str, now: dt.datetime) -> int | None:
    """The new sign-up's id when a seat was free, None when none was (see _PG_SEAT_SIGNUP_SQL)."""
    params = {"activity": aid, "user": user_id, "answers": answers_json, "at": now}
    return _pg_seat_statement(db, _PG_SEAT_SIGNUP_SQL, params)


def _pg_seat_statement(db: DriverCursor, sql: str, params: dict) -> int | None:
    """Run one of the seat-and-row statements: the new sign-up's id, or None when it took no seat."""
    try:
        # Inside a caller's transaction (an Idempotency-Key request) a violation must not leave it
        # aborted: a savepoint. Otherwise the statement commits by itself.
        with transaction.atomic() if connection.in_atomic_block else contextlib.nullcontext():
            row = db.run(sql, params).fetchone()
    except INTEGRITY_ERRORS:  # signed up already, or a parallel sign-up of the person won; the seat went back
        raise DomainError(ActivityErrors.ALREADY_SIGNED_UP, _("您已报名该活动")) from None
    return row[0] if row else None


def _loaded_signup(pk, activity_id, user, status, answers, now, payment, position) -> Signup:
    """The row just written, as a Signup, without Model.__init__ (a fifth of the sign-up's own
    time in a rush): the values are the ones the INSERT used, in the shape `from_db` would give."""
    values = {
        "id": pk,
        "activity_id": activity_id,
        "user_id": user.pk,
        "status": status,
        "answers": answers,
        "created_at": now,
        "confirmed_at": now if status == SignupStatus.CONFIRMED else None,
        "cancelled_at": None,
        "cancelled_by_activity": False,
        "payment_id": payment.pk if payment else None,
        "refund_id": None,
        "checked_in_at": None,
        "checkin_method": "",
        "reward_id": None,
        "position": position,
    }
    return loaded(Signup, values, user=user, **({"payment": payment} if payment is not None else {}))


def _pay(a: ActivityRow | Activity, user, cost: int) -> Movement:
    """The points cost from the member to the activity org's budget (insufficient_points when short)."""
    account_id = getattr(user, "points_account_id", None)
    account = Account(pk=account_id, kind=AccountKind.MEMBER) if account_id else ledger.member_account(user)
    org = a.org() if isinstance(a, ActivityRow) else a.org
    budget_id = getattr(a, "budget_account_id", None)
    budget = Account(pk=budget_id, kind=AccountKind.BUDGET) if budget_id else ledger.budget_account(org)
    try:
        return ledger.post(
            MovementKind.REDEEM,
            [(account, budget, cost)],
            reason=_("活动报名：%(title)s") % {"title": a.title},
            actor=user,
            org=org,
            source=f"activity:{a.id}",
        )
    except DomainError as e:
        if e.code == ledger.PointsErrors.INSUFFICIENT_POINTS:
            raise DomainError(
                ActivityErrors.INSUFFICIENT_POINTS,
                _("积分不足：报名需要%(n)s积分") % {"n": cost},
            ) from None
        raise


# --- the waitlist, cancelling, refunds -------------------------------------------------------------


def _lock_member_accounts(user_ids: list[int]) -> dict[int, Account]:
    """Member accounts of these people, locked in id order (the ledger's order) before any posting
    of a transaction that moves points for several of them."""
    accounts = ledger.member_accounts(sorted(set(user_ids)))
    if connection.vendor == "postgresql" and accounts:
        ids = sorted(a.pk for a in accounts.values())
        list(Account.objects.select_for_update().filter(pk__in=ids).order_by("pk").values_list("pk", flat=True))
    return accounts


def refund_many(activity: Activity, signups: list[Signup], *, actor=None) -> Movement | None:
    """Give back the points cost of these sign-ups from the org's budget, as one movement."""
    if not signups or not activity.points_cost:
        return None
    accounts = _lock_member_accounts([s.user_id for s in signups])
    budget = ledger.budget_account(activity.org)
    try:
        mv = ledger.post(
            MovementKind.REFUND,
            [(budget, accounts[s.user_id], activity.points_cost) for s in signups],
            reason=_("活动报名退还：%(title)s") % {"title": activity.title},
            actor=actor,
            org=activity.org,
            source=f"activity:{activity.pk}",
        )
    except DomainError as e:
        if e.code == ledger.PointsErrors.INSUFFICIENT_BUDGET:
            raise DomainError(
                ActivityErrors.INSUFFICIENT_BUDGET, _("本工会积分预算不足，无法退还报名积分，请先补充预算")
            ) from None
        raise
    Signup.objects.filter(pk__in=[s.pk for s in signups]).update(refund=mv)
    return mv


def promote(activity: Activity, seats: int) -> list[Signup]:
    """Confirm up to `seats` people from the head of the waitlist (first come, first served), in
    the caller's transaction, which holds the activity row. With a points cost each pays now; one
    who cannot is dropped from the waitlist. The promoted are told. Returns them."""
    if seats <= 0:
        return []
    batch = list(
        Signup.objects.select_for_update()
        .filter(activity=activity, status=SignupStatus.WAITLISTED)
        .order_by("id")[: seats + (10 if activity.points_cost else 0)]
    )
    if activity.points_cost:
        _lock_member_accounts([s.user_id for s in batch])
    now = timezone.now()
    promoted: list[Signup] = []
    dropped: list[Signup] = []
    for s in batch:
        if len(promoted) == seats:
            break
        payment = None
        if activity.points_cost:
            try:
                with transaction.atomic():
                    payment = _pay(activity, s.user, activity.points_cost)
            except DomainError as e:
                if e.code != ActivityErrors.INSUFFICIENT_POINTS:
                    raise
                dropped.append(s)
                continue
        s.status, s.confirmed_at, s.payment = SignupStatus.CONFIRMED, now, payment
        s.save(update_fields=["status", "confirmed_at", "payment"])
        promoted.append(s)
    if dropped:
        Signup.objects.filter(pk__in=[s.pk for s in dropped]).update(status=SignupStatus.CANCELLED, cancelled_at=now)
        notify(
            [s.user_id for s in dropped],
            kind="activity.waitlist_dropped",
            title=_("候补已取消：%(title)s") % {"title": activity.title},
            body=_("轮到您递补时积分不足（需要%(n)s积分），候补已自动取消") % {"n": activity.points_cost},
            url=f"/m/activities/{activity.pk}/",
            ref=f"activity:{activity.pk}",
        )
    if promoted or dropped:
        Activity.objects.filter(pk=activity.pk).update(
            confirmed_count=F("confirmed_count") + len(promoted),
            waitlist_count=F("waitlist_count") - len(promoted) - len(dropped),
        )
        activity.confirmed_count += len(promoted)
        activity.waitlist_count -= len(promoted) + len(dropped)
    if promoted:
        local = timezone.localtime(activity.starts_at)
        notify(
            [s.user_id for s in promoted],
            kind="activity.promoted",
            title=_("候补成功：%(title)s") % {"title": activity.title},
            body=_("您已由候补转为报名成功。活动时间：%(when)s") % {"when": local.strftime("%Y-%m-%d %H:%M")}
            + (_("；已扣除%(n)s积分") % {"n": activity.points_cost} if activity.points_cost else ""),
            url=f"/m/activities/{activity.pk}/",
            ref=f"activity:{activity.pk}",
        )
    return promoted


def cancel_signup(user, activity_id: object) -> Signup | None:
    """Cancel the person's sign-up. A confirmed one only until the activity's cut-off (409
    cancel_closed after it, or once checked in); a waitlisted one until the start. A freed seat
    goes to the first on the waitlist in the same transaction; the points cost comes back.
    Returns the promoted sign-up, if any."""
    from .activities import activity_for_user

    activity = activity_for_user(user, activity_id)
    with transaction.atomic():
        activity = Activity.objects.select_for_update(of=("self",)).select_related("org").get(pk=activity.pk)
        signup = (
            Signup.objects.select_for_update()
            .filter(activity=activity, user=user)
            .exclude(status=SignupStatus.CANCELLED)
            .first()
        )
        if signup is None:
            raise NotFound(_("您没有报名该活动"), code=ActivityErrors.NOT_SIGNED_UP)
        now = timezone.now()
        if signup.checked_in_at is not None:
            raise DomainError(ActivityErrors.CANCEL_CLOSED, _("已签到，不能取消报名"))
        if signup.status == SignupStatus.CONFIRMED and now >= activity.cancel_until:
            raise DomainError(ActivityErrors.CANCEL_CLOSED, _("已过取消报名截止时间"))
        if now >= activity.starts_at:
            raise DomainError(ActivityErrors.CANCEL_CLOSED, _("活动已开始，不能取消报名"))
        Signup.objects.filter(pk=signup.pk).update(status=SignupStatus.CANCELLED, cancelled_at=now)
        promoted: list[Signup] = []
        if signup.status == SignupStatus.CONFIRMED:
            if signup.payment_id and not signup.refund_id:
                refund_many(activity, [signup], actor=user)
            Activity.objects.filter(pk=activity.pk).update(confirmed_count=F("confirmed_count") - 1)
            activity.confirmed_count -= 1
            if activity.waitlist_count:
                promoted = promote(activity, activity.capacity - activity.confirmed_count)
        else:
            Activity.objects.filter(pk=activity.pk).update(waitlist_count=F("waitlist_count") - 1)
    return promoted[0] if promoted else None


# --- reads -----------------------------------------------------------------------------------------


def waitlist_position(signup: Signup | None) -> int | None:
    """1 for the head of the waitlist; None when the sign-up is not waitlisted."""
    if signup is None or signup.status != SignupStatus.WAITLISTED:
        return None
    return Signup.objects.filter(
        activity_id=signup.activity_id, status=SignupStatus.WAITLISTED, id__lte=signup.pk
    ).count()


def my_signup(user, activity: Activity) -> Signup | None:
    """The person's live sign-up, else their latest cancelled one, else None."""
    if not getattr(user, "is_authenticated", False):
        return None
    return Signup.objects.filter(activity_id=activity.pk, user_id=user.pk).order_by("-id").first()


_ORDER = Case(
    When(status=SignupStatus.CONFIRMED, then=Value(0)),
    When(status=SignupStatus.WAITLISTED, then=Value(1)),
    default=Value(2),
    output_field=IntegerField(),
)


def _require_manager(actor, activity: Activity) -> None:
    from .activities import can_manage, reaches

    if can_manage(actor, activity):
        return
    if reaches(actor, activity):
        raise Forbidden(ActivityErrors.NOT_ALLOWED, _("只有活动组织者或工会干部可以查看报名名单"))
    raise NotFound(_("未找到该活动"))


def signups_of(actor, activity: Activity, *, status: str | None = None) -> QuerySet[Signup]:
    """The sign-up list for the organizer or a cadre covering the org: confirmed first, then the
    waitlist in order, then cancelled ones; each in sign-up order."""
    _require_manager(actor, activity)
    qs = Signup.objects.filter(activity_id=activity.pk).select_related("user", "user__member__org")
    if status:
        qs = qs.filter(status=status)
    return qs.order_by(_ORDER, "id")


_PHONE_RE = re.compile(r"(?<!\d)(1[3-9]\d{9})(?!\d)")
_ID_RE = re.compile(r"(?<![0-9Xx])(\d{17}[0-9Xx])(?![0-9Xx])")


def mask_text(text: str) -> str:
    """A member's answer as shown to organizers: any mobile or ID number in it masked."""
    text = _ID_RE.sub(lambda m: pii.mask_id_number(m.group(1)), str(text))
    return _PHONE_RE.sub(lambda m: pii.mask_phone(m.group(1)), text)


def answers_for_display(activity: Activity, signup: Signup) -> list[tuple[str, str]]:
    """(label, masked answer) for each of the activity's extra fields."""
    answers = signup.answers or {}
    return [
        (f.get("label", f.get("key")), mask_text(answers.get(f.get("key"), ""))) for f in activity.extra_fields or []
    ]


def export_signups_xlsx(actor, activity: Activity, *, ip: str | None = None) -> bytes:
    """The sign-up list as .xlsx: names, masked phones, union, status, waitlist position, answers
    (masked), sign-up and check-in times. The export is written to the audit log."""
    rows = list(signups_of(actor, activity))
    labels = [f.get("label", f.get("key")) for f in activity.extra_fields or []]
    header = [_("序号"), _("姓名"), _("手机号"), _("所在工会"), _("状态"), _("候补顺位"), _("报名时间")]
    header += labels + [_("签到时间"), _("签到方式")]
    table: list[list] = [header]
    status_names = dict(SignupStatus.choices)
    method_names = {"qr": _("扫码签到"), "card": _("会员证核验")}
    position = 0

    def when(value) -> str:
        return timezone.localtime(value).strftime("%Y-%m-%d %H:%M") if value else ""

    for n, s in enumerate(rows, start=1):
        member = member_of(s.user)
        if s.status == SignupStatus.WAITLISTED:
            position += 1
        table.append(
            [
                n,
                (member.name if member else "") or s.user.name,
                s.user.phone_masked,
                member.org.name if member else "",
                str(status_names.get(s.status, s.status)),
                position if s.status == SignupStatus.WAITLISTED else "",
                when(s.created_at),
                *[answer for _label, answer in answers_for_display(activity, s)],
                when(s.checked_in_at),
                str(method_names.get(s.checkin_method, "")),
            ]
        )
    widths = [max(10, min(30, len(str(title)) * 2 + 4)) for title in header]
    data = spreadsheets.xlsx_bytes(table, title=_("报名名单"), widths=widths, freeze_header=True)
    audit.record(
        actor,
        "activity.export",
        org=activity.org,
        target=activity,
        summary=f"{activity.title} · {len(rows)}行",
        ip=ip,
    )
    return data


def message_participants(
    actor,
    activity: Activity,
    *,
    title: object,
    body: object,
    statuses: tuple[str, ...] | list[str] = (SignupStatus.CONFIRMED,),
    ip: str | None = None,
) -> int:
    """Send a notice to the activity's participants (confirmed by default; waitlisted too if
    asked), through the notification outbox; returns how many people it went to."""
    from .activities import _require_edit, member_url

    _require_edit(actor, activity)
    title = str(title or "").strip()
    body = str(body or "").strip()
    problems = {}
    if not title or len(title) > 100:
        problems["title"] = _("请填写标题（不超过100字）")
    if not body or len(body) > 2000:
        problems["body"] = _("请填写内容（不超过2000字）")
    statuses = tuple(str(s) for s in statuses or ())
    if not statuses or not set(statuses) <= {SignupStatus.CONFIRMED, SignupStatus.WAITLISTED}:
        problems["statuses"] = _("请选择发送对象")
    if problems:
        code = ActivityErrors.INVALID
        message = "；".join(problems.values())
        raise Invalid(code, message, fields=problems)
    people = Signup.objects.filter(activity_id=activity.pk, status__in=statuses).values_list("user_id", flat=True)
    with transaction.atomic():
        n = notify(
            people,
            kind="activity.message",
            title=title,
            body=body,
            url=member_url(activity),
            ref=f"activity:{activity.pk}",
        )
        audit.record(
            actor,
            "activity.message",
            org=activity.org,
            target=activity,
            summary=f"{activity.title} · {title} · {n}人",
            ip=ip,
        )
    return n


def signup_counts(activity: Activity) -> dict[str, int]:
    """Live counts straight from the sign-up rows (the stored counters must equal them)."""
    from django.db.models import Count

    got = dict(Signup.objects.filter(activity_id=activity.pk).values_list("status").annotate(n=Count("id")).order_by())
    return {s: got.get(s, 0) for s in SignupStatus.values}


def signup_blocker(user, activity: Activity) -> DomainError | None:
    """Why the person could not sign up right now (or None), for pages that grey out a button;
    sign_up itself decides (seats and the person's own sign-up are its business)."""
    from .activities import my_club_ids

    standing = standing_of(user)
    member = activity.club_id in my_club_ids(user) if activity.club_id else False
    return (
        window_error(activity.status, activity.signup_opens_at, activity.signup_closes_at, timezone.now())
        if activity.status != ActivityStatus.PUBLISHED
        else (
            eligibility_error(activity.eligibility, activity.org.path, member, standing)
            or window_error(activity.status, activity.signup_opens_at, activity.signup_closes_at, timezone.now())
        )
    )
