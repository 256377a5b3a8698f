"""The rules of escalate: lifecycle, SLA clocks, permissions, events and who is told what.

Every service takes the :class:`~escalate_cli.context.App` (settings, clock, acting user)
and plain arguments, does its change, its event, its timeline entry and its notifications
in one transaction, and returns model objects or raises an
:class:`~escalate_cli.errors.EscalateError`. The CLI and the jobs both call these.
"""
import datetime as dt
import json
import os
import re

import peewee as pw

from . import sla
from .errors import Conflict, EscalateError, IllegalTransition, NotFound, Refused
from .fmt import duration_short, when
from .models import (
    PRIORITIES, Account, Activity, Attachment, CodeCounter, Consulted, Contact,
    Contract, Escalation, Event, Notification, Outbox, Pod, SlaClock, User,
)

UTC = dt.timezone.utc
OPEN_STATUSES = ("pending", "in_progress", "on_hold", "escalated")
STATUS_LABEL = {
    "pending": "PENDING", "in_progress": "IN PROGRESS", "on_hold": "ON HOLD",
    "escalated": "ESCALATED", "resolved": "RESOLVED",
}
MIN_RESOLUTION_NOTES = 50
BREACH_MESSAGE = "⚠️ SLA breach: This escalation is overdue"

# The state machine, the one place every command and job checks: action -> the statuses it
# may start from -> the status it leads to (None: decided by the action, see its service).
#
#   PENDING --claim/assign--> IN PROGRESS --resolve--> RESOLVED
#   PENDING --resolve by the reporting IC (A2)--> RESOLVED (awaiting approval)
#       --approve--> RESOLVED BY IC      --request-info (reopen)--> PENDING / IN PROGRESS
#   IN PROGRESS / ESCALATED --hold--> ON HOLD --resume (person, --until, client call)--> back
#   any open status --escalate--> ESCALATED (the COO/CEO owns it) --resolve--> RESOLVED
TRANSITIONS = {
    "claim": ({"pending"}, "in_progress"),
    "assign": ({"pending", "in_progress", "on_hold"}, None),      # keeps status once owned
    "hold": ({"in_progress", "escalated"}, "on_hold"),
    "resume": ({"on_hold"}, None),                # IN PROGRESS, or ESCALATED if it had been
    "escalate": ({"pending", "in_progress", "on_hold", "escalated"}, "escalated"),
    "resolve": ({"in_progress", "escalated", "on_hold"}, "resolved"),
    "resolve_by_ic": ({"pending"}, "resolved"),
    "approve": ({"resolved"}, "resolved"),
    "reopen": ({"resolved"}, None),               # PENDING, or IN PROGRESS if owned
    "progress": ({"in_progress"}, "in_progress"),
    "reprioritize": ({"pending", "in_progress", "on_hold", "escalated"}, None),
}

_VERBS = {"resolve_by_ic": "resolve", "escalate": "escalate further",
          "progress": "set a sub-state on", "reprioritize": "change the priority of"}


def check_transition(esc, action):
    """The status ``action`` leads to, or IllegalTransition (exit 1) with a clear message."""
    allowed, target = TRANSITIONS[action]
    if esc.status not in allowed:
        verb = _VERBS.get(action, action.replace("_", " "))
        if esc.status == "resolved":
            raise IllegalTransition(f"Cannot {verb} {esc.code}: it is already RESOLVED")
        raise IllegalTransition(
            f"Cannot {verb} {esc.code}: it is {STATUS_LABEL[esc.status]}"
            + _transition_hint(esc, action))
    return target


def allowed_actions(esc):
    """The actions the state machine allows from the escalation's status."""
    return [a for a, (sources, _) in TRANSITIONS.items() if esc.status in sources]


def _transition_hint(esc, action):
    if action == "claim" and esc.owner_id:
        return f" and owned by {esc.owner.name}"
    if esc.status == "pending" and action in ("hold", "progress"):
        return " (take ownership first)"
    return ""


# -- transactions -------------------------------------------------------------------------

def atomic():
    """One write transaction (BEGIN IMMEDIATE on SQLite)."""
    from .models import database_proxy
    return database_proxy.atomic()


def _dialect():
    from .models import database_proxy
    return "postgres" if type(database_proxy.obj).__name__.startswith("Postgres") else "sqlite"


# -- permissions --------------------------------------------------------------------------

def managed_pod_ids(user):
    """The pods a manager answers for: those they manage and the one they belong to."""
    ids = [p.id for p in Pod.select(Pod.id).where(Pod.manager == user.id)]
    if user.pod_id and user.pod_id not in ids:
        ids.append(user.pod_id)
    return ids


def visible_clause(user):
    """A WHERE clause selecting the escalations ``user`` may see."""
    if user.role in ("coo", "ceo", "admin"):
        return pw.SQL("1 = 1")
    consulted = Consulted.select(Consulted.escalation).where(Consulted.user == user.id)
    clause = ((Escalation.reporter == user.id) | (Escalation.owner == user.id)
              | Escalation.id.in_(consulted))
    if user.role == "manager":
        pods = managed_pod_ids(user)
        if pods:
            clause = clause | Escalation.pod.in_(pods)
    return clause


def can_see(user, esc):
    if user.role in ("coo", "ceo", "admin"):
        return True
    if user.id in (esc.reporter_id, esc.owner_id):
        return True
    if user.role == "manager" and esc.pod_id and esc.pod_id in managed_pod_ids(user):
        return True
    return Consulted.select().where((Consulted.escalation == esc.id)
                                    & (Consulted.user == user.id)).exists()


def can_manage(user, esc):
    """Managers of the escalation's pod and leaders may claim, assign and escalate it."""
    if user.role in ("coo", "ceo", "admin"):
        return True
    return user.role == "manager" and (
        esc.owner_id == user.id or (esc.pod_id and esc.pod_id in managed_pod_ids(user))
        or esc.pod_id is None)


def sees_internal(user):
    return user.role in ("manager", "coo", "ceo", "admin")


def get_escalation(app, code, for_update=False, related=False):
    """The escalation ``code`` if the acting user may see it; else not-found (exit 3).

    ``related``: read its reporter, owner, pod, account, contact and contract in the same
    query (the detail screen shows them all).
    """
    actor = app.actor
    code = (code or "").strip().upper()
    if not code or len(code) > 32 or "\x00" in code:
        raise NotFound()
    query = Escalation.select().where(Escalation.code == code)
    if related:
        reporter, owner = User.alias(), User.alias()
        query = Escalation.select(Escalation, reporter, owner, Pod, Account, Contact, Contract)
        for model, fk in ((reporter, Escalation.reporter), (owner, Escalation.owner),
                          (Pod, Escalation.pod), (Account, Escalation.account),
                          (Contact, Escalation.contact), (Contract, Escalation.contract)):
            query = query.join(model, pw.JOIN.LEFT_OUTER, on=(fk == model.id),
                               attr=fk.name).switch(Escalation)
        query = query.where(Escalation.code == code)
    if for_update and _dialect() == "postgres":
        query = query.for_update()
    esc = query.first()
    if esc is None or not can_see(actor, esc):
        raise NotFound()
    return esc


def require_role(user, roles, what):
    if user.role not in roles:
        raise Refused(f"Only {' or '.join(_role_names(roles))} can {what}")


def _role_names(roles):
    names = {"ic": "ICs", "manager": "managers", "coo": "the COO", "ceo": "the CEO",
             "admin": "admins", "finance": "Finance"}
    return [names[r] for r in roles]


# -- events, timeline, notifications ------------------------------------------------------

def emit(app, name, esc, payload, dedupe_key=None):
    """Write an event with the use case's payload, in the caller's transaction."""
    row = dict(name=name, escalation=esc.id if esc is not None else None,
               actor=app.actor.id if app._actor is not None else None,
               payload=json.dumps(payload, default=_json_default, sort_keys=True),
               created_at=app.now, dedupe_key=dedupe_key)
    if dedupe_key is None:
        return Event.insert(**row).execute()
    return Event.insert(**row).on_conflict_ignore().execute()


def _json_default(value):
    if isinstance(value, dt.datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    if hasattr(value, "is_finite"):          # Decimal
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def log_activity(app, esc, type_, body=None, subject=None, direction=None, internal=False,
                 actor=None, occurred_at=None, meta=None, system=False):
    """A timeline entry; ``system=True`` records it as done by the System, not a person."""
    if system:
        actor = None
    else:
        actor = actor if actor is not None else (app.actor if app._actor is not None else None)
    return Activity.create(
        escalation=esc.id, type=type_, internal=internal, direction=direction,
        subject=subject, body=body, actor=actor.id if actor is not None else None,
        occurred_at=occurred_at or app.now, created_at=app.now,
        meta=json.dumps(meta, default=_json_default, sort_keys=True) if meta else None)


def notify(app, user, kind, message, esc=None, email=None, sms=None, dedupe=None):
    """Tell ``user``: in-app always; by email (and SMS) through the outbox.

    ``email`` is ``(template, context)``; it is rendered and sent by the deliverer. ``dedupe``
    makes the notification happen once whatever the number of runs (unique keys).
    """
    if not user.active:         # someone who left is told nothing
        return
    key = f"{dedupe or kind}:{esc.id if esc is not None else '-'}:{user.id}"
    Notification.insert(
        user=user.id, escalation=esc.id if esc is not None else None, kind=kind,
        message=message, created_at=app.now, dedupe_key=key if dedupe else None,
    ).on_conflict_ignore().execute()
    # What is worth a text (a critical escalation raised or escalated) goes, with its
    # email, as the command ends; the rest with the next 'jobs deliver'.
    urgent = sms is not None and esc is not None and esc.priority == "critical"
    if email is not None and user.email:
        template, context = email
        enqueue(app, key=f"email:{key}" if dedupe else None, channel="email", esc=esc,
                to=[user.email], template=template, context=dict(context, message=message),
                urgent=urgent)
    if sms is not None and user.phone:
        enqueue(app, key=f"sms:{key}" if dedupe else None, channel="sms", esc=esc,
                to=[user.phone], subject=None, text=sms, urgent=urgent)


def notify_address(app, address, kind, esc, template, context, dedupe=None):
    """Email an address that is not a user (a team's shared mailbox)."""
    key = f"email:{dedupe}:{esc.id if esc else '-'}:{address}" if dedupe else None
    enqueue(app, key=key, channel="email", esc=esc, to=[address], template=template,
            context=context)


def enqueue(app, channel, to, esc=None, key=None, cc=(), bcc=(), subject=None, text=None,
            html=None, template=None, context=None, headers=None, parts=None, status="queued",
            not_before=None, urgent=False):
    """Write one outbound message to the outbox; a repeated ``key`` is ignored.

    ``urgent``: the command delivers it as it ends (after the commit), not the next
    ``jobs deliver``.
    """
    import uuid
    key = key or f"{channel}:{uuid.uuid4().hex}"
    if urgent and not not_before and status == "queued":
        app.urgent.append(key)
    return Outbox.insert(
        key=key, channel=channel, escalation=esc.id if esc is not None else None,
        author=app.actor.id if app._actor is not None else None,
        recipients=json.dumps({"to": list(to), "cc": list(cc), "bcc": list(bcc)}),
        subject=subject, body_text=text, body_html=html, template=template,
        context=json.dumps(context, default=_json_default, sort_keys=True) if context else None,
        headers=json.dumps(headers) if headers else None,
        parts=json.dumps(parts) if parts else None, status=status, attempts=0,
        next_attempt_at=not_before or app.now, not_before=not_before, created_at=app.now,
    ).on_conflict_ignore().execute()


def _esc_context(app, esc):
    s = app.get_settings()
    return {
        "code": esc.code, "title": esc.title, "category": esc.category,
        "subcategory": esc.subcategory, "priority": esc.priority, "status": esc.status,
        "account": esc.account.name if esc.account_id else None,
        "reporter": esc.reporter.name, "owner": esc.owner.name if esc.owner_id else None,
        "description": esc.description, "company": s.company,
        "url": f"{s.base_url.rstrip('/')}/escalations/{esc.code}" if s.base_url else None,
    }


def _sentence(text):
    return text[:1].upper() + text[1:].lower() if text else text


# -- codes --------------------------------------------------------------------------------

def next_code(app, day):
    """ESC-YYYY-MM-DD-NNN: per-day sequence, unique even for simultaneous creators."""
    if _dialect() == "postgres":
        cur = app.db.execute_sql(
            'INSERT INTO "code_counter" ("day", "last") VALUES (%s, 1) '
            'ON CONFLICT ("day") DO UPDATE SET "last" = "code_counter"."last" + 1 '
            'RETURNING "last"', (day,))
        seq = cur.fetchone()[0]
    else:  # the IMMEDIATE transaction already serialises writers
        row = CodeCounter.get_or_none(CodeCounter.day == day)
        seq = (row.last + 1) if row else 1
        if row:
            CodeCounter.update(last=seq).where(CodeCounter.day == day).execute()
        else:
            CodeCounter.insert(day=day, last=seq).execute()
    return seq, f"ESC-{day:%Y-%m-%d}-{seq:03d}"


# -- impact -------------------------------------------------------------------------------

def compute_impact(account, contract=None):
    """The documented impact rule (see README, "Impact").

    High: a strategic account, annual revenue of $1M or more, or $150K or more a year of
    active contracts at risk. Medium: annual revenue of $100K or more, or any active
    contract. Low: everything else, and escalations with no account.
    """
    from decimal import Decimal
    if account is None:
        return "low", "No account affected"
    revenue = account.annual_revenue or Decimal(0)
    at_risk = contracts_at_risk(account)
    money = _short_money(revenue)
    if account.strategic or revenue >= Decimal("1000000") or at_risk >= Decimal("150000"):
        if revenue:
            return "high", f"May lose account with {money} annual revenue"
        return "high", "Strategic account"
    if revenue >= Decimal("100000") or at_risk > 0:
        return "medium", f"Account with {money} annual revenue"
    return "low", "Limited revenue at stake"


def contracts_at_risk(account):
    """Annualised margin-free billing of the account's active contracts (40h x 52 weeks)."""
    from decimal import Decimal
    total = Decimal(0)
    for c in Contract.select(Contract.bill_rate).where(
            (Contract.account == account.id) & Contract.end_date.is_null()):
        total += (c.bill_rate or 0) * 40 * 52
    return total


def _short_money(value):
    value = float(value or 0)
    if value >= 1_000_000:
        text = f"{value / 1_000_000:.1f}".rstrip("0").rstrip(".")
        return f"${text}M"
    if value >= 1000:
        return f"${value / 1000:.0f}K"
    return f"${value:.0f}"


# -- SLA clocks ---------------------------------------------------------------------------

def _set_clock(esc, kind, started_at, due_at, share, paused=0):
    cal = esc._policy.calendar
    warn_at = sla.warn_time(cal, started_at, due_at, share, paused) if due_at else None
    values = dict(started_at=started_at, due_at=due_at, warn_at=warn_at)
    clock = SlaClock.get_or_none((SlaClock.escalation == esc.id) & (SlaClock.kind == kind))
    if clock is None:
        SlaClock.create(escalation=esc.id, kind=kind, next_check_at=warn_at, **values)
        return
    next_check = None
    if clock.stopped_at is None and due_at is not None:
        if clock.warned_at is None:
            next_check = warn_at
        elif clock.breached_at is None:
            next_check = due_at
    SlaClock.update(next_check_at=next_check, **values).where(SlaClock.id == clock.id).execute()


def start_clocks(app, esc):
    """Due times of a new escalation, and the snapshot of the policy it is opened under."""
    from . import slapolicy
    settings = app.get_settings()
    policy = settings.policy(esc.priority)
    esc._policy = policy
    esc.policy_version = policy.version
    esc.sla_policy = slapolicy.dumps(slapolicy.snapshot(settings, esc.created_at))
    esc.response_due = sla.response_due(policy, esc.created_at)
    esc.resolution_due = sla.resolution_due(policy, esc.created_at)
    return policy


def stop_clock(app, esc, kind):
    """Stop a clock: met if stopped by its due time."""
    clock = SlaClock.get_or_none((SlaClock.escalation == esc.id) & (SlaClock.kind == kind))
    if clock is None or clock.stopped_at is not None:
        return
    met = clock.due_at is None or app.now <= clock.due_at
    SlaClock.update(stopped_at=app.now, met=met, next_check_at=None).where(
        SlaClock.id == clock.id).execute()


def pause_resolution_clock(esc):
    SlaClock.update(next_check_at=None, due_at=None).where(
        (SlaClock.escalation == esc.id) & (SlaClock.kind == "resolution")
        & SlaClock.stopped_at.is_null()).execute()


def policy_for(app, esc, priority=None):
    """The policy the escalation runs under: the snapshot taken when it was opened."""
    from . import slapolicy
    return slapolicy.policy_for(app, esc, priority)


def _warn_share(app, esc):
    from . import slapolicy
    snap = slapolicy.load(esc)
    return float(snap["warn_share"]) if snap else app.get_settings().warn_share


def clock_ends(esc, now):
    """When each clock stopped counting (or ``now`` if it still runs): (response, resolution).

    The response clock stops when someone takes ownership (or escalates further, or the IC
    resolves it first); the resolution clock when it is resolved or escalated further, and
    it is frozen at the start of a hold. Mirrored in SQL by :func:`breached_clause`.
    """
    response = esc.claimed_at or (esc.resolved_at if esc.resolved_by_ic else None) or now
    if esc.escalated_at is not None:
        resolution = esc.escalated_at
    elif esc.status == "resolved":
        resolution = esc.resolved_at
    elif esc.status == "on_hold":
        resolution = esc.hold_started_at or now
    else:
        resolution = now
    return response, resolution


def sla_state(esc, now):
    """(label, breached clocks) of an escalation at ``now``, from its stored due times."""
    breached = []
    response_end, resolution_end = clock_ends(esc, now)
    if esc.response_due is not None and response_end > esc.response_due:
        breached.append("response")
    if esc.resolution_due is not None and resolution_end > esc.resolution_due:
        breached.append("resolution")
    if esc.status == "resolved":
        label = "missed" if breached else "met"
    elif esc.status == "on_hold":
        label = "paused"
    elif breached:
        label = "breached"
    else:
        label = "ok"
    return label, breached


def breached_clause(now):
    """SQL twin of :func:`sla_state`: escalations with a breached clock at ``now``."""
    now_v = pw.Value(now, converter=Escalation.created_at.db_value)
    answered = pw.fn.COALESCE(
        Escalation.claimed_at,
        pw.Case(None, [(Escalation.resolved_by_ic == True, Escalation.resolved_at)], None),  # noqa: E712
        now_v)
    resolution_end = pw.Case(None, [
        (Escalation.escalated_at.is_null(False), Escalation.escalated_at),
        (Escalation.status == "resolved", Escalation.resolved_at),
        (Escalation.status == "on_hold", pw.fn.COALESCE(Escalation.hold_started_at, now_v)),
    ], now_v)
    return ((Escalation.response_due.is_null(False) & (Escalation.response_due < answered))
            | (Escalation.resolution_due.is_null(False)
               & (Escalation.resolution_due < resolution_end)))


def governing_due(esc):
    if esc.status == "pending":
        return esc.response_due
    if esc.status == "in_progress":
        return esc.resolution_due
    return None


# -- create -------------------------------------------------------------------------------

def _find_account(name):
    """The account of that name; failing an exact match, the one whose name differs only
    in case (if just one does)."""
    name = (name or "").strip()
    acc = Account.get_or_none(Account.name == name)
    if acc is None and name:
        same = list(Account.select().where(pw.fn.LOWER(Account.name) == name.lower()).limit(2))
        acc = same[0] if len(same) == 1 else None
    return acc


def _lookup_account(name):
    if not name:
        return None
    acc = _find_account(name)
    if acc is None:
        raise Refused(f"Unknown account '{name}': import it first (escalate import accounts)")
    return acc


def create_escalation(app, title, category, priority, description, subcategory=None,
                      account=None, contact=None, contract=None, assessment=None,
                      attachments=(), idempotency_key=None, pod=None, source="manual",
                      source_key=None, reporter=None):
    """Raise an escalation; notify the pod manager (in-app, email; SMS when critical)."""
    reporter = reporter or app.actor
    title = _required_text(title, "title", 300, one_line=True)
    description = _required_text(description, "description")
    if category not in CATEGORY_NAMES:
        raise Refused(f"Unknown category '{category}': choose one of {', '.join(CATEGORY_NAMES)}")
    if priority not in PRIORITIES:
        raise Refused(f"Unknown priority '{priority}': choose one of {', '.join(PRIORITIES)}")
    if reporter.role == "finance":
        raise Refused("Only ICs, managers and leaders can raise escalations")
    if idempotency_key:
        existing = Escalation.get_or_none(Escalation.idempotency_key == idempotency_key)
        if existing is not None:
            if existing.reporter_id != reporter.id:
                raise Conflict("That idempotency key was used by someone else")
            named = _find_account(account) if account else None
            acc_id = named.id if named else None
            same = ((existing.title, existing.category, existing.priority,
                     existing.subcategory or None, existing.description)
                    == (title, category, priority, subcategory or None, description)
                    and (not account or existing.account_id == acc_id)
                    and (not contact or (existing.contact_id and existing.contact.email
                                         == contact.strip().lower()))
                    and (not contract or (existing.contract_id and existing.contract.code
                                          == contract.strip())))
            if not same:
                raise Conflict(f"That idempotency key was used for {existing.code}, a different "
                               f"escalation; use a new key")
            return existing
    acc = _lookup_account(account)
    con = ctr = None
    if contact:
        con = Contact.get_or_none(Contact.email == contact.strip().lower())
        if con is None:
            raise Refused(f"Unknown contact '{contact}': import it first (escalate import contacts)")
        acc = acc or con.account
        if con.account_id != acc.id:
            raise Refused(f"Contact {con.email} is not at {acc.name}")
    if contract:
        ctr = Contract.get_or_none(Contract.code == contract.strip())
        if ctr is None:
            raise Refused(f"Unknown contract '{contract}': import it first (escalate import contracts)")
        acc = acc or ctr.account
        if ctr.account_id != acc.id:
            raise Refused(f"Contract {ctr.code} is not with {acc.name}")
    pod_obj = _pod_for(reporter, pod)
    if pod_obj is None and source == "manual" and reporter.role in ("ic", "manager"):
        raise Refused("You are in no pod, so no manager would see this escalation: pass --pod "
                      "NAME, or ask an admin to put you in a pod (escalate user set LOGIN --pod)")
    files = [_read_attachment(app, path) for path in attachments]
    impact, impact_reason = compute_impact(acc, ctr)
    now = app.now
    day = now.astimezone(app.get_settings().zone).date()
    try:
        with atomic():
            seq, code = next_code(app, day)
            esc = Escalation(
                code=code, day=day, seq=seq, title=title, category=category,
                subcategory=subcategory or None, priority=priority,
                priority_rank=PRIORITIES.index(priority), impact=impact,
                impact_reason=impact_reason, status="pending", reporter=reporter.id,
                pod=pod_obj.id if pod_obj else None, account=acc.id if acc else None,
                contact=con.id if con else None, contract=ctr.id if ctr else None,
                description=description, assessment=(assessment or None), created_at=now,
                updated_at=now, idempotency_key=idempotency_key or None, source=source,
                source_key=source_key, last_action="created", last_action_at=now)
            policy = start_clocks(app, esc)
            esc.save(force_insert=True)
            esc._policy = policy
            _set_clock(esc, "response", now, esc.response_due, app.get_settings().warn_share)
            _set_clock(esc, "resolution", now, esc.resolution_due, app.get_settings().warn_share)
            if assessment:
                log_activity(app, esc, "assessment", body=assessment, actor=reporter)
            log_activity(app, esc, "created", actor=reporter,
                         body=f"{reporter.name} escalated to manager: {title}")
            emit(app, "escalation.created", esc, {
                "escalation_id": code, "reporter_id": reporter.login, "category": category,
                "subcategory": subcategory, "priority": priority, "created_at": now})
            for name, ctype, data in files:
                _store_attachment(app, esc, name, ctype, data, reporter)
            _notify_new(app, esc, reporter, pod_obj)
    except pw.IntegrityError:
        if idempotency_key:
            existing = Escalation.get_or_none(Escalation.idempotency_key == idempotency_key)
            if existing is not None:
                return existing
        if source_key and Escalation.get_or_none(Escalation.source_key == source_key):
            return Escalation.get(Escalation.source_key == source_key)
        raise
    return esc


CATEGORY_NAMES = ("Client Complaint", "Candidate Issue", "Rate Exception", "Contract Dispute",
                  "System/Process Failure")


def normalise_category(text):
    """Accept 'client complaint', 'client-complaint', 'Client Complaint'."""
    if text is None:
        return None
    key = re.sub(r"[\s_-]+", " ", text.strip()).lower()
    for name in CATEGORY_NAMES:
        if name.lower() == key or name.lower().replace("/", " ") == key.replace("/", " "):
            return name
    return text


def _pod_for(reporter, pod_name):
    if pod_name:
        pod = Pod.get_or_none(Pod.name == pod_name)
        if pod is None:
            raise Refused(f"Unknown pod '{pod_name}'")
        return pod
    if reporter.pod_id:
        return reporter.pod
    managed = Pod.select().where(Pod.manager == reporter.id).first()
    return managed


def _notify_new(app, esc, reporter, pod):
    if pod is None or pod.manager_id is None or pod.manager_id == reporter.id:
        return
    manager = pod.manager
    message = f"New escalation from {reporter.name}: {_sentence(esc.category)}"
    urgent = esc.priority in ("critical", "high")
    ctx = dict(_esc_context(app, esc), urgent=urgent, recipient=manager.name)
    sms = (f"URGENT: {_sentence(esc.category).split()[0]} escalation from {reporter.name}. "
           f"Login to handle.") if esc.priority == "critical" else None
    notify(app, manager, "escalation.new", message, esc, email=("new-escalation", ctx),
           sms=sms, dedupe="new")
    log_activity(app, esc, "notification", actor=None,
                 body=f"System notified manager ({manager.name})")


def _required_text(value, what, limit=None, one_line=False):
    """``one_line``: a title or a label, which ends up in email subjects and table cells."""
    value = (value or "").strip()
    if not value:
        raise Refused(f"Please provide a {what}")
    if "\x00" in value:
        raise Refused(f"The {what} contains a NUL character")
    if limit and len(value) > limit:
        raise Refused(f"The {what} is too long (max {limit} characters)")
    if one_line and not is_one_line(value):
        raise Refused(f"The {what} must be one line (no line breaks or control characters)")
    return value


def is_one_line(value):
    """No line breaks (Unicode's included) and no control characters."""
    return not re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", value or "")


# -- claim and assign ---------------------------------------------------------------------

def claim(app, code):
    """Take ownership: exactly one of any number of simultaneous claims wins."""
    actor = app.actor
    esc = get_escalation(app, code)
    if esc.status == "resolved":
        check_transition(esc, "claim")
    if esc.owner_id == actor.id and esc.status != "pending":
        raise Refused(f"You already own {esc.code}")
    if not can_manage(actor, esc):
        raise Refused("Only a manager of this pod or a leader can take ownership")
    if esc.owner_id is not None:
        raise Conflict(f"This escalation is already being handled by {esc.owner.name}")
    check_transition(esc, "claim")
    now = app.now
    with atomic():
        won = (Escalation.update(owner=actor.id, status="in_progress", claimed_at=now,
                                 updated_at=now, last_action="claimed", last_action_at=now,
                                 version=Escalation.version + 1)
               .where((Escalation.id == esc.id) & Escalation.owner.is_null()
                      & (Escalation.status == "pending"))
               .execute())
        if won:
            esc = Escalation.get_by_id(esc.id)
            stop_clock(app, esc, "response")
            log_activity(app, esc, "escalation_claimed",
                         body=f"{actor.name} took ownership")
            emit(app, "escalation.assigned", esc, {
                "escalation_id": esc.code, "assigned_to": actor.login, "assigned_at": now})
            if esc.reporter_id != actor.id:
                notify(app, esc.reporter, "escalation.claimed",
                       f"{actor.name} has taken ownership of your escalation", esc,
                       email=("claimed", _esc_context(app, esc)), dedupe=f"claimed-{actor.id}")
    if not won:
        current = Escalation.get_by_id(esc.id)
        if current.owner_id and current.owner_id != actor.id:
            raise Conflict(f"This escalation is already being handled by {current.owner.name}")
        raise Conflict(f"{esc.code} changed while you were claiming it; look again")
    return esc


def assign(app, code, login):
    actor = app.actor
    esc = get_escalation(app, code)
    if not can_manage(actor, esc):
        raise Refused("Only a manager of this pod or a leader can assign this escalation")
    check_transition(esc, "assign")
    target = User.get_or_none((User.login == (login or "").strip()) & (User.active == True))  # noqa: E712
    if target is None or target.role not in ("manager", "coo", "ceo", "admin"):
        raise Refused("Invalid assignee")
    if esc.owner_id == target.id:
        raise Refused(f"{esc.code} is already owned by {target.name}")
    now = app.now
    previous_version = esc.version
    with atomic():
        status = "in_progress" if esc.status == "pending" else esc.status
        changed = (Escalation.update(owner=target.id, status=status,
                                     claimed_at=esc.claimed_at or now, updated_at=now,
                                     last_action="assigned", last_action_at=now,
                                     version=Escalation.version + 1)
                   .where((Escalation.id == esc.id) & (Escalation.version == previous_version))
                   .execute())
        if not changed:
            raise Conflict(f"{esc.code} changed while you were assigning it; look again")
        esc = Escalation.get_by_id(esc.id)
        stop_clock(app, esc, "response")
        log_activity(app, esc, "escalation_assigned",
                     body=f"{actor.name} assigned the escalation to {target.name}")
        emit(app, "escalation.assigned", esc, {
            "escalation_id": esc.code, "assigned_to": target.login, "assigned_at": now,
            "assigned_by": actor.login})
        if target.id != actor.id:
            notify(app, target, "escalation.assigned_to_you",
                   f"{actor.name} assigned escalation {esc.code} to you", esc,
                   email=("assigned", _esc_context(app, esc)))
        if esc.reporter_id not in (actor.id, target.id):
            notify(app, esc.reporter, "escalation.claimed",
                   f"{target.name} has taken ownership of your escalation", esc)
    return esc


def request_info(app, code, message):
    """Ask the reporter for more; on an IC's unapproved resolution, reopen it (A2)."""
    actor = app.actor
    esc = get_escalation(app, code)
    if not can_manage(actor, esc):
        raise Refused("Only a manager of this pod or a leader can request more information")
    message = _required_text(message, "message")
    now = app.now
    with atomic():
        reopened = False
        if esc.status == "resolved":
            if not (esc.resolved_by_ic and esc.approval == "pending"):
                raise IllegalTransition(f"Cannot request info on {esc.code}: it is RESOLVED")
            check_transition(esc, "reopen")
            reopen_to = "in_progress" if esc.owner_id else "pending"
            changed = (Escalation.update(
                status=reopen_to, resolved_at=None, resolved_by=None, resolution_seconds=None,
                resolved_by_ic=False, approval=None, updated_at=now,
                version=Escalation.version + 1)
                .where((Escalation.id == esc.id) & (Escalation.version == esc.version)).execute())
            if not changed:
                raise Conflict(f"{esc.code} changed while you were reopening it; look again")
            esc = Escalation.get_by_id(esc.id)
            _restart_clock(app, esc, "resolution", esc.resolution_due)
            if reopen_to == "pending":
                _restart_clock(app, esc, "response", esc.response_due)
            reopened = True
            log_activity(app, esc, "status_change", subject=STATUS_LABEL[reopen_to],
                         body=f"{actor.name} reopened the escalation: the IC's resolution "
                              f"needs more information")
            emit(app, "escalation.reopened", esc, {
                "escalation_id": esc.code, "reopened_by": actor.login, "reopened_at": now,
                "status": reopen_to})
        Escalation.update(last_action="info_requested", last_action_at=now).where(
            Escalation.id == esc.id).execute()
        log_activity(app, esc, "info_requested", body=message, direction="outbound")
        emit(app, "escalation.info_requested", esc, {
            "escalation_id": esc.code, "requested_by": actor.login, "message": message,
            "requested_at": now, "reopened": reopened})
        if esc.reporter_id != actor.id:
            notify(app, esc.reporter, "escalation.info_requested",
                   f"{actor.name} needs more information on {esc.code}: {message}", esc,
                   email=("info-requested", dict(_esc_context(app, esc), request=message,
                                                 manager=actor.name)))
    return Escalation.get_by_id(esc.id)


# -- notes and attachments ----------------------------------------------------------------

def add_note(app, code, text):
    """An internal investigation note: managers, COO, CEO and admins only."""
    actor = app.actor
    esc = get_escalation(app, code)
    if not sees_internal(actor):
        raise Refused("Only managers and leaders can add investigation notes")
    text = _required_text(text, "note")
    now = app.now
    with atomic():
        note = log_activity(app, esc, "note", body=text, internal=True)
        Escalation.update(last_action="investigated", last_action_at=now, updated_at=now).where(
            Escalation.id == esc.id).execute()
        emit(app, "escalation.investigated", esc, {
            "escalation_id": esc.code, "investigation_notes": text,
            "investigated_by": actor.login})
    return note


def _read_attachment(app, path):
    from .files import read_user_file
    data = read_user_file(path, limit=app.get_settings().attachment_max_bytes)
    name = safe_filename(os.path.basename(path))
    import mimetypes
    ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
    return name, ctype, data


def safe_filename(name):
    """A file name that cannot leave the folder it is written to."""
    name = name.replace("\\", "/").split("/")[-1]
    name = re.sub(r"[\x00-\x1f\x7f]", "", name).strip().lstrip(".")
    return name[:200] or "attachment"


def _store_attachment(app, esc, name, ctype, data, actor):
    import hashlib
    att = Attachment.create(
        escalation=esc.id, name=name, content_type=ctype, size=len(data),
        sha256=hashlib.sha256(data).hexdigest(), data=data, uploaded_by=actor.id,
        created_at=app.now)
    log_activity(app, esc, "attachment", subject=name,
                 body=f"{actor.name} attached {name} ({len(data):,} bytes)", actor=actor)
    emit(app, "escalation.attachment_added", esc, {
        "escalation_id": esc.code, "attachment_id": att.id, "name": name,
        "content_type": ctype, "size": len(data), "sha256": att.sha256,
        "added_by": actor.login})
    return att


def attach(app, code, paths):
    actor = app.actor
    esc = get_escalation(app, code)
    if esc.status == "resolved" and not sees_internal(actor):
        raise IllegalTransition(f"Cannot attach to {esc.code}: it is RESOLVED")
    files = [_read_attachment(app, p) for p in paths]
    with atomic():
        return [_store_attachment(app, esc, n, t, d, actor) for n, t, d in files]


def list_attachments(app, code):
    return attachments_of(get_escalation(app, code))


def attachments_of(esc):
    """The attachments of an escalation already read (and checked): names and sizes, no bytes."""
    return list(Attachment.select(Attachment.id, Attachment.name, Attachment.content_type,
                                  Attachment.size, Attachment.sha256, Attachment.created_at,
                                  Attachment.uploaded_by)
                .where(Attachment.escalation == esc.id).order_by(Attachment.id))


def get_attachment(app, code, which):
    esc = get_escalation(app, code)
    query = Attachment.select().where(Attachment.escalation == esc.id)
    if str(which).isdigit():
        att = query.where(Attachment.id == int(which)).first()
    else:
        att = query.where(Attachment.name == which).order_by(Attachment.id.desc()).first()
    if att is None:
        raise NotFound(f"No attachment '{which}' on {esc.code}")
    return att


def extract_attachment(app, code, which, folder):
    """Write an attachment into ``folder``; the name cannot climb out of it."""
    att = get_attachment(app, code, which)
    folder = os.path.realpath(folder)
    if not os.path.isdir(folder):
        raise Refused(f"{folder}: no such folder")
    target = os.path.realpath(os.path.join(folder, safe_filename(att.name)))
    if os.path.dirname(target) != folder:
        raise Refused(f"Refusing to write {att.name!r} outside {folder}")
    data = bytes(att.data)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise Refused(f"{target} already exists")
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    return target


# -- reading ------------------------------------------------------------------------------

def timeline(app, esc):
    actor = User.alias()
    query = (Activity.select(Activity, actor)
             .join(actor, pw.JOIN.LEFT_OUTER, on=(Activity.actor == actor.id), attr="actor")
             .where(Activity.escalation == esc.id))
    if not sees_internal(app.actor):
        query = query.where(Activity.internal == False)  # noqa: E712
    return list(query.order_by(Activity.occurred_at, Activity.id))


def previous_escalations(esc, limit=10):
    if not esc.account_id:
        return []
    return list(Escalation.select().where((Escalation.account == esc.account_id)
                                          & (Escalation.created_at < esc.created_at)
                                          & (Escalation.id != esc.id))
                .order_by(Escalation.created_at.desc()).limit(limit))


def consulted_users(esc):
    return list(User.select().join(Consulted, on=(Consulted.user == User.id))
                .where(Consulted.escalation == esc.id).order_by(Consulted.added_at))


QUEUE_FIELDS = ("id", "code", "title", "category", "subcategory", "priority", "priority_rank",
                "impact", "impact_reason", "status", "substate", "reporter", "pod", "owner",
                "account", "created_at", "claimed_at", "escalated_at", "escalated_to",
                "resolved_at", "resolution_seconds", "resolved_by_ic", "approval",
                "policy_version", "response_due", "resolution_due", "hold_started_at")


def list_escalations(app, statuses=None, priorities=None, pod=None, owner=None, mine=False,
                     breached=False, account=None, limit=None, reporter=None, brief=False):
    """The queue: visible escalations, sorted by priority then SLA due.

    ``brief``: read only the columns of a queue row and of ``escalation_dict`` (not the
    details), which halves the cost of turning a page of rows into objects.
    """
    actor = app.actor
    now = app.now
    reporter_t, owner_t = User.alias(), User.alias()
    if brief:
        columns = ([getattr(Escalation, f) for f in QUEUE_FIELDS]
                   + [reporter_t.id, reporter_t.login, reporter_t.name,
                      owner_t.id, owner_t.login, owner_t.name, Account.id, Account.name,
                      Account.strategic, Pod.id, Pod.name])
    else:
        columns = [Escalation, reporter_t, owner_t, Account, Pod]
    query = (Escalation.select(*columns)
             .join(reporter_t, on=(Escalation.reporter == reporter_t.id), attr="reporter")
             .switch(Escalation)
             .join(owner_t, pw.JOIN.LEFT_OUTER, on=(Escalation.owner == owner_t.id), attr="owner")
             .switch(Escalation)
             .join(Account, pw.JOIN.LEFT_OUTER, on=(Escalation.account == Account.id), attr="account")
             .switch(Escalation)
             .join(Pod, pw.JOIN.LEFT_OUTER, on=(Escalation.pod == Pod.id), attr="pod")
             .switch(Escalation))
    default_queue = not statuses
    statuses = list(statuses or OPEN_STATUSES)
    only_pod = None
    if pod:
        p = Pod.get_or_none(Pod.name == pod)
        if p is None:          # a typo must not look like an empty queue
            raise NotFound(f"Unknown pod '{pod}'")
        only_pod = p.id
    awaiting = []
    if default_queue:   # and IC resolutions waiting for a manager's approval (A2): few
        q = (Escalation.select(Escalation.id)
             .where((Escalation.approval == "pending") & (Escalation.status == "resolved")
                    & visible_clause(actor)))
        if only_pod is not None:
            q = q.where(Escalation.pod == only_pod)
        awaiting = [row.id for row in q]
    if limit and not (priorities or owner or reporter or mine or account or breached):
        # the plain queue (optionally of one pod): its first page without a scan (queue.py).
        # The candidates are fetched first and looked up by key: an OR of two sub-selects
        # would make PostgreSQL scan the table.
        from .queue import candidate_ids
        pods = managed_pod_ids(actor) if actor.role == "manager" else []
        sql, params = candidate_ids(actor, statuses, pods, only_pod, limit, _dialect())
        ids = [row[0] for row in app.db.execute_sql(sql, params)]
        wanted = Escalation.id.in_(ids + awaiting)
    else:
        wanted = visible_clause(actor) & Escalation.status.in_(statuses)
        if only_pod is not None:
            wanted = wanted & (Escalation.pod == only_pod)
        if awaiting:
            wanted = wanted | Escalation.id.in_(awaiting)
    query = query.where(wanted)
    if priorities:
        query = query.where(Escalation.priority.in_(list(priorities)))
    for login, column in ((owner, Escalation.owner), (reporter, Escalation.reporter)):
        if login:
            u = User.get_or_none(User.login == login)
            if u is None:          # a typo must not look like an empty queue
                raise NotFound(f"Unknown user '{login}'")
            query = query.where(column == u.id)
    if mine:
        query = query.where(Escalation.owner == actor.id)
    if account:
        a = _find_account(account)
        if a is None:
            raise NotFound(f"Unknown account '{account}'")
        query = query.where(Escalation.account == a.id)
    if breached:
        query = query.where(breached_clause(now))
    due = pw.Case(None, [(Escalation.status == "pending", Escalation.response_due),
                         (Escalation.status == "in_progress", Escalation.resolution_due)], None)
    query = query.order_by(Escalation.priority_rank, due.is_null(), due, Escalation.created_at)
    if limit:
        query = query.limit(limit)
    return query


def inbox(app, unread_only=False, mark_read=False, limit=50):
    actor = app.actor
    query = Notification.select().where(Notification.user == actor.id)
    if unread_only:
        query = query.where(Notification.read_at.is_null())
    rows = list(query.order_by(Notification.id.desc()).limit(limit))
    if mark_read and rows:
        with atomic():
            Notification.update(read_at=app.now).where(
                Notification.id.in_([r.id for r in rows]) & Notification.read_at.is_null()
            ).execute()
    return rows


def events_since(app, since=0, limit=None, name=None):
    """Events the acting user may see, oldest first; internal notes redacted for others."""
    actor = app.actor
    query = Event.select(Event, Escalation.code.alias("esc_code")).join(
        Escalation, pw.JOIN.LEFT_OUTER, on=(Event.escalation == Escalation.id)
    ).where(Event.id > (since or 0))
    if actor.role not in ("coo", "ceo", "admin"):
        visible = Escalation.select(Escalation.id).where(visible_clause(actor))
        query = query.where(Event.escalation.in_(visible))
    if name:
        query = query.where(Event.name == name)
    query = query.order_by(Event.id)
    if limit:
        query = query.limit(limit)
    internal_ok = sees_internal(actor)
    for ev in query.objects().iterator():
        payload = json.loads(ev.payload)
        if not internal_ok:
            for secret_key in ("investigation_notes", "internal_note", "note"):
                if secret_key in payload:
                    payload[secret_key] = "[internal]"
        yield ev, payload


# -- lifecycle (resolve, hold, resume, escalate, approve, progress, priority) -------------

def _refresh_resolution_clock(app, esc, policy=None):
    """Recompute the resolution due time from the policy the escalation was opened under,
    its creation and the business time it spent on hold; store it and its clock."""
    policy = policy or policy_for(app, esc)
    esc._policy = policy
    due = sla.resolution_due(policy, esc.created_at, esc.paused_seconds)
    Escalation.update(resolution_due=due).where(Escalation.id == esc.id).execute()
    esc.resolution_due = due
    _set_clock(esc, "resolution", esc.created_at, due, _warn_share(app, esc), esc.paused_seconds)
    return due


def _restart_clock(app, esc, kind, due):
    """A stopped clock runs again (a resolution reopened), towards ``due``."""
    esc._policy = policy_for(app, esc)
    SlaClock.update(stopped_at=None, met=None).where(
        (SlaClock.escalation == esc.id) & (SlaClock.kind == kind)).execute()
    _set_clock(esc, kind, esc.created_at, due, _warn_share(app, esc),
               esc.paused_seconds if kind == "resolution" else 0)


def _end_hold(app, esc, at):
    """Close the current hold of ``esc`` (as read before the change) at ``at``.

    Adds the hold's wall time to ``paused_wall_seconds`` and, if the resolution clock was
    running and had not yet run out when the hold began, its business time to
    ``paused_seconds``; then recomputes the resolution due time. Returns (business, wall).
    """
    if esc.hold_started_at is None:
        return 0, 0
    policy = policy_for(app, esc)
    clock_running = esc.escalated_at is None
    extension = (sla.pause_extension(policy.calendar, esc.resolution_due, esc.hold_started_at, at)
                 if clock_running else 0)
    wall = max(0, int((at - esc.hold_started_at).total_seconds()))
    Escalation.update(paused_seconds=Escalation.paused_seconds + extension,
                      paused_wall_seconds=Escalation.paused_wall_seconds + wall,
                      hold_started_at=None, hold_until=None).where(
        Escalation.id == esc.id).execute()
    fresh = Escalation.get_by_id(esc.id)
    if clock_running:
        _refresh_resolution_clock(app, fresh, policy)
    return extension, wall


def validate_resolution_notes(notes):
    notes = (notes or "").strip()
    if not notes:
        raise Refused("Please provide resolution notes")
    if len(notes) < MIN_RESOLUTION_NOTES:
        raise Refused("Resolution notes too brief (min 50 chars)")
    if "\x00" in notes:
        raise Refused("The resolution notes contain a NUL character")
    return notes


def default_notify_roles(esc):
    """Who hears of a resolution unless the resolver chooses: the IC, and the COO when the
    account is strategic (the use case's "FYI on strategic account escalation")."""
    return ("ic", "coo") if esc.account_id and esc.account.strategic else ("ic",)


def public_timeline_text(app, esc):
    """The timeline as text lines for resolution notes: what the reporter may see (internal
    investigation notes are left out, since resolution notes reach the reporter)."""
    zone = app.get_settings().zone
    query = (Activity.select().where((Activity.escalation == esc.id)
                                     & (Activity.internal == False))  # noqa: E712
             .order_by(Activity.occurred_at, Activity.id))
    lines = []
    for act in query:
        who = act.actor.name if act.actor_id else "System"
        what = act.body or act.subject or act.type
        if act.subject and act.body and act.type not in ("status_change",):
            what = f"{act.subject}: {act.body}"
        lines.append(f"{when(act.occurred_at, zone)} - {who}: {' '.join(what.split())}")
    return lines


def resolve(app, code, notes, notify_roles=None, with_timeline=False):
    """Resolve: the owner (or, while PENDING, the IC who reported it: A2).

    ``notify_roles`` is a subset of ic, coo, ceo (None: :func:`default_notify_roles`).
    ``with_timeline`` appends the escalation's public timeline to the notes (A3); the 50
    characters are counted on the notes the resolver wrote.
    """
    actor = app.actor
    esc = get_escalation(app, code)
    by_ic = esc.status == "pending" and esc.reporter_id == actor.id and actor.role == "ic"
    if esc.status == "resolved":
        check_transition(esc, "resolve")
    if not by_ic and esc.owner_id != actor.id:
        raise Refused("You must take ownership first")
    notes = validate_resolution_notes(notes)
    check_transition(esc, "resolve_by_ic" if by_ic else "resolve")
    if notify_roles is None:
        notify_roles = default_notify_roles(esc)
    now = app.now
    seconds = int((now - esc.created_at).total_seconds())
    if with_timeline:
        notes += "\n\nTIMELINE:\n" + "\n".join(public_timeline_text(app, esc))
    with atomic():
        changed = (Escalation.update(
            status="resolved", resolved_at=now, resolved_by=actor.id, resolution_notes=notes,
            resolution_seconds=seconds, resolved_by_ic=by_ic,
            approval="pending" if by_ic else None, updated_at=now, last_action="resolved",
            last_action_at=now, version=Escalation.version + 1)
            .where((Escalation.id == esc.id) & (Escalation.version == esc.version)).execute())
        if not changed:
            raise Conflict(f"{esc.code} changed while you were resolving it; look again")
        if esc.status == "on_hold":
            _end_hold(app, esc, now)
        esc = Escalation.get_by_id(esc.id)
        if by_ic:
            stop_clock(app, esc, "response")
        stop_clock(app, esc, "resolution")
        label = "RESOLVED (by IC, awaiting approval)" if by_ic else "RESOLVED"
        log_activity(app, esc, "status_change", subject=label,
                     body=f"{actor.name} marked the escalation resolved "
                          f"(resolution time {duration_short(seconds)})")
        emit(app, "escalation.resolved", esc, {
            "escalation_id": esc.code, "resolved_by": actor.login, "resolved_at": now,
            "resolution_time": seconds, "resolution_time_display": duration_short(seconds),
            "resolved_by_ic": by_ic, "notified": sorted(set(notify_roles)) if not by_ic else []})
        ctx = dict(_esc_context(app, esc), resolver=actor.name, notes=notes,
                   resolution_time=duration_short(seconds), resolved_by_ic=by_ic)
        if by_ic:
            pod = esc.pod
            if pod is not None and pod.manager_id:
                notify(app, pod.manager, "escalation.resolved_by_ic",
                       f"{actor.name} resolved {esc.code} before a manager acted: "
                       f"approve it or request more info", esc,
                       email=("resolved-by-ic", dict(ctx, recipient=pod.manager.name)),
                       dedupe="resolved-by-ic")
        else:
            _notify_resolved(app, esc, actor, notify_roles, ctx)
    return esc


def _notify_resolved(app, esc, actor, roles, ctx):
    roles = set(roles or ())
    told = {actor.id}
    if "ic" in roles and esc.reporter_id not in told:
        notify(app, esc.reporter, "escalation.resolved",
               f"Your escalation has been resolved by {actor.name}", esc,
               email=("resolved", dict(ctx, recipient=esc.reporter.name)), dedupe="resolved")
        told.add(esc.reporter_id)
    account = f" - {esc.account.name}" if esc.account_id else ""
    strategic = " (strategic account)" if esc.account_id and esc.account.strategic else ""
    message = f"Escalation resolved: {esc.title}{account}{strategic}"
    for role in ("coo", "ceo"):
        if role in roles:
            for leader in User.select().where((User.role == role) & (User.active == True)):  # noqa: E712
                if leader.id in told:
                    continue
                notify(app, leader, "escalation.resolved", message, esc,
                       email=("resolved", dict(ctx, recipient=leader.name)), dedupe="resolved")
                told.add(leader.id)
    for user in consulted_users(esc):      # A1: the manager who handed it over hears too
        if user.id not in told:
            notify(app, user, "escalation.resolved", message, esc, dedupe="resolved")
            told.add(user.id)


def hold(app, code, reason, until=None):
    """ON HOLD (waiting for external input): the resolution clock pauses.

    With ``until`` the escalation resumes by itself at that time (:func:`resume_due_holds`,
    called by the SLA sweep); a logged call or message from the client or the reporter also
    resumes it (:func:`resume` with ``by_system=True``).
    """
    actor = app.actor
    esc = get_escalation(app, code)
    reason = (reason or "").strip()
    if not reason:
        raise Refused("Please provide a reason for putting the escalation on hold")
    if esc.owner_id != actor.id and actor.role not in ("coo", "ceo", "admin"):
        raise Refused("You must take ownership first")
    check_transition(esc, "hold")
    now = app.now
    if until is not None and until <= now:
        raise Refused("The hold must end in the future")
    with atomic():
        changed = (Escalation.update(status="on_hold", hold_started_at=now, hold_until=until,
                                     hold_reason=reason, updated_at=now, last_action="held",
                                     last_action_at=now, version=Escalation.version + 1)
                   .where((Escalation.id == esc.id) & (Escalation.version == esc.version))
                   .execute())
        if not changed:
            raise Conflict(f"{esc.code} changed while you were putting it on hold; look again")
        esc = Escalation.get_by_id(esc.id)
        pause_resolution_clock(esc)
        zone = app.get_settings().zone
        log_activity(app, esc, "status_change", subject="ON HOLD",
                     body=f"{actor.name} put the escalation on hold: {reason}"
                          + (f" (until {when(until, zone)})" if until else ""))
        emit(app, "escalation.held", esc, {
            "escalation_id": esc.code, "held_by": actor.login, "held_at": now,
            "reason": reason, "until": until})
    return esc


def resume(app, code, by_system=False, why=None, at=None):
    """Take an escalation off hold: back to IN PROGRESS (or ESCALATED if it was).

    A person (``by_system=False``): the owner or a leader runs ``escalate resume``; an
    escalation that is not ON HOLD is refused (IllegalTransition, exit 1).

    The system (``by_system=True``), for the hold's end (:func:`resume_due_holds`) and for
    "a logged call or message from the client or reporter resumes it" (the comms services
    call it after logging the call or message, inside or outside their own transaction):

    - ``code``: the escalation's code; no permission check (the caller has done its own);
      NotFound if there is no such escalation.
    - ``why``: a short reason shown in the timeline and the event, e.g. "call logged with
      Jane Doe" or "message from John Smith".
    - ``at``: when the hold ended (default: now); the paused time is counted up to it.
    - Returns the escalation, or None when it was not ON HOLD (nothing written), so callers
      may call it unconditionally; of concurrent calls exactly one resumes.
    - The timeline entry is the System's; the event ``escalation.resumed`` has
      ``resumed_by: "system"`` and ``triggered_by``: the acting user's login, if any. The
      owner is told in-app.

    Either way the paused business time moves the resolution due time by exactly that much
    (see :mod:`escalate_cli.sla`), and the event and timeline entry commit with the change.
    """
    if by_system:
        esc = Escalation.get_or_none(Escalation.code == (code or "").strip().upper())
        if esc is None:
            raise NotFound()
        if esc.status != "on_hold":
            return None
        actor = None
    else:
        actor = app.actor
        esc = get_escalation(app, code)
        if esc.owner_id != actor.id and actor.role not in ("coo", "ceo", "admin"):
            raise Refused("You must take ownership first")
        check_transition(esc, "resume")
    at = min(at or app.now, app.now)
    if esc.hold_started_at is not None:
        at = max(at, esc.hold_started_at)
    back_to = "escalated" if esc.escalated_at is not None else "in_progress"
    with atomic():
        changed = (Escalation.update(status=back_to, updated_at=app.now, last_action="resumed",
                                     last_action_at=at, version=Escalation.version + 1)
                   .where((Escalation.id == esc.id) & (Escalation.status == "on_hold")
                          & (Escalation.version == esc.version)).execute())
        if not changed:
            if by_system:
                return None
            raise Conflict(f"{esc.code} changed while you were resuming it; look again")
        business, wall = _end_hold(app, esc, at)
        held_at = esc.hold_started_at
        esc = Escalation.get_by_id(esc.id)
        who = actor.name if actor else "System"
        body = (f"{who} resumed the escalation" if actor else "Resumed automatically") \
            + (f" ({why})" if why else "") \
            + f"; on hold {duration_short(wall)} this time, {duration_short(esc.paused_wall_seconds)} in all"
        log_activity(app, esc, "status_change", subject=STATUS_LABEL[back_to], body=body,
                     occurred_at=at, system=by_system)
        triggered = _acting_login(app) if by_system else None
        emit(app, "escalation.resumed", esc, {
            "escalation_id": esc.code, "resumed_by": actor.login if actor else "system",
            "triggered_by": triggered, "resumed_at": at, "held_at": held_at,
            "paused_business_seconds": business, "paused_wall_seconds": wall,
            "reason": why, "resolution_due": esc.resolution_due if back_to == "in_progress" else None})
        if by_system and esc.owner_id:
            notify(app, esc.owner, "escalation.resumed",
                   f"{esc.code} is back {STATUS_LABEL[back_to]}"
                   + (f": {why}" if why else ""), esc,
                   dedupe=f"resumed-{int(held_at.timestamp()) if held_at else 0}")
    return esc


def _acting_login(app):
    """The login of the person on whose behalf the system acts, if there is one."""
    if app._actor is None and app.login:
        try:
            app.actor
        except EscalateError:
            return None
    return app._actor.login if app._actor is not None else None


def resume_due_holds(app):
    """Resume every hold whose ``--until`` time has passed; returns the escalations resumed.

    For the SLA sweep: one indexed range query on ``hold_until`` (only escalations ON HOLD
    have one; it is cleared when the hold ends), then one transaction per escalation. Each
    hold ends at its ``hold_until``, not at the time of the sweep, so a late sweep does not
    stretch the pause. Safe to run concurrently from several hosts: each hold is resumed
    once, the others see it already resumed and skip it.
    """
    zone = app.get_settings().zone
    due = list(Escalation.select(Escalation.code, Escalation.hold_until)
               .where((Escalation.hold_until <= app.now) & (Escalation.status == "on_hold"))
               .order_by(Escalation.hold_until, Escalation.id))
    resumed = []
    for row in due:
        try:
            esc = resume(app, row.code, by_system=True, at=row.hold_until,
                         why=f"hold until {when(row.hold_until, zone)} ended")
        except (Conflict, NotFound, IllegalTransition):
            continue
        if esc is not None:
            resumed.append(esc)
    return resumed


def escalate_further(app, code, to_role, note):
    """A1: hand the escalation to the COO or CEO; the manager becomes Consulted."""
    actor = app.actor
    esc = get_escalation(app, code)
    if to_role not in ("coo", "ceo"):
        raise Refused("Escalate to coo or ceo")
    note = _required_text(note, "note for the " + to_role.upper())
    if not can_manage(actor, esc):
        raise Refused("Only a manager of this pod or a leader can escalate further")
    check_transition(esc, "escalate")
    leader = User.select().where((User.role == to_role) & (User.active == True)).order_by(User.id).first()  # noqa: E712
    if leader is None:
        raise Refused(f"There is no {to_role.upper()} on file: ask an admin to add one")
    if esc.owner_id == leader.id:
        raise IllegalTransition(f"{esc.code} is already with the {to_role.upper()}")
    if esc.status == "escalated" and actor.role not in ("coo", "ceo", "admin"):
        # the leader owns it now; the manager is Consulted and cannot take it back
        raise Refused(f"{esc.code} is with {esc.owner.name} now: only they or another leader "
                      f"can escalate it further")
    now = app.now
    previous_owner = esc.owner_id
    with atomic():
        changed = (Escalation.update(
            status="escalated", owner=leader.id, escalated_at=esc.escalated_at or now,
            escalated_to=to_role, claimed_at=esc.claimed_at or now, updated_at=now,
            last_action="escalated", last_action_at=now, version=Escalation.version + 1)
            .where((Escalation.id == esc.id) & (Escalation.version == esc.version)).execute())
        if not changed:
            raise Conflict(f"{esc.code} changed while you were escalating it; look again")
        if esc.status == "on_hold":
            _end_hold(app, esc, now)
        esc = Escalation.get_by_id(esc.id)
        stop_clock(app, esc, "response")
        stop_clock(app, esc, "resolution")   # "resolved or escalated further" ends the window
        for uid in {actor.id, previous_owner} - {None, leader.id}:
            Consulted.insert(escalation=esc.id, user=uid, added_at=now).on_conflict_ignore().execute()
        log_activity(app, esc, "escalated", body=note,
                     subject=f"Escalated to {to_role.upper()} ({leader.name})")
        emit(app, "escalation.escalated", esc, {
            "escalation_id": esc.code, "escalated_by": actor.login, "escalated_to": leader.login,
            "role": to_role, "note": note, "escalated_at": now,
            "consulted": sorted(u.login for u in consulted_users(esc))})
        notify(app, leader, "escalation.escalated",
               f"{actor.name} escalated {esc.code} to you: {esc.title}", esc,
               email=("escalated", dict(_esc_context(app, esc), note=note, manager=actor.name,
                                        recipient=leader.name)),
               sms=(f"URGENT: {esc.code} escalated to you by {actor.name}. Login to handle."
                    if esc.priority == "critical" else None), dedupe=f"escalated-{leader.id}")
        if previous_owner and previous_owner not in (actor.id, leader.id):
            notify(app, User.get_by_id(previous_owner), "escalation.escalated",
                   f"{actor.name} escalated {esc.code} to {leader.name}; you are Consulted", esc,
                   dedupe=f"escalated-consulted-{leader.id}")
    return esc


def approve(app, code):
    """A2: a manager approves the IC's resolution: "Resolved by IC", credit to the IC."""
    actor = app.actor
    esc = get_escalation(app, code)
    if not can_manage(actor, esc):
        raise Refused("Only a manager of this pod or a leader can approve a resolution")
    if not (esc.status == "resolved" and esc.resolved_by_ic and esc.approval == "pending"):
        raise IllegalTransition(f"Cannot approve {esc.code}: there is no IC resolution awaiting approval")
    now = app.now
    with atomic():
        changed = (Escalation.update(approval="approved", approved_by=actor.id, approved_at=now,
                                     updated_at=now, last_action="approved", last_action_at=now,
                                     version=Escalation.version + 1)
                   .where((Escalation.id == esc.id) & (Escalation.approval == "pending")
                          & (Escalation.version == esc.version)).execute())
        if not changed:
            raise Conflict(f"{esc.code} changed while you were approving it; look again")
        esc = Escalation.get_by_id(esc.id)
        log_activity(app, esc, "status_change", subject="RESOLVED BY IC",
                     body=f"{actor.name} approved the resolution: Resolved by IC "
                          f"({esc.resolved_by.name})")
        emit(app, "escalation.approved", esc, {
            "escalation_id": esc.code, "approved_by": actor.login, "approved_at": now,
            "resolved_by": esc.resolved_by.login})
        notify(app, esc.resolved_by, "escalation.approved",
               f"{actor.name} approved your resolution of {esc.code}: Resolved by IC", esc,
               dedupe="approved")
    return esc


def set_substate(app, code, text, note=None):
    """A3: 'In Progress - Investigating' and the like, with an optional progress update.

    The update is part of the public timeline (the reporter sees it), unlike investigation
    notes; ``resolve --with-timeline`` carries it into the resolution notes.
    """
    actor = app.actor
    esc = get_escalation(app, code)
    if esc.owner_id != actor.id:
        raise Refused("You must take ownership first")
    check_transition(esc, "progress")
    text = _required_text(text, "sub-state", 100, one_line=True)
    note = (note or "").strip() or None
    now = app.now
    with atomic():
        changed = (Escalation.update(substate=text, updated_at=now, last_action="progress",
                                     last_action_at=now, version=Escalation.version + 1)
                   .where((Escalation.id == esc.id) & (Escalation.version == esc.version))
                   .execute())
        if not changed:
            raise Conflict(f"{esc.code} changed while you were updating it; look again")
        log_activity(app, esc, "status_change", subject=f"IN PROGRESS - {text.upper()}",
                     body=f"{actor.name}: In Progress - {text}" + (f": {note}" if note else ""))
        emit(app, "escalation.progress", esc, {"escalation_id": esc.code, "substate": text,
                                                "update": note, "by": actor.login, "at": now})
    return Escalation.get_by_id(esc.id)


def change_priority(app, code, priority, reason):
    """Change the priority; the running clocks are recomputed under the escalation's policy
    snapshot for the new priority. A clock that has stopped keeps its due time."""
    actor = app.actor
    esc = get_escalation(app, code)
    if priority not in PRIORITIES:
        raise Refused(f"Unknown priority '{priority}': choose one of {', '.join(PRIORITIES)}")
    if not can_manage(actor, esc):
        raise Refused("Only a manager of this pod or a leader can change the priority")
    reason = _required_text(reason, "reason for the change")
    check_transition(esc, "reprioritize")
    if esc.priority == priority:
        raise Refused(f"{esc.code} is already {priority}")
    policy = policy_for(app, esc, priority)
    now = app.now
    old = esc.priority
    with atomic():
        changed = (Escalation.update(priority=priority, priority_rank=PRIORITIES.index(priority),
                                     updated_at=now, last_action="reprioritized",
                                     last_action_at=now, version=Escalation.version + 1)
                   .where((Escalation.id == esc.id) & (Escalation.version == esc.version))
                   .execute())
        if not changed:
            raise Conflict(f"{esc.code} changed while you were changing it; look again")
        esc = Escalation.get_by_id(esc.id)
        esc._policy = policy
        share = _warn_share(app, esc)
        if esc.claimed_at is None:
            due = sla.response_due(policy, esc.created_at)
            Escalation.update(response_due=due).where(Escalation.id == esc.id).execute()
            esc.response_due = due
            _set_clock(esc, "response", esc.created_at, due, share)
        if esc.status in ("pending", "in_progress"):
            _refresh_resolution_clock(app, esc, policy)
        elif esc.status == "on_hold" and esc.escalated_at is None:
            due = sla.resolution_due(policy, esc.created_at, esc.paused_seconds)
            Escalation.update(resolution_due=due).where(Escalation.id == esc.id).execute()
            esc.resolution_due = due
        log_activity(app, esc, "status_change", subject=f"PRIORITY {priority.upper()}",
                     body=f"{actor.name} changed the priority from {old} to {priority}: {reason}")
        emit(app, "escalation.reprioritized", esc, {
            "escalation_id": esc.code, "from": old, "to": priority, "by": actor.login,
            "at": now, "reason": reason, "response_due": esc.response_due,
            "resolution_due": esc.resolution_due})
    return esc


def status_label(esc):
    if esc.status == "in_progress" and esc.substate:
        return f"IN PROGRESS - {esc.substate.upper()}"
    if esc.status == "resolved" and esc.resolved_by_ic:
        return "RESOLVED BY IC" if esc.approval == "approved" else "RESOLVED (awaiting approval)"
    return STATUS_LABEL[esc.status]


# -- views --------------------------------------------------------------------------------

def escalation_dict(app, esc, detail=False):
    """The stable JSON shape of an escalation (documented in docs/json.md)."""
    zone = app.get_settings().zone
    now = app.now
    state, breached = sla_state(esc, now)
    end = esc.resolved_at or now
    d = {
        "code": esc.code, "title": esc.title, "status": esc.status,
        "status_label": status_label(esc), "priority": esc.priority,
        "category": esc.category, "subcategory": esc.subcategory,
        "impact": esc.impact, "impact_reason": esc.impact_reason,
        "reporter": esc.reporter.login,
        "owner": esc.owner.login if esc.owner_id else None,
        "pod": esc.pod.name if esc.pod_id else None,
        "account": esc.account.name if esc.account_id else None,
        "created_at": _iso(esc.created_at, zone),
        "age_seconds": int((end - esc.created_at).total_seconds()),
        "response_due": _iso(esc.response_due, zone),
        "resolution_due": _iso(esc.resolution_due, zone) if esc.status != "on_hold" else None,
        "sla_state": state, "breached": bool(breached), "breached_clocks": breached,
        "claimed_at": _iso(esc.claimed_at, zone), "resolved_at": _iso(esc.resolved_at, zone),
        "resolution_seconds": esc.resolution_seconds,
        "resolution_time": (duration_short(esc.resolution_seconds)
                            if esc.resolution_seconds is not None else None),
        "resolved_by_ic": esc.resolved_by_ic,
        "policy_version": esc.policy_version,
    }
    if detail:
        d.update({
            "description": esc.description, "assessment": esc.assessment,
            "contact": esc.contact.email if esc.contact_id else None,
            "contract": esc.contract.code if esc.contract_id else None,
            "resolved_by": esc.resolved_by.login if esc.resolved_by_id else None,
            "resolution_notes": esc.resolution_notes, "approval": esc.approval,
            "paused_seconds": esc.paused_seconds, "paused_wall_seconds": esc.paused_wall_seconds,
            "hold_reason": esc.hold_reason if esc.status == "on_hold" else None,
            "hold_until": _iso(esc.hold_until, zone),
            "consulted": [u.login for u in consulted_users(esc)],
            "last_action": esc.last_action, "last_action_at": _iso(esc.last_action_at, zone),
        })
    return d


def _iso(t, zone):
    return t.astimezone(zone).isoformat() if t is not None else None

