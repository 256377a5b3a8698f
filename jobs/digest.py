"""Daily digests: one per manager, one each for the COO and the CEO.

A manager's digest covers the escalations of the pods they manage and those they own: open
ones by priority, those at risk (warned, not yet breached), those breached, overdue tasks,
and those resolved since their last digest. Leadership's covers strategic accounts, open
breaches, and what was escalated to them.

Once per person per company-zone day, however often the job runs: the digest's in-app
notification and email carry the key ``digest-YYYY-MM-DD``. A person with nothing to report
gets none unless ``[digest] send_empty = true``.
"""
import datetime as dt

import peewee as pw

from escalate_cli import domain, progress
from escalate_cli.fmt import duration_short, when
from escalate_cli.models import (PRIORITIES, Account, Escalation, Notification, SlaClock, Task,
                                 User)

from .notices import Notices

SECTION_LIMIT = 25
OPEN = domain.OPEN_STATUSES


def _row(app, esc, now, zone):
    state, breached = domain.sla_state(esc, now)
    due = domain.governing_due(esc)
    s = app.get_settings()
    return {
        "code": esc.code, "title": esc.title, "priority": esc.priority,
        "status": domain.status_label(esc), "owner": esc.owner.name if esc.owner_id else "unclaimed",
        "account": esc.account.name if esc.account_id else None,
        "age": duration_short((now - esc.created_at).total_seconds()),
        "sla": "BREACHED" if breached and esc.status != "resolved" else state,
        "due": when(due, zone) if due else None,
        "url": f"{s.base_url.rstrip('/')}/escalations/{esc.code}" if s.base_url else None,
    }


def _escalations(where, order=None, limit=SECTION_LIMIT):
    owner = User.alias()
    query = (Escalation.select(Escalation, owner, Account)
             .join(owner, pw.JOIN.LEFT_OUTER, on=(Escalation.owner == owner.id), attr="owner")
             .switch(Escalation)
             .join(Account, pw.JOIN.LEFT_OUTER, on=(Escalation.account == Account.id), attr="account")
             .where(where)
             .order_by(*(order or (Escalation.priority_rank, Escalation.created_at))))
    return list(query.limit(limit)) if limit else list(query)


def breached_clause(now):
    """Open escalations the breach badge is on (the SQL of :func:`domain.sla_state`)."""
    E = Escalation
    response = (E.response_due < now) & (E.claimed_at.is_null() | (E.claimed_at > E.response_due))
    resolution = E.status.in_(["pending", "in_progress"]) & (E.resolution_due < now)
    escalated = (E.status == "escalated") & (E.escalated_at > E.resolution_due)
    return E.status.in_(["pending", "in_progress", "escalated"]) & (response | resolution | escalated)


def at_risk_clause(now):
    """Warned and not yet breached (nor stopped, nor paused by a hold)."""
    warned = SlaClock.select(SlaClock.escalation).where(
        SlaClock.warned_at.is_null(False) & SlaClock.breached_at.is_null()
        & SlaClock.stopped_at.is_null())
    return Escalation.id.in_(warned) & ~breached_clause(now) & (Escalation.status != "on_hold")


SLA_STATES = (("breached", "Breached"), ("at_risk", "At risk"), ("on_hold", "On hold"),
              ("on_track", "On track"))


def sla_glance(is_open, now, open_total=None):
    """The badge row at the top of a digest: the open escalations in scope by SLA state,
    each counted once (breached, else on hold, else at risk, else on track)."""
    def count(where):
        return Escalation.select().where(is_open & where).count()
    total = count(Escalation.id.is_null(False)) if open_total is None else open_total
    n = {"breached": count(breached_clause(now)),
         "on_hold": count(Escalation.status == "on_hold"),
         "at_risk": count(at_risk_clause(now))}
    n["on_track"] = max(0, total - sum(n.values()))
    return {"total": total,
            "badges": [{"state": key, "label": label, "count": n[key],
                        "percent": round(100 * n[key] / total) if total else 0}
                       for key, label in SLA_STATES]}


def _section(app, where, order=None):
    """(first rows, total) of a section."""
    now, zone = app.now, app.get_settings().zone
    rows = [_row(app, e, now, zone) for e in _escalations(where, order)]
    total = len(rows) if len(rows) < SECTION_LIMIT else Escalation.select().where(where).count()
    return rows, total


def _tasks(where, app, zone):
    now = app.now
    query = Task.select().where((Task.status == "open") & (Task.due_at < now) & where)
    rows = []
    for t in query.order_by(Task.due_at).limit(SECTION_LIMIT):
        rows.append({"title": t.title, "due": when(t.due_at, zone),
                     "overdue_by": duration_short((now - t.due_at).total_seconds()),
                     "assignee": (t.assignee_user.name if t.assignee_user_id else
                                  t.assignee_team.name if t.assignee_team_id else "-"),
                     "escalation": t.escalation.code if t.escalation_id else None})
    return rows, (len(rows) if len(rows) < SECTION_LIMIT else query.count())


def last_digest(user):
    n = (Notification.select(Notification.created_at)
         .where((Notification.user == user.id) & (Notification.kind == "digest"))
         .order_by(Notification.created_at.desc()).first())
    return n.created_at if n else None


def manager_digest(app, user, since):
    """Sections of a manager's digest: first rows and totals, from indexed queries."""
    now, zone = app.now, app.get_settings().zone
    pods = domain.managed_pod_ids(user)
    scope = Escalation.owner == user.id
    if pods:
        scope = scope | Escalation.pod.in_(pods)
    is_open = scope & Escalation.status.in_(list(OPEN))
    counts = dict.fromkeys(PRIORITIES, 0)
    for row in (Escalation.select(Escalation.priority, pw.fn.COUNT(Escalation.id).alias("n"))
                .where(is_open).group_by(Escalation.priority).dicts()):
        counts[row["priority"]] = row["n"]
    task_scope = Task.assignee_user == user.id
    if pods:
        in_pods = Escalation.select(Escalation.id).where(Escalation.pod.in_(pods))
        task_scope = task_scope | Task.escalation.in_(in_pods)
    d = {"by_priority": [{"priority": p, "count": n} for p, n in counts.items()],
         "open_total": sum(counts.values())}
    d["open"] = [_row(app, e, now, zone) for e in _escalations(is_open)]
    d["sla"] = sla_glance(is_open, now, d["open_total"])
    d["breached"], d["breached_total"] = _section(app, is_open & breached_clause(now))
    d["at_risk"], d["at_risk_total"] = _section(app, is_open & at_risk_clause(now))
    d["overdue_tasks"], d["overdue_total"] = _tasks(task_scope, app, zone)
    d["resolved"], d["resolved_total"] = _section(
        app, scope & (Escalation.status == "resolved") & (Escalation.resolved_at > since),
        order=(Escalation.resolved_at,))
    return d


def leadership_digest(app, user, since):
    now = app.now
    is_open = Escalation.status.in_(list(OPEN))
    strategic_ids = Account.select(Account.id).where(Account.strategic == True)  # noqa: E712
    d = {"sla": sla_glance(is_open, now)}
    d["strategic"], d["strategic_total"] = _section(
        app, is_open & Escalation.account.in_(strategic_ids))
    running = SlaClock.select(SlaClock.escalation).where(
        SlaClock.breached_at.is_null(False) & SlaClock.stopped_at.is_null())
    d["breached"], d["breached_total"] = _section(
        app, Escalation.id.in_(running) & breached_clause(now))
    d["escalated"], d["escalated_total"] = _section(
        app, (Escalation.owner == user.id) & (Escalation.status == "escalated"))
    d["resolved"], d["resolved_total"] = _section(
        app, (Escalation.status == "resolved") & (Escalation.resolved_at > since)
        & Escalation.account.in_(strategic_ids), order=(Escalation.resolved_at,))
    return d


SECTIONS = ("open", "at_risk", "breached", "overdue_tasks", "resolved", "strategic", "escalated")


def _empty(sections):
    return not any(sections.get(k) for k in SECTIONS)


def _message(kind, d):
    if kind == "digest":
        top = ", ".join(f"{c['count']} {c['priority']}" for c in d["by_priority"] if c["count"])
        return (f"Daily digest: {d['open_total']} open" + (f" ({top})" if top else "")
                + f", {d['at_risk_total']} at risk, {d['breached_total']} breached, "
                  f"{d['overdue_total']} overdue task(s), {d['resolved_total']} resolved "
                  f"since your last digest")
    return (f"Leadership digest: {d['strategic_total']} open on strategic accounts, "
            f"{d['breached_total']} breached, {d['escalated_total']} escalated to you, "
            f"{d['resolved_total']} resolved on strategic accounts")


class Result:
    def __init__(self):
        self.sent = []
        self.already = 0
        self.empty = 0
        self.warnings = []

    def summary(self):
        return (f"{len(self.sent)} digest(s) sent"
                + (f" ({', '.join(self.sent)})" if self.sent else "")
                + f", {self.already} already sent today, {self.empty} with nothing to report")


def digest(app, tick=None):
    tick = tick or (lambda: None)
    app.db                      # bind the models to the store
    s = app.get_settings()
    now, zone = app.now, s.zone
    day = now.astimezone(zone).date()
    dedupe = f"digest-{day.isoformat()}"
    result = Result()
    people = list(User.select().where(User.role.in_(["manager", "coo", "ceo"])
                                      & (User.active == True))  # noqa: E712
                  .order_by(User.id))
    with progress.tracking("Digests", len(people)) as bar:
        for user in people:
            _one(app, user, s, now, zone, day, dedupe, result)
            bar.update(1)
            tick()
    return result


def _one(app, user, s, now, zone, day, dedupe, result):
    """One person's digest, unless already sent today or empty."""
    key = f"{dedupe}:-:{user.id}"
    if Notification.select().where(Notification.dedupe_key == key).exists():
        result.already += 1
        return
    since = last_digest(user) or (now - dt.timedelta(days=1))
    leader = user.role in ("coo", "ceo")
    sections = leadership_digest(app, user, since) if leader else manager_digest(app, user, since)
    if _empty(sections) and not s.digest_send_empty:
        result.empty += 1
        return
    template = "digest-leadership" if leader else "digest"
    message = _message(template, sections)
    context = dict(sections, recipient=user.name, company=s.company,
                   date=f"{day:%A, %B} {day.day}, {day.year}", since=when(since, zone),
                   summary=message, role=user.role.upper())
    notices = Notices(app)
    notices.notify(user, "digest", message, None, email=(template, context), dedupe=dedupe)
    with domain.atomic():
        notices.flush()
    result.sent.append(user.login)
