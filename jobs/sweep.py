"""The SLA sweep: warnings and breaches, each notified exactly once.

How it finds work: every open clock has a ``next_check_at`` (its warning time, then its due
time; null once stopped, breached or paused), indexed. The sweep reads the clocks whose
``next_check_at`` has come, in keyset-paged batches joined to the few escalation columns it
needs, so its cost follows the number of clocks it acts on, not the number of open
escalations.

How it stays exactly-once: in each batch's transaction it *claims* the warnings and breaches
with conditional updates (``... WHERE warned_at IS NULL`` / ``breached_at IS NULL``, with
``FOR UPDATE SKIP LOCKED`` on PostgreSQL) that return the rows this run won; only those are
notified. Behind that, every event, notification and outbox row carries a unique key, and
the job runs under a lock (:mod:`jobs.locks`): three independent guards.

Who is told: a warning goes to the owner, or to the pod manager while unclaimed; a breach
goes to the same person and to the role of the SLA table (CEO for critical, COO for high and
medium; ``Policy.escalate_to``). Critical notices go at once, by email and SMS; others found
outside business hours wait for the next business start (``[jobs] after_hours``).

After an outage: a warning or breach whose moment passed more than ``catch_up_after`` ago
is *late*. Late ones are recorded one by one (events, timeline) but each person receives one
consolidated message for the whole run. ``backfill`` records without telling anyone (a first
run on an existing database).
"""
import datetime as dt
import functools
import uuid
from dataclasses import dataclass, field

import peewee as pw

from escalate_cli import domain, progress
from escalate_cli.fmt import when as _when_uncached
from escalate_cli.models import Account, Escalation, Pod, SlaClock, User

from . import timing
from .conf import job_settings
from .notices import Notices

UTC = dt.timezone.utc
when = functools.lru_cache(maxsize=4096)(_when_uncached)   # each due time is shown many times
ACTIVE = ("pending", "in_progress")
WARNING, BREACH = "warning", "breach"
CATCH_UP_LIMIT = 100       # items listed in one catch-up email; the rest are counted


@dataclass
class Item:
    """A clock whose moment has come, with what the sweep is to do about it."""
    clock_id: int
    kind: str
    warn_at: dt.datetime | None
    due_at: dt.datetime | None
    next_check_at: dt.datetime
    esc_id: int
    code: str
    title: str
    priority: str
    status: str
    owner_id: int | None
    pod_id: int | None
    account: str | None
    action: str | None = None
    at: dt.datetime | None = None       # the moment the warning or breach happened
    late: bool = False
    recipients: list = field(default_factory=list)


def classify(item, now, catch_up_after):
    """Decide an item's action from its clock and status (pure)."""
    if item.status not in ACTIVE or (item.kind == "response" and item.status != "pending"):
        item.action = None                 # paused, answered, escalated or resolved: not ours
    elif item.due_at is not None and item.due_at <= now:
        item.action, item.at = BREACH, item.due_at
    elif item.warn_at is not None and item.warn_at <= now:
        item.action, item.at = WARNING, item.warn_at
    else:
        item.action = None
    item.late = item.action is not None and now - item.at > catch_up_after
    return item


@dataclass
class Result:
    counts: dict
    plan: list
    warnings: list = field(default_factory=list)

    def summary(self):
        c = self.counts
        text = (f"{c['warnings']} warning(s), {c['breaches']} breach(es)"
                f"{' (backfilled, nobody told)' if c['backfill'] else ''}, "
                f"{c['resumed']} auto-resumed; {c['notifications']} notification(s), "
                f"{c['emails']} email(s) ({c['deferred']} deferred to business hours"
                f"{', %d folded into digests' % c['folded'] if c['folded'] else ''}), "
                f"{c['sms']} SMS")
        if c["late"]:
            text += f"; {c['late']} late, consolidated into {c['catch_up']} catch-up message(s)"
        if c["deliver_stale"]:
            text += f"; the delivery job is stale (no success since {c['deliver_stale']})"
        return text


class People:
    """Users the sweep needs, loaded a batch at a time; leaders by role once per run."""

    def __init__(self):
        self.users = {}
        self.managers = {}
        self.roles = {}

    def load(self, items):
        pod_ids = {i.pod_id for i in items if i.pod_id and i.pod_id not in self.managers}
        if pod_ids:
            for pod in Pod.select(Pod.id, Pod.manager).where(Pod.id.in_(list(pod_ids))):
                self.managers[pod.id] = pod.manager_id
        ids = {i.owner_id for i in items if i.owner_id} | {
            self.managers.get(i.pod_id) for i in items if i.pod_id}
        ids = {i for i in ids if i and i not in self.users}
        if ids:
            for u in User.select().where(User.id.in_(list(ids))):
                self.users[u.id] = u

    def role(self, role):
        if role not in self.roles:
            self.roles[role] = list(User.select().where((User.role == role) & (User.active == True))  # noqa: E712
                                    .order_by(User.id))
        return self.roles[role]

    def first_responder(self, item):
        """The owner, else the pod manager, else the admins."""
        owner = self.users.get(item.owner_id)
        if owner is not None and owner.active:
            return [owner]
        manager = self.users.get(self.managers.get(item.pod_id))
        if manager is not None and manager.active:
            return [manager]
        return self.role("admin")

    def recipients(self, item, policy):
        people = list(self.first_responder(item))
        if item.action == BREACH and policy.escalate_to:
            people += self.role(policy.escalate_to)
        seen, out = set(), []
        for u in people:
            if u.id not in seen:
                seen.add(u.id)
                out.append(u)
        return out


def _due_query(now, after, limit):
    query = (SlaClock
             .select(SlaClock.id, SlaClock.kind, SlaClock.warn_at, SlaClock.due_at,
                     SlaClock.next_check_at, Escalation.id.alias("esc_id"), Escalation.code,
                     Escalation.title, Escalation.priority, Escalation.status,
                     Escalation.owner.alias("owner_id"), Escalation.pod.alias("pod_id"),
                     Account.name.alias("account"))
             .join(Escalation, on=(SlaClock.escalation == Escalation.id))
             .join(Account, pw.JOIN.LEFT_OUTER, on=(Escalation.account == Account.id))
             .where(SlaClock.next_check_at <= now))
    if after is not None:
        at, cid = after
        query = query.where((SlaClock.next_check_at > at)
                            | ((SlaClock.next_check_at == at) & (SlaClock.id > cid)))
    return query.order_by(SlaClock.next_check_at, SlaClock.id).limit(limit).dicts()


def due_items(now, limit, after=None):
    """One page of clocks due at ``now`` (keyset paging on (next_check_at, id))."""
    rows = list(_due_query(now, after, limit))
    return [Item(clock_id=r["id"], kind=r["kind"], warn_at=r["warn_at"], due_at=r["due_at"],
                 next_check_at=r["next_check_at"], esc_id=r["esc_id"], code=r["code"],
                 title=r["title"], priority=r["priority"], status=r["status"],
                 owner_id=r["owner_id"], pod_id=r["pod_id"], account=r["account"]) for r in rows]


def _is_postgres():
    return domain._dialect() == "postgres"


def _claim(ids, condition, values):
    """Set ``values`` on the clocks among ``ids`` that still meet ``condition``; return those."""
    if not ids:
        return set()
    if _is_postgres():
        target = (SlaClock.select(SlaClock.id).where(SlaClock.id.in_(ids) & condition)
                  .order_by(SlaClock.id).for_update("FOR UPDATE SKIP LOCKED"))
        query = SlaClock.update(**values).where(SlaClock.id.in_(target))
    else:       # the IMMEDIATE transaction already serialises writers
        query = SlaClock.update(**values).where(SlaClock.id.in_(ids) & condition)
    return {row.id for row in query.returning(SlaClock.id).execute()}


def _naive(t):
    """A time as stored (naive UTC), for expressions that bypass the field's conversion."""
    return t.astimezone(UTC).replace(tzinfo=None)


def claim_items(items, now):
    """Claim this batch's breaches and warnings; return the items this run won."""
    breach_ids = [i.clock_id for i in items if i.action == BREACH]
    warn_ids = [i.clock_id for i in items if i.action == WARNING]
    won = _claim(breach_ids,
                 SlaClock.breached_at.is_null() & SlaClock.stopped_at.is_null()
                 & SlaClock.due_at.is_null(False) & (SlaClock.due_at <= now),
                 dict(breached_at=now, next_check_at=None,
                      warned_at=pw.fn.COALESCE(SlaClock.warned_at, _naive(now))))
    won |= _claim(warn_ids,
                  SlaClock.warned_at.is_null() & SlaClock.stopped_at.is_null()
                  & SlaClock.warn_at.is_null(False) & (SlaClock.warn_at <= now),
                  dict(warned_at=now, next_check_at=SlaClock.due_at))
    return [i for i in items if i.clock_id in won]


def _repair(items, now):
    """Clocks due for nothing (paused, answered, already done): take them off the index."""
    idle = [i.clock_id for i in items if i.action is None]
    if not idle:
        return 0
    inactive = [i.clock_id for i in items if i.action is None and
                (i.status not in ACTIVE or (i.kind == "response" and i.status != "pending"))]
    n = 0
    if inactive:
        n += SlaClock.update(next_check_at=None).where(
            SlaClock.id.in_(inactive) & (SlaClock.next_check_at <= now)).execute()
    rest = [c for c in idle if c not in set(inactive)]
    if rest:     # already warned: look again at the due time
        n += SlaClock.update(next_check_at=SlaClock.due_at).where(
            SlaClock.id.in_(rest) & (SlaClock.next_check_at <= now)
            & SlaClock.breached_at.is_null()).execute()
    return n


# -- messages -------------------------------------------------------------------------------

def _what(kind):
    return "claimed" if kind == "response" else "resolved"


def _context(app, item, recipient, zone):
    base = getattr(item, "_context", None)
    if base is None:
        base = item._context = _base_context(app, item, zone)
    return dict(base, recipient=recipient.name)


def _base_context(app, item, zone):
    s = app.get_settings()
    return {
        "code": item.code, "title": item.title, "priority": item.priority,
        "status": domain.STATUS_LABEL.get(item.status, item.status), "account": item.account,
        "clock": item.kind, "must_be": _what(item.kind), "due": when(item.due_at, zone),
        "warn_at": when(item.warn_at, zone), "company": s.company,
        "url": f"{s.base_url.rstrip('/')}/escalations/{item.code}" if s.base_url else None,
        "breach_message": domain.BREACH_MESSAGE,
    }


def warning_text(item, zone):
    return (f"SLA warning: {item.code} must be {_what(item.kind)} by "
            f"{when(item.due_at, zone)} ({item.title})")


def breach_text(item, zone):
    return (f"{domain.BREACH_MESSAGE}: {item.code} {item.title} "
            f"({item.kind} was due {when(item.due_at, zone)})")


def _names(people, policy=None):
    out = []
    for u in people:
        label = u.name
        if u.role in ("coo", "ceo"):
            label += f" ({u.role.upper()})"
        out.append(label)
    return ", ".join(out) if out else "nobody"


# -- the sweep ------------------------------------------------------------------------------

class Sweep:
    def __init__(self, app, dry_run=False, backfill=False, tick=None):
        app.db                      # bind the models to the store
        self.app = app
        self.now = app.now
        self.dry_run = dry_run
        self.backfill = backfill
        self.tick = tick or (lambda: None)
        self.settings = app.get_settings()
        self.zone = self.settings.zone
        self.cal = self.settings.calendar()
        self.js = job_settings(app)
        self.people = People()
        self.policies = {}
        self.run_id = uuid.uuid4().hex[:12]
        self.counts = dict(warnings=0, breaches=0, late=0, catch_up=0, resumed=0,
                           notifications=0, emails=0, sms=0, deferred=0, folded=0, repaired=0,
                           backfill=backfill, deliver_stale=False)
        self.plan = []
        self.warnings = []
        self.seen = set()
        self.windows = {}

    def policy(self, priority):
        if priority not in self.policies:
            self.policies[priority] = self.settings.policy(priority)
        return self.policies[priority]

    def run(self):
        self.resume_holds()
        bar = progress.bar("SLA sweep", self.due_count() if progress.enabled() else 0)
        late_cut = self.now - self.js.catch_up_after
        # Late items first, all in one transaction, so each person gets one catch-up message.
        if not self.backfill:
            late = self.collect(late_cut)
            if late:
                self.seen = {i.clock_id for i in late}
                self.process(late)
                bar.update(len(late))
        after = None
        while True:
            items = due_items(self.now, self.js.batch, after)
            if not items:
                break
            after = (items[-1].next_check_at, items[-1].clock_id)
            items = [classify(i, self.now, self.js.catch_up_after) for i in items
                     if i.clock_id not in self.seen]
            if items:
                self.process(items)
                bar.update(len(items))
            self.tick()
        bar.finish()
        self.check_deliverer()
        return Result(self.counts, self.plan, self.warnings)

    def due_count(self):
        """How many clocks are due (for the progress bar on a terminal): an index count."""
        return SlaClock.select().where(SlaClock.next_check_at <= self.now).count()

    def collect(self, cut):
        """Every clock due before ``cut``, paged but gathered (the catch-up set)."""
        out, after = [], None
        while True:
            items = due_items(cut, self.js.batch, after)
            if not items:
                return out
            after = (items[-1].next_check_at, items[-1].clock_id)
            out.extend(classify(i, self.now, self.js.catch_up_after) for i in items)

    # -- one batch ------------------------------------------------------------------------
    def process(self, items):
        actionable = [i for i in items if i.action]
        self.people.load(actionable)
        for i in actionable:
            i.recipients = [] if self.backfill else self.people.recipients(i, self.policy(i.priority))
        if self.dry_run:
            self.plan.extend(self.plan_row(i) for i in actionable)
            self._count(actionable)
            return
        with domain.atomic():
            self.counts["repaired"] += _repair(items, self.now)
            won = claim_items(actionable, self.now)
            if not won:
                return
            notices = Notices(self.app)
            for i in won:
                self.record(notices, i)
            if not self.backfill:
                for i in won:
                    if not i.late:
                        self.tell(notices, i)
                self.catch_up(notices, [i for i in won if i.late])
            self._count(won)
            self.counts["deferred"] += notices.deferred
            self.counts["folded"] += notices.folded
            for k, v in notices.flush().items():
                self.counts[k] += v

    def _count(self, items):
        for i in items:
            self.counts["breaches" if i.action == BREACH else "warnings"] += 1
            self.counts["late"] += 1 if i.late and not self.backfill else 0

    def record(self, notices, i):
        """The event and the timeline entry of a warning or breach."""
        policy = self.policy(i.priority)
        who = [u.login for u in i.recipients]
        told = _names(i.recipients)
        if i.action == BREACH:
            notices.event("escalation.sla_breached", i.esc_id, {
                "escalation_id": i.code, "clock": i.kind, "priority": i.priority,
                "due_at": i.due_at, "breached_at": i.at, "detected_at": self.now,
                "escalate_to": policy.escalate_to, "notified": who, "late": i.late,
                "backfill": self.backfill}, f"sla_breached:{i.esc_id}:{i.kind}")
            body = (f"{domain.BREACH_MESSAGE}: the {i.kind} SLA ({i.priority}) was due "
                    f"{when(i.due_at, self.zone)}")
            subject = "SLA BREACH"
        else:
            notices.event("escalation.sla_warning", i.esc_id, {
                "escalation_id": i.code, "clock": i.kind, "priority": i.priority,
                "warn_at": i.at, "due_at": i.due_at, "detected_at": self.now,
                "share": self.settings.warn_share, "notified": who, "late": i.late,
                "backfill": self.backfill}, f"sla_warning:{i.esc_id}:{i.kind}")
            body = (f"SLA warning: {int(self.settings.warn_share * 100)}% of the {i.kind} window "
                    f"has passed; must be {_what(i.kind)} by {when(i.due_at, self.zone)}")
            subject = "SLA WARNING"
        if self.backfill:
            body += " (recorded by a backfill; nobody was notified)"
        elif i.late:
            body += f" (found late; {told} told in a catch-up message)"
        else:
            body += f"; {told} notified"
        notices.activity(i.esc_id, "sla_breach" if i.action == BREACH else "sla_warning",
                         subject, body, occurred_at=i.at)

    def window(self, urgent):
        if urgent not in self.windows:
            self.windows[urgent] = timing.delivery_window(self.cal, self.now, urgent,
                                                          self.js.after_hours)
        return self.windows[urgent]

    def tell(self, notices, i):
        urgent = i.priority == "critical"
        not_before, send = self.window(urgent)
        for u in i.recipients:
            ctx = _context(self.app, i, u, self.zone)
            if i.action == BREACH:
                notices.notify(
                    u, "sla.breached", breach_text(i, self.zone), i.esc_id,
                    email=("sla-breach", dict(ctx, role=self.policy(i.priority).escalate_to)),
                    sms=(f"URGENT: SLA breach on {i.code} ({i.kind} was due "
                         f"{when(i.due_at, self.zone)}). Login to handle." if urgent else None),
                    dedupe=f"sla-breach-{i.kind}", not_before=not_before, send_email=send)
            else:
                notices.notify(
                    u, "sla.warning", warning_text(i, self.zone), i.esc_id,
                    email=("sla-warning", dict(ctx, share=int(self.settings.warn_share * 100))),
                    sms=(f"URGENT: {i.code} must be {_what(i.kind)} by "
                         f"{when(i.due_at, self.zone)}. Login to handle." if urgent else None),
                    dedupe=f"sla-warning-{i.kind}", not_before=not_before, send_email=send)

    def catch_up(self, notices, late):
        """One consolidated message per person for everything found late."""
        per_person = {}
        for i in late:
            for u in i.recipients:
                per_person.setdefault(u.id, (u, []))[1].append(i)
        for u, items in per_person.values():
            breaches = [i for i in items if i.action == BREACH]
            warnings = [i for i in items if i.action == WARNING]
            urgent = any(i.priority == "critical" for i in items)
            not_before, send = self.window(urgent)
            codes = sorted({i.code for i in items})
            shown = ", ".join(codes[:5]) + (f" and {len(codes) - 5} more" if len(codes) > 5 else "")
            message = (f"SLA catch-up: {len(breaches)} breach(es) and {len(warnings)} warning(s) "
                       f"were found late: {shown}")
            ordered = sorted(items, key=lambda x: (x.action != BREACH,
                                                   domain.PRIORITIES.index(x.priority), x.code))
            rows = [dict(_context(self.app, i, u, self.zone), action=i.action)
                    for i in ordered[:CATCH_UP_LIMIT]]
            critical = [i.code for i in breaches if i.priority == "critical"]
            notices.notify(
                u, "sla.catch_up", message, None,
                email=("sla-catch-up", {"recipient": u.name, "company": self.settings.company,
                                        "items": rows, "more": len(items) - len(rows),
                                        "breaches": len(breaches),
                                        "warnings": len(warnings),
                                        "since": when(min(i.at for i in items), self.zone)}),
                sms=(f"URGENT: {len(critical)} critical SLA breach(es) found late: "
                     f"{', '.join(critical[:3])}. Login to handle." if critical else None),
                dedupe=f"sla-catch-up-{self.run_id}", not_before=not_before, send_email=send)
            self.counts["catch_up"] += 1

    # -- dry run ------------------------------------------------------------------------
    def plan_row(self, i):
        urgent = i.priority == "critical"
        not_before, send = self.window(urgent)
        channels = []
        if i.recipients and not self.backfill:
            channels = ["in-app"] + (["email"] if send else []) + (["sms"] if urgent else [])
        if self.backfill:
            deliver = "nobody (backfill)"
        elif i.late:
            deliver = "catch-up message"
        elif not send:
            deliver = "digest"
        else:
            deliver = "now" if not_before is None else not_before
        return {"escalation": i.code, "priority": i.priority, "clock": i.kind,
                "action": i.action, "at": i.at, "late": i.late,
                "notify": [u.login for u in i.recipients], "channels": channels,
                "deliver": deliver}

    # -- around the clocks --------------------------------------------------------------
    def resume_holds(self):
        """Holds whose time is up resume (the lifecycle's ``resume_due_holds``, if present)."""
        if self.dry_run:
            for esc in (Escalation.select(Escalation.code, Escalation.priority, Escalation.hold_until)
                        .where((Escalation.hold_until <= self.now) & (Escalation.status == "on_hold"))
                        .order_by(Escalation.hold_until)):
                self.plan.append({"escalation": esc.code, "priority": esc.priority,
                                  "clock": "resolution", "action": "auto-resume",
                                  "at": esc.hold_until, "late": False,
                                  "notify": [], "channels": [], "deliver": "-"})
                self.counts["resumed"] += 1
            return
        resume_due_holds = getattr(domain, "resume_due_holds", None)
        if resume_due_holds is None:
            return
        resumed = resume_due_holds(self.app)
        if isinstance(resumed, int):
            self.counts["resumed"] += resumed
        elif resumed is not None:
            self.counts["resumed"] += len(list(resumed))

    def check_deliverer(self):
        """Warn the admins (once per episode) when the delivery job has stopped succeeding."""
        stale, since = deliverer_stale(self.app)
        if not stale:
            return
        self.counts["deliver_stale"] = since
        if self.dry_run:
            self.plan.append({"escalation": None, "priority": None, "clock": None,
                              "action": "warn admins: deliver stale", "at": None, "late": False,
                              "notify": [u.login for u in self.people.role("admin")],
                              "channels": ["in-app"], "deliver": "now"})
            return
        from escalate_cli.models import Notification
        notices = Notices(self.app)
        message = (f"The delivery job (escalate jobs deliver) has not succeeded since {since}: "
                   f"emails and SMS are waiting in the outbox. Check cron and the SMTP settings.")
        keys = [notices.notify(admin, "jobs.stale", message, None, dedupe=f"deliver-stale-{since}")
                for admin in self.people.role("admin")]
        with domain.atomic():
            fresh = not keys or not (Notification.select(Notification.id)
                                     .where(Notification.dedupe_key.in_(keys)).exists())
            notices.flush()
        if fresh:       # once per episode, not every five minutes in the cron mail
            self.warnings.append(message)


def deliverer_stale(app):
    """(stale?, since when) for the delivery job, from its heartbeat and the outbox."""
    from escalate_cli.models import JobRun, Outbox
    from .conf import job_settings as _js
    js = _js(app)
    if "deliver" in js.disabled:
        return False, None
    now = app.now
    spec = js.schedule["deliver"]
    allowance = js.stale_after.get("deliver") or timing.stale_after(spec)
    run = JobRun.get_or_none(JobRun.name == "deliver")
    last = run.last_success_at if run else None
    if last is not None and now - last <= allowance:
        return False, None
    # Never ran, or not lately: stale only if something has been waiting for it.
    waiting = (Outbox.select(Outbox.id)
               .where((Outbox.status == "queued") & (Outbox.next_attempt_at <= now - allowance))
               .limit(1).exists())
    if not waiting:
        return False, None
    zone = app.get_settings().zone
    return True, when(last, zone) if last else "it was installed (never ran)"


def sweep(app, dry_run=False, backfill=False, tick=None):
    return Sweep(app, dry_run=dry_run, backfill=backfill, tick=tick).run()
