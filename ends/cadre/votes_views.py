"""Judges' scoring in the cadre end (/c/judge/): the contests I judge, and each candidate's score
per criterion, saved one candidate at a time.

A judge may be any named account (a cadre or a member), so these pages ask for a signed-in
account, not a cadre role. What a score may be, and when scoring is open, is
votes.services.contest's rule; the page shows its answer beside the field.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from django.contrib import messages
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

from core.errors import DomainError, NotFound
from ends.member.votes_views import photo_response
from votes.models import Judge, Poll, PollKind, Score
from votes.services import contest as contest_svc
from votes.services import polls as polls_svc


def _signed_in(view):
    def wrapper(request, *args, **kwargs):
        if not request.user.is_authenticated:
            return redirect(reverse("cadre:login") + "?" + urlencode({"next": request.get_full_path()}))
        return view(request, *args, **kwargs)

    wrapper.__name__ = view.__name__
    wrapper.__doc__ = view.__doc__
    return wrapper


def _my_contests(user):
    return (
        Poll.objects.filter(kind=PollKind.CONTEST, judges__user=user).select_related("org").order_by("-opens_at", "-id")
    )


def _scored_counts(user, polls: list[Poll]) -> dict[int, int]:
    """Candidates I have scored on every criterion, per contest."""
    out: dict[int, int] = {}
    for poll in polls:
        n_criteria = poll.criteria.count()
        if not n_criteria:
            out[poll.pk] = 0
            continue
        per_option: dict[int, int] = {}
        for option_id in Score.objects.filter(judge__poll=poll, judge__user=user).values_list("option_id", flat=True):
            per_option[option_id] = per_option.get(option_id, 0) + 1
        out[poll.pk] = sum(1 for n in per_option.values() if n >= n_criteria)
    return out


@_signed_in
def judge_list(request):
    polls = list(_my_contests(request.user)[:50])
    scored = _scored_counts(request.user, polls)
    rows = [
        {
            "poll": p,
            "status": polls_svc.status_of(p),
            "scored": scored.get(p.pk, 0),
            "options": p.options.count(),
        }
        for p in polls
    ]
    return render(request, "cadre/judge_list.html", {"rows": rows})


def _contest_for_judge(user, pk: int) -> tuple[Poll, Judge]:
    judge = Judge.objects.filter(poll_id=pk, user=user, poll__kind=PollKind.CONTEST).select_related("poll__org").first()
    if judge is None:
        raise Http404
    return judge.poll, judge


def _page_ctx(request, poll: Poll, judge: Judge) -> dict:
    criteria = list(poll.criteria.all())
    scores: dict[tuple[int, int], Decimal] = {
        (s.option_id, s.criterion_id): s.score for s in Score.objects.filter(judge=judge)
    }
    cards = []
    for o in poll.options.all():
        items = [{"criterion": c, "value": scores.get((o.pk, c.pk))} for c in criteria]
        cards.append(
            {
                "option": o,
                "items": items,
                "done": bool(criteria) and all(i["value"] is not None for i in items),
                "errors": {},
                "error": "",
            }
        )
    done = sum(1 for c in cards if c["done"])
    return {
        "poll": poll,
        "criteria": criteria,
        "cards": cards,
        "done": done,
        "total": len(cards),
        "pct": round(100 * done / len(cards)) if cards else 0,
        "status": polls_svc.status_of(poll),
    }


def _parse_scores(post, criteria) -> tuple[dict[int, Decimal], dict[str, str]]:
    """The typed scores by criterion id; a blank or non-number is named by its field."""
    values: dict[int, Decimal] = {}
    errors: dict[str, str] = {}
    for c in criteria:
        raw = (post.get(f"c{c.pk}") or "").strip()
        if not raw:
            errors[str(c.pk)] = _("请填写分数")
            continue
        try:
            value = Decimal(raw)
        except InvalidOperation:
            errors[str(c.pk)] = _("请输入数字")
            continue
        if not value.is_finite():
            errors[str(c.pk)] = _("请输入数字")
            continue
        values[c.pk] = value
    return values, errors


@_signed_in
def judge_scores(request, pk: int):
    poll, judge = _contest_for_judge(request.user, pk)
    if request.method != "POST":
        return render(request, "cadre/judge_scores.html", _page_ctx(request, poll, judge))
    option_id = request.POST.get("option_id", "")
    ctx = _page_ctx(request, poll, judge)
    card = next((c for c in ctx["cards"] if str(c["option"].pk) == option_id), None)
    if card is None:
        raise Http404
    values, errors = _parse_scores(request.POST, ctx["criteria"])
    status = 422
    if not errors:
        try:
            contest_svc.submit_scores(request.user, poll, card["option"].pk, values)
        except DomainError as e:
            if isinstance(e, NotFound):
                raise Http404 from None
            errors = {str(k): str(v) for k, v in e.fields.items()}
            card["error"] = "" if errors else e.message
            status = e.status
        else:
            messages.success(request, _("已保存：%(name)s") % {"name": card["option"].title})
            return redirect(reverse("cadre:judge", args=[poll.pk]) + f"#option-{card['option'].pk}")
    # Keep what was typed, with each message beside its field.
    for item in card["items"]:
        cid = str(item["criterion"].pk)
        item["typed"] = request.POST.get(f"c{cid}", "")
        item["error"] = errors.get(cid) or errors.get(f"c{cid}") or errors.get(item["criterion"].name, "")
    card["failed"] = True
    return render(request, "cadre/judge_scores.html", ctx, status=status)


@_signed_in
def judge_photo(request, pk: int, option_id: int):
    poll, _judge = _contest_for_judge(request.user, pk)
    option = poll.options.filter(pk=option_id).first()
    if option is None:
        raise Http404
    return photo_response(option)
