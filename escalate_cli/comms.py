"""Talking to people: the client email, tasks, calls and messages (use case steps 6-10, 12).

Each service does its change, timeline entry, events and outbox rows in one transaction, then
delivers what it queued at once when it can (:func:`outbox.deliver_ids`); what cannot go now
stays queued with its error for ``escalate jobs deliver``. What an email to the client
*did* (the ``email`` activity, ``activity.email_sent``, ``last_action``, the reporter told
"Manager sent email to client") is recorded when the server accepts it, by
:func:`after_delivery`, so the timeline never claims an email that was not sent.

Outbound messages are built from explicit contexts: no template ever sees an internal note.
"""
import datetime as dt
import json
import re
import uuid
from dataclasses import dataclass
from email.utils import formataddr

from . import mail, outbox
from .domain import (
    _read_attachment, _required_text, _store_attachment, atomic, can_manage, emit, enqueue,
    get_escalation, log_activity, notify, visible_clause,
)
from .errors import Conflict, DeliveryFailed, IllegalTransition, NotFound, Refused
from .fmt import when as fmt_when
from .models import (
    PRIORITIES, Attachment, Contact, Escalation, Invoice, Meeting, Outbox, Task, Team, TeamMember,
    User,
)

CALL_TYPES = {"phone": "Phone call", "video": "Video call", "in-person": "In-person meeting"}
OUTCOMES = ("positive", "neutral", "negative")
TONES = ("formal", "professional", "casual")
REMINDER_MINUTES = 15
FAILED_EMAIL = "Failed to send email. Please try again."


# -- shared -------------------------------------------------------------------------------

def _require_manager(actor, esc, what):
    if esc.owner_id == actor.id or can_manage(actor, esc):
        return
    raise Refused(f"Only a manager of this pod or a leader can {what}")


def _zone(app):
    return app.get_settings().zone


def long_when(app, t):
    """'Fri, Nov 29, 2024 9:00 AM EST'."""
    local = t.astimezone(_zone(app))
    return f"{local:%a}, {fmt_when(t, _zone(app))} {local:%Z}"


def short_when(app, t):
    """'Nov 29, 2024 5:00 PM EST'."""
    return f"{fmt_when(t, _zone(app))} {t.astimezone(_zone(app)):%Z}"


def clock(app, t):
    """'9:00 AM'."""
    local = t.astimezone(_zone(app))
    return f"{int(local.strftime('%I'))}:{local:%M %p}"


def _addr(name, email):
    return formataddr((_clean_name(name), email))


def _clean_name(name):
    return re.sub(r"[\x00-\x1f\x7f\"]", "", name or "").strip()


def _first(name):
    return (name or "").split()[0] if (name or "").split() else ""


def _from_headers(app, user):
    """Human-authored mail: sent from the company address, in the author's name, replies to them."""
    return {"from_name": f"{_clean_name(user.name)} ({app.get_settings().company})",
            "reply_to": _addr(user.name, user.email), "auto": False}


def _queue(app, key, to, esc, **kw):
    """Enqueue one row under ``key`` and return its id (the existing one if already queued)."""
    enqueue(app, "email", to, esc=esc, key=key, **kw)
    row = Outbox.get_or_none(Outbox.key == key)
    return row.id if row is not None else None


def _email_user(app, user, esc, template, context, key):
    """An email to a user, in the acting user's name, rendered by the deliverer."""
    if not user.email:
        return None
    return _queue(app, key, [_addr(user.name, user.email)], esc, template=template,
                  context=context, headers=_from_headers(app, app.actor))


def _deliver(app, *ids):
    outcomes = outbox.deliver_ids(app, [i for i in ids if i])
    return [outcomes.get(i) for i in ids]


def _link(app, esc):
    base = app.get_settings().base_url
    return f"{base.rstrip('/')}/escalations/{esc.code}" if base and esc is not None else None


# -- step 6: the client email -------------------------------------------------------------

@dataclass
class Sent:
    row: Outbox
    outcome: object = None          # outbox.Outcome, or None (draft, or held by a deliverer)


def client_context(app, esc, actor, contact, variables):
    """What a client template may use: the contact, the contract, the sender. No notes."""
    settings = app.get_settings()
    contract = esc.contract if esc.contract_id else None
    ctx = {
        "code": esc.code, "title": esc.title, "company": settings.company,
        "account": esc.account.name if esc.account_id else None,
        "contact_name": contact.name if contact else None,
        "first_name": _first(contact.name) if contact else "there",
        "contact_title": contact.title if contact else None,
        "sender": actor.name, "sender_first": _first(actor.name),
        "sender_title": actor.title or "", "sender_email": actor.email,
        "reporter": esc.reporter.name,
        "credit_month": _next_month(app),
    }
    if contract is not None:
        ctx.update(candidate=contract.candidate, contract_code=contract.code,
                   agreed_rate=contract.bill_rate, start_date=f"{contract.start_date:%b %d, %Y}")
        invoice = (Invoice.select().where((Invoice.contract == contract.id)
                                          & (Invoice.bill_rate != contract.bill_rate))
                   .order_by(Invoice.imported_at.desc()).first())
        if invoice is not None:
            ctx.update(billed_rate=invoice.bill_rate, hours=invoice.hours,
                       invoice_period=invoice.period, invoice_number=invoice.number)
    meeting = (Meeting.select().where((Meeting.escalation == esc.id)
                                      & (Meeting.status == "scheduled")
                                      & (Meeting.starts_at > app.now))
               .order_by(Meeting.starts_at).first())
    if meeting is not None:
        ctx["call_time"] = clock(app, meeting.starts_at)
    ctx.update(variables or {})
    hours, agreed, billed = (mail._decimal(ctx.get(k)) if ctx.get(k) is not None else None
                             for k in ("hours", "agreed_rate", "billed_rate"))
    if hours is not None and agreed is not None:
        ctx.setdefault("corrected_total", hours * agreed)
    if hours is not None and billed is not None:
        ctx.setdefault("billed_total", hours * billed)
    return ctx


def _next_month(app):
    local = app.now.astimezone(_zone(app))
    return dt.date(local.year + local.month // 12, local.month % 12 + 1, 1).strftime("%B")


def _parse_edited(text, subject):
    """The editor buffer: an optional 'Subject: ...' line, a blank line, the body."""
    lines = text.replace("\r\n", "\n").split("\n")
    if lines and lines[0].lower().startswith("subject:"):
        subject = lines[0].split(":", 1)[1].strip()
        lines = lines[1:]
        while lines and not lines[0].strip():
            lines.pop(0)
    body = "\n".join(lines).strip()
    if not body:
        raise Refused("Aborted: the email is empty")
    return subject, body + "\n"


def compose_email(app, code, template, to=None, cc=(), subject=None, variables=None,
                  editor=None, draft=False, attach=()):
    """Email the client from a template: To the contact, CC the reporter, BCC the sender.

    ``editor`` (text -> text) lets the user change the rendered text. Returns :class:`Sent`;
    raises DeliveryFailed with the use case's message when the server does not take it (the
    message stays queued).
    """
    settings = app.get_settings()
    actor = app.actor
    esc = get_escalation(app, code)
    _require_manager(actor, esc, "email the client")
    contact = esc.contact if esc.contact_id else None
    if to is not None:
        to = to.strip()
        if not mail.valid_address(to):
            raise Refused("Invalid client email address")
        contact = Contact.get_or_none(Contact.email == mail.bare_address(to).lower())
    elif contact is None:
        raise Refused(f"{esc.code} has no client contact: pass --to EMAIL")
    else:
        to = contact.email
        if not mail.valid_address(to):
            raise Refused("Invalid client email address")
    extra_cc = []
    for c in cc:
        if not mail.valid_address(c.strip()):
            raise Refused(f"Invalid email address {c.strip()!r}")
        extra_cc.append(c.strip())
    if subject is not None:
        mail.check_header(subject, "subject")
    allowed = mail.template_names(settings, for_clients=True)
    if template in mail.template_names(settings) and template not in allowed:
        raise Refused(f"Template '{template}' is an internal notice, not a client email: "
                      f"choose one of {', '.join(sorted(allowed))}")
    ctx = client_context(app, esc, actor, contact, variables)
    rendered = mail.render(settings, template, ctx)
    subj = subject.strip() if subject is not None else rendered.subject
    text, html = rendered.text, rendered.html
    if editor is not None:
        subj, edited = _parse_edited(editor(f"Subject: {subj}\n\n{text}"), subj)
        mail.check_header(subj, "subject")
        if edited.strip() != text.strip():
            html = mail.text_to_html(settings, edited, dict(ctx, subject=subj))
        text = edited
    if not subj:
        raise Refused("Please provide a subject")
    files = [_resolve_attachment(app, esc, path) for path in attach]
    reporter = esc.reporter
    cc_list = [_addr(reporter.name, reporter.email)] \
        if reporter.id != actor.id and reporter.email else []
    seen = {mail.bare_address(x).lower() for x in cc_list + [to]}
    cc_list += [c for c in extra_cc if mail.bare_address(c).lower() not in seen]
    to_header = _addr(contact.name, contact.email) if contact is not None and "<" not in to else to
    with atomic():
        existing = None if draft else _same_unsent(esc, actor, subj, text)
        if existing is not None:     # "Please try again" must not send it twice
            Outbox.update(status="queued", next_attempt_at=app.now).where(
                (Outbox.id == existing.id) & Outbox.status.in_(["queued", "failed"])).execute()
            row_id = existing.id
        else:
            att_ids = []
            for item in files:
                if isinstance(item, Attachment):
                    att_ids.append(item.id)
                else:
                    att_ids.append(_store_attachment(app, esc, *item, actor).id)
            key = f"{'draft' if draft else 'email'}:client:{esc.id}:{uuid.uuid4().hex}"
            row_id = _queue(
                app, key, [to_header], esc, cc=cc_list, bcc=[_addr(actor.name, actor.email)],
                subject=subj, text=text, html=html, template=template,
                headers=_from_headers(app, actor), status="draft" if draft else "queued",
                parts={"attachments": att_ids, "after": {
                    "kind": "client_email", "to": mail.bare_address(to).lower(),
                    "contact_id": contact.id if contact is not None else None,
                    "template": template}})
    row = Outbox.get_by_id(row_id)
    if draft:
        return Sent(row)
    return _send_client_row(app, row, contact)


def _same_unsent(esc, actor, subject, text):
    return (Outbox.select().where((Outbox.escalation == esc.id) & (Outbox.author == actor.id)
                                  & Outbox.status.in_(["queued", "failed"])
                                  & (Outbox.subject == subject) & (Outbox.body_text == text)
                                  & Outbox.key.startswith("email:client:"))
            .order_by(Outbox.id).first())


def _resolve_attachment(app, esc, path):
    """A file to attach: a path on disk, else one of the escalation's documents by name."""
    import os
    if os.path.exists(path):
        return _read_attachment(app, path)
    att = (Attachment.select().where((Attachment.escalation == esc.id) & (Attachment.name == path))
           .order_by(Attachment.id.desc()).first())
    if att is None:
        raise Refused(f"{path}: no such file (nor a document of {esc.code} by that name)")
    return att


def _send_client_row(app, row, contact):
    outcome = _deliver(app, row.id)[0]
    row = Outbox.get_by_id(row.id)
    if outcome is None:
        return Sent(row)
    after = json.loads(row.parts or "{}").get("after", {})
    to = after.get("to")
    if to and to in {mail.bare_address(a).lower() for a in outcome.refused}:
        if contact is not None:
            raise DeliveryFailed(outbox.unreachable_message(Contact.get_by_id(contact.id)))
        raise DeliveryFailed(outbox.UNREACHABLE)
    if outcome.status != "sent":
        raise DeliveryFailed(FAILED_EMAIL)
    return Sent(row, outcome)


def send_draft(app, draft_id):
    """``escalate email send ID``: queue a saved draft and send it now."""
    row = outbox.get_row(app, draft_id)
    if row.status != "draft":
        raise Refused(f"Outbox message #{row.id} is not a draft (it is {row.status})")
    with atomic():
        changed = Outbox.update(status="queued", next_attempt_at=app.now).where(
            (Outbox.id == row.id) & (Outbox.status == "draft")).execute()
    if not changed:
        raise Conflict(f"Draft #{row.id} was sent by someone else just now")
    after = json.loads(row.parts or "{}").get("after", {})
    contact = Contact.get_or_none(Contact.id == after["contact_id"]) \
        if after.get("contact_id") else None
    return _send_client_row(app, row, contact)


def _after_client_email(app, row, outcome, after):
    if outcome.status != "sent":
        return
    to = after.get("to")
    if to in {mail.bare_address(a).lower() for a in outcome.refused}:
        return
    esc = Escalation.get_by_id(row.escalation_id)
    actor = app._actor
    now = app.now
    rcpt = json.loads(row.recipients)
    log_activity(app, esc, "email", direction="outbound", subject=row.subject, body=row.body_text,
                 actor=actor, meta={
                     "direction": "outbound", "entity_type": "escalation", "entity_id": esc.code,
                     "to": rcpt.get("to"), "cc": rcpt.get("cc"), "bcc": rcpt.get("bcc"),
                     "sent_at": now, "outbox_id": row.id, "message_id": row.message_id,
                     "template": after.get("template")})
    Escalation.update(last_action="email_sent", last_action_at=now, updated_at=now).where(
        Escalation.id == esc.id).execute()
    emit(app, "activity.email_sent", esc, {
        "to": to, "subject": row.subject, "body": row.body_text, "escalation_id": esc.code,
        "cc": rcpt.get("cc"), "sent_at": now, "outbox_id": row.id})
    emit(app, "escalation.action_taken", esc, {
        "escalation_id": esc.code, "action_type": "email_sent",
        "action_details": {"to": to, "subject": row.subject, "outbox_id": row.id,
                           "template": after.get("template")}})
    if after.get("contact_id"):
        Contact.update(unreachable_at=None, unreachable_reason=None).where(
            Contact.id == after["contact_id"]).execute()
    if actor is not None and esc.reporter_id != actor.id:
        notify(app, esc.reporter, "escalation.client_emailed", "Manager sent email to client",
               esc, dedupe=f"client-email-{row.id}")


# -- steps 7 and 12: tasks ----------------------------------------------------------------

def resolve_assignee(value):
    """A user login, else a team (key, name, or name without 'Team'); else "Invalid assignee"."""
    value = (value or "").strip()
    if not value or mail.has_line_break(value):
        raise Refused("Invalid assignee")
    user = User.get_or_none(User.login == value)
    if user is not None:
        if not user.active:
            raise Refused("Invalid assignee")
        return user, None
    wanted = value.lower()
    for team in Team.select().order_by(Team.id):
        if wanted in (team.key.lower(), team.name.lower(), outbox.team_short_name(team).lower()):
            return None, team
    raise Refused("Invalid assignee")


def _task_context(app, task, esc, assignee_name, creator):
    return {
        "task_id": task.id, "title": task.title, "description": task.description,
        "due": short_when(app, task.due_at) if task.due_at else "no due date",
        "priority": task.priority, "assignee": assignee_name, "creator": creator.name,
        "code": esc.code if esc else None, "escalation_title": esc.title if esc else None,
        "account": esc.account.name if esc is not None and esc.account_id else None,
        "company": app.get_settings().company, "url": _link(app, esc),
    }


def create_task(app, code, title, assignee, due, priority="medium", description=None):
    """Step 7: a task for a user or a team (the team gets it at its shared address)."""
    actor = app.actor
    esc = get_escalation(app, code)
    _require_manager(actor, esc, "create tasks on this escalation")
    title = _required_text(title, "task title", 300)
    mail.check_header(title, "task title")
    if priority not in PRIORITIES:
        raise Refused(f"Unknown priority '{priority}': choose one of {', '.join(PRIORITIES)}")
    user, team = resolve_assignee(assignee)
    if team is not None and (not team.active or not mail.valid_address(team.email or "")):
        raise Refused(f"Unable to assign task to {outbox.team_short_name(team)}. "
                      f"Please contact Admin.")
    if due is None:
        raise Refused("Please provide a due date")
    if due <= app.now:
        raise Refused("The due date must be in the future")
    description = (description or "").strip() or None
    now = app.now
    with atomic():
        same = Task.select().where(
            (Task.escalation == esc.id) & (Task.title == title) & (Task.status == "open")
            & ((Task.assignee_team == team.id) if team else (Task.assignee_user == user.id))
        ).first()
        if same is not None:      # a retried command, or a second click: never two of them
            raise Conflict(f"Task #{same.id} \"{title}\" for {team.name if team else user.name} "
                           f"is already open")
        task, row_id = _new_task(app, esc, actor, title, user, team, due, priority, description)
        Escalation.update(last_action="task_created", last_action_at=now, updated_at=now).where(
            Escalation.id == esc.id).execute()
        emit(app, "escalation.action_taken", esc, {
            "escalation_id": esc.code, "action_type": "task_created",
            "action_details": {"task_id": task.id, "task_title": title,
                               "assigned_to": team.key if team else user.login}})
    outcome = _deliver(app, row_id)[0]
    if team is not None and outcome is not None and outcome.status == "dead" and outcome.refused:
        raise DeliveryFailed(f"Unable to assign task to {outbox.team_short_name(team)}. "
                             f"Please contact Admin. (Task #{task.id} is recorded, but "
                             f"{team.email} refused its email.)")
    return task, team, outcome


def _new_task(app, esc, actor, title, user, team, due, priority, description, notify_user=True):
    task = Task.create(escalation=esc.id, title=title, description=description,
                       assignee_user=user.id if user else None,
                       assignee_team=team.id if team else None, due_at=due, priority=priority,
                       status="open", created_by=actor.id, created_at=app.now)
    name = team.name if team else user.name
    log_activity(app, esc, "task", subject=title,
                 body=f"{actor.name} created a task for {name}: {title} "
                      f"(due {short_when(app, due)}, {priority})",
                 meta={"task_id": task.id, "assigned_to": team.key if team else user.login,
                       "due_at": due, "priority": priority})
    emit(app, "task.created", esc, {
        "task_id": task.id, "task_title": title, "assigned_to": team.key if team else user.login,
        "assignee_type": "team" if team else "user", "due_date": due, "priority": priority,
        "escalation_id": esc.code, "created_by": actor.login})
    ctx = _task_context(app, task, esc, name, actor)
    message = f"{actor.name} assigned a task to {name}: {title} (due {short_when(app, due)})"
    row_id = None
    if team is not None:
        row_id = _queue(app, f"email:task-{task.id}:{esc.id}:{team.email.lower()}",
                        [_addr(team.name, team.email)], esc, template="task-assigned",
                        context=dict(ctx, message=message), headers=_from_headers(app, actor))
        members = User.select().join(TeamMember, on=(TeamMember.user == User.id)).where(
            (TeamMember.team == team.id) & (User.active == True))  # noqa: E712
        for member in members:
            notify(app, member, "task.assigned", message, esc, dedupe=f"task-{task.id}")
    elif notify_user and user.id != actor.id:
        notify(app, user, "task.assigned", message, esc, dedupe=f"task-{task.id}")
        row_id = _email_user(app, user, esc, "task-assigned", dict(ctx, message=message),
                             f"email:task-{task.id}:{esc.id}:{user.id}")
    return task, row_id


def _my_team_ids(user):
    return [m.team_id for m in TeamMember.select(TeamMember.team).where(TeamMember.user == user.id)]


def list_tasks(app, mine=False, team=None, overdue=False, include_done=False):
    actor = app.actor
    now = app.now
    teams = _my_team_ids(actor)
    query = Task.select()
    if actor.role not in ("coo", "ceo", "admin"):
        visible = Escalation.select(Escalation.id).where(visible_clause(actor))
        query = query.where((Task.assignee_user == actor.id) | Task.assignee_team.in_(teams or [-1])
                            | (Task.created_by == actor.id) | Task.escalation.in_(visible))
    if mine:
        query = query.where((Task.assignee_user == actor.id)
                            | Task.assignee_team.in_(teams or [-1]))
    if team:
        t = Team.get_or_none(Team.key.in_([team.strip(), team.strip().lower()]))
        if t is None:
            raise NotFound(f"Unknown team '{team}'")
        query = query.where(Task.assignee_team == t.id)
    if overdue:
        query = query.where((Task.status == "open") & (Task.due_at < now))
    elif not include_done:
        query = query.where(Task.status == "open")
    return list(query.order_by(Task.status.desc(), Task.due_at, Task.id))


def task_dict(app, task, fmt="json"):
    zone = _zone(app)
    due = task.due_at
    return {
        "id": task.id, "title": task.title,
        "assignee": task.assignee_team.key if task.assignee_team_id else
        (task.assignee_user.login if task.assignee_user_id else None),
        "assignee_name": task.assignee_team.name if task.assignee_team_id else
        (task.assignee_user.name if task.assignee_user_id else None),
        "due": (fmt_when(due, zone) if fmt == "table" else due.astimezone(zone).isoformat())
        if due else None,
        "priority": task.priority, "status": task.status,
        "overdue": task.status == "open" and due is not None and due < app.now,
        "escalation": task.escalation.code if task.escalation_id else None,
        "created_by": task.created_by.login if task.created_by_id else None,
        "description": task.description,
        "assignee_kind": "team" if task.assignee_team_id else
        ("user" if task.assignee_user_id else None),
        "created_at": task.created_at.astimezone(zone).isoformat() if task.created_at else None,
        "done_at": task.done_at.astimezone(zone).isoformat() if task.done_at else None,
        "done_by": task.done_by.login if task.done_by_id else None,
    }


def complete_task(app, task_id, note=None):
    """Step 12: mark a task done; the escalation's owner is told "Task completed: ..."."""
    actor = app.actor
    task = Task.get_or_none(Task.id == task_id)
    if task is None:
        raise NotFound(f"Task #{task_id} not found")
    esc = task.escalation if task.escalation_id else None
    allowed = (task.assignee_user_id == actor.id or task.created_by_id == actor.id
               or (task.assignee_team_id and task.assignee_team_id in _my_team_ids(actor))
               or actor.role in ("coo", "ceo", "admin")
               or (esc is not None and (esc.owner_id == actor.id or can_manage(actor, esc))))
    if not allowed:
        raise NotFound(f"Task #{task_id} not found")
    if task.status == "done":
        raise IllegalTransition(f"Task #{task.id} is already done")
    note = (note or "").strip() or None
    if note:
        mail.check_header(note, "note")
    text = note or task.title
    now = app.now
    row_id = None
    with atomic():
        changed = Task.update(status="done", done_at=now, done_by=actor.id).where(
            (Task.id == task.id) & (Task.status == "open")).execute()
        if not changed:
            raise Conflict(f"Task #{task.id} was completed by someone else just now")
        if esc is not None:
            log_activity(app, esc, "task_done", subject=task.title,
                         body=f"Task completed: {text} ({actor.name})",
                         meta={"task_id": task.id, "note": note})
            emit(app, "task.completed", esc, {
                "task_id": task.id, "task_title": task.title, "completed_by": actor.login,
                "completed_at": now, "escalation_id": esc.code, "note": note})
            owner = esc.owner if esc.owner_id else (task.created_by if task.created_by_id else None)
            if owner is not None and owner.id != actor.id:
                message = f"Task completed: {text}"
                notify(app, owner, "task.completed", message, esc, dedupe=f"task-done-{task.id}")
                ctx = dict(_task_context(app, task, esc, "", actor), text=text, message=message,
                           done_by=actor.name, done_at=short_when(app, now))
                row_id = _email_user(app, owner, esc, "task-done", ctx,
                                     f"email:task-done-{task.id}:{esc.id}:{owner.id}")
    _deliver(app, row_id)
    return Task.get_by_id(task.id), text


# -- steps 8 and 10: calls ----------------------------------------------------------------

def _attendee_names(emails):
    out = []
    for email in emails:
        c = Contact.get_or_none(Contact.email == email)
        u = User.get_or_none(User.email == email) if c is None else None
        out.append(((c or u).name if (c or u) else "", email))
    return out


def _call_context(app, esc, meeting, reason=None):
    organizer = meeting.organizer
    contact = esc.contact if esc.contact_id else None
    label = CALL_TYPES.get(meeting.type, "Call")
    company = app.get_settings().company
    who = contact.name if contact else esc.reporter.name
    account = esc.account.name if esc.account_id else None
    return {
        "summary": f"{label}: {company} & {account or who}",
        "type_label": label, "when": long_when(app, meeting.starts_at),
        "clock": clock(app, meeting.starts_at), "duration": meeting.duration_minutes,
        "agenda": meeting.agenda, "location": _location(meeting, contact),
        "organizer": organizer.name, "organizer_email": organizer.email,
        "contact_name": contact.name if contact else None,
        "contact_phone": contact.phone if contact else None,
        "code": esc.code, "title": esc.title, "company": company,
        "updated": meeting.sequence > 0, "sequence": meeting.sequence, "reason": reason,
    }


def _location(meeting, contact):
    data = json.loads(meeting.attendees or "[]")
    meta = data if isinstance(data, dict) else {}
    if meta.get("location"):
        return meta["location"]
    if meeting.type == "phone" and contact is not None and contact.phone:
        return f"Phone: {contact.phone}"
    return None


def refused_invitees(outcome):
    """The invitees an invite's delivery refused for good, and, when the client is among
    them, the use case's "Unable to reach client..." with the account's other contacts."""
    if outcome is None or not outcome.refused:
        return [], None
    refused = sorted(mail.bare_address(a).lower() for a in outcome.refused)
    for addr in refused:
        contact = Contact.get_or_none(Contact.email == addr)
        if contact is not None:
            return refused, outbox.unreachable_message(contact)
    return refused, None          # a colleague's address: the inbox and timeline say so


def meeting_emails(meeting):
    """The invited addresses. ``meeting.attendees`` is a JSON list of emails, or
    {"emails": [...], "location": "..."} when a location was given."""
    data = json.loads(meeting.attendees or "[]")
    return data.get("emails", []) if isinstance(data, dict) else data


def build_ics(app, esc, meeting, method, ctx):
    """An RFC 5545 invite (REQUEST) or cancellation (CANCEL) for ``meeting``."""
    import icalendar
    settings = app.get_settings()
    zone = settings.zone
    organizer = meeting.organizer
    start = meeting.starts_at.astimezone(zone)
    cal = icalendar.Calendar()
    cal.add("prodid", f"-//{_clean_name(settings.company)}//escalate//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", method)
    ev = icalendar.Event()
    ev.add("uid", meeting.uid)
    ev.add("sequence", meeting.sequence)
    ev.add("dtstamp", app.now.astimezone(dt.timezone.utc))
    ev.add("dtstart", start)
    ev.add("dtend", start + dt.timedelta(minutes=meeting.duration_minutes))
    ev.add("summary", ctx["summary"])
    if meeting.agenda:
        ev.add("description", meeting.agenda)
    if ctx.get("location"):
        ev.add("location", ctx["location"])
    ev.add("status", "CANCELLED" if method == "CANCEL" else "CONFIRMED")
    org = icalendar.vCalAddress(f"mailto:{organizer.email}")
    org.params["cn"] = _clean_name(organizer.name)
    ev.add("organizer", org)
    for name, email in _attendee_names(meeting_emails(meeting)):
        att = icalendar.vCalAddress(f"mailto:{email}")
        if name:
            att.params["cn"] = _clean_name(name)
        att.params["role"] = "REQ-PARTICIPANT"
        att.params["partstat"] = "NEEDS-ACTION"
        att.params["rsvp"] = "TRUE"
        ev.add("attendee", att)
    if method == "REQUEST":
        alarm = icalendar.Alarm()
        alarm.add("action", "DISPLAY")
        alarm.add("description", f"Reminder: {ctx['summary']}")
        alarm.add("trigger", dt.timedelta(minutes=-REMINDER_MINUTES))
        ev.add_component(alarm)
    cal.add_component(ev)
    cal.add_missing_timezones(first_date=(start - dt.timedelta(days=366)).date(),
                              last_date=(start + dt.timedelta(days=366)).date())
    return cal.to_ical().decode()


def _queue_invite(app, esc, meeting, method, reason=None):
    emails = meeting_emails(meeting)
    if not emails:
        return None
    ctx = _call_context(app, esc, meeting, reason)
    template = "call-cancel" if method == "CANCEL" else "call-invite"
    r = mail.render(app.get_settings(), template, ctx, one_line_subject=True)
    ics = build_ics(app, esc, meeting, method, ctx)
    to = [_addr(name, email) for name, email in _attendee_names(emails)]
    return _queue(app, f"invite:{meeting.uid}:{meeting.sequence}", to, esc, subject=r.subject,
                  text=r.text, html=r.html, template=template,
                  headers=_from_headers(app, meeting.organizer),
                  parts={"calendar": ics, "method": method})


def _queue_reminder(app, esc, meeting):
    organizer = meeting.organizer
    at = max(meeting.starts_at - dt.timedelta(minutes=REMINDER_MINUTES), app.now)
    ctx = _call_context(app, esc, meeting)
    who = ctx["contact_name"] or esc.reporter.name
    message = f"Reminder: call with {who} at {ctx['clock']} (in {REMINDER_MINUTES} minutes)"
    enqueue(app, "email", [_addr(organizer.name, organizer.email)], esc=esc,
            key=f"reminder:{meeting.uid}:{meeting.sequence}", template="call-reminder",
            context=ctx, not_before=at,
            parts={"after": {"kind": "reminder", "user_id": organizer.id, "message": message}})


def _after_reminder(app, row, outcome, after):
    user = User.get_or_none(User.id == after.get("user_id"))
    esc = Escalation.get_or_none(Escalation.id == row.escalation_id)
    if user is not None:
        notify(app, user, "call.reminder", after.get("message", "Call reminder"), esc,
               dedupe=f"reminder-{row.id}")


def _get_meeting(app, meeting_id):
    meeting = Meeting.get_or_none(Meeting.id == meeting_id)
    if meeting is None:
        raise NotFound(f"Call #{meeting_id} not found or you don't have access")
    try:
        get_escalation(app, meeting.escalation.code)
    except NotFound:
        raise NotFound(f"Call #{meeting_id} not found or you don't have access")
    return meeting


def schedule_call(app, code, at, duration=30, type_="phone", agenda=None, invite=True,
                  location=None):
    """Step 8: a call with the contact; invite (iCalendar) to the contact and the reporter;
    a reminder to the organizer 15 minutes before."""
    actor = app.actor
    esc = get_escalation(app, code)
    _require_manager(actor, esc, "schedule calls on this escalation")
    if type_ not in CALL_TYPES:
        raise Refused(f"Unknown call type '{type_}': choose one of {', '.join(CALL_TYPES)}")
    if not 1 <= int(duration) <= 480:
        raise Refused("The duration must be between 1 and 480 minutes")
    if at <= app.now:
        raise Refused("The call must be in the future")
    agenda = (agenda or "").strip() or None
    location = (location or "").strip() or None
    if location:
        mail.check_header(location, "location")
    emails = []
    if invite:
        if esc.contact_id and esc.contact.email:
            emails.append(esc.contact.email)
        if esc.reporter_id != actor.id and esc.reporter.email:
            emails.append(esc.reporter.email)
        if not emails:
            raise Refused(f"Nobody to invite: {esc.code} has no client contact (use --no-invite)")
    now = app.now
    uid = f"{uuid.uuid4().hex}@{mail.mail_domain(app.get_settings())}"
    attendees = {"emails": emails, "location": location} if location else emails
    with atomic():
        same = Meeting.get_or_none((Meeting.escalation == esc.id) & (Meeting.starts_at == at)
                                   & (Meeting.status == "scheduled"))
        if same is not None:      # a retried command: one call, one invite
            raise Conflict(f"Call #{same.id} is already scheduled for {long_when(app, at)}")
        meeting = Meeting.create(escalation=esc.id, uid=uid, sequence=0, starts_at=at,
                                 duration_minutes=int(duration), type=type_, agenda=agenda,
                                 status="scheduled", organizer=actor.id,
                                 attendees=json.dumps(attendees), created_at=now)
        log_activity(app, esc, "meeting", subject=f"Call scheduled for {clock(app, at)}",
                     body=agenda, meta={
                         "status": "scheduled", "meeting_id": meeting.id, "starts_at": at,
                         "duration": int(duration), "type": type_, "attendees": emails,
                         "uid": uid})
        Escalation.update(last_action="call_scheduled", last_action_at=now, updated_at=now).where(
            Escalation.id == esc.id).execute()
        emit(app, "meeting.scheduled", esc, {
            "escalation_id": esc.code, "meeting_id": meeting.id, "uid": uid, "starts_at": at,
            "duration": int(duration), "type": type_, "attendees": emails,
            "organizer": actor.login})
        emit(app, "escalation.action_taken", esc, {
            "escalation_id": esc.code, "action_type": "call_scheduled",
            "action_details": {"meeting_id": meeting.id, "starts_at": at}})
        invite_id = _queue_invite(app, esc, meeting, "REQUEST")
        _queue_reminder(app, esc, meeting)
    return meeting, _deliver(app, invite_id)[0]


def reschedule_call(app, meeting_id, at, duration=None):
    actor = app.actor
    meeting = _get_meeting(app, meeting_id)
    esc = meeting.escalation
    _require_manager(actor, esc, "reschedule this call")
    if meeting.status != "scheduled":
        raise IllegalTransition(f"Call #{meeting.id} is {meeting.status}")
    if at <= app.now:
        raise Refused("The call must be in the future")
    if duration is not None and not 1 <= int(duration) <= 480:
        raise Refused("The duration must be between 1 and 480 minutes")
    previous = meeting.starts_at
    now = app.now
    with atomic():
        changed = (Meeting.update(starts_at=at, sequence=Meeting.sequence + 1,
                                  duration_minutes=int(duration or meeting.duration_minutes))
                   .where((Meeting.id == meeting.id) & (Meeting.sequence == meeting.sequence)
                          & (Meeting.status == "scheduled")).execute())
        if not changed:
            raise Conflict(f"Call #{meeting.id} changed while you were rescheduling it; look again")
        meeting = Meeting.get_by_id(meeting.id)
        outbox.cancel_waiting(f"reminder:{meeting.uid}:")
        log_activity(app, esc, "meeting", subject=f"Call rescheduled to {clock(app, at)}",
                     body=f"{actor.name} moved the call from {short_when(app, previous)} "
                          f"to {short_when(app, at)}",
                     meta={"status": "rescheduled", "meeting_id": meeting.id, "starts_at": at,
                           "previous_starts_at": previous, "sequence": meeting.sequence})
        emit(app, "meeting.rescheduled", esc, {
            "escalation_id": esc.code, "meeting_id": meeting.id, "uid": meeting.uid,
            "starts_at": at, "previous_starts_at": previous, "sequence": meeting.sequence,
            "rescheduled_by": actor.login})
        Escalation.update(last_action="call_rescheduled", last_action_at=now, updated_at=now).where(
            Escalation.id == esc.id).execute()
        invite_id = _queue_invite(app, esc, meeting, "REQUEST")
        _queue_reminder(app, esc, meeting)
    return meeting, _deliver(app, invite_id)[0]


def cancel_call(app, meeting_id, reason=None):
    actor = app.actor
    meeting = _get_meeting(app, meeting_id)
    esc = meeting.escalation
    _require_manager(actor, esc, "cancel this call")
    if meeting.status != "scheduled":
        raise IllegalTransition(f"Call #{meeting.id} is {meeting.status}")
    reason = (reason or "").strip() or None
    now = app.now
    with atomic():
        changed = (Meeting.update(status="cancelled", sequence=Meeting.sequence + 1)
                   .where((Meeting.id == meeting.id) & (Meeting.sequence == meeting.sequence)
                          & (Meeting.status == "scheduled")).execute())
        if not changed:
            raise Conflict(f"Call #{meeting.id} changed while you were cancelling it; look again")
        meeting = Meeting.get_by_id(meeting.id)
        outbox.cancel_waiting(f"reminder:{meeting.uid}:")
        log_activity(app, esc, "meeting", subject="Call cancelled",
                     body=f"{actor.name} cancelled the call of {short_when(app, meeting.starts_at)}"
                          + (f": {reason}" if reason else ""),
                     meta={"status": "cancelled", "meeting_id": meeting.id,
                           "sequence": meeting.sequence})
        Escalation.update(last_action="call_cancelled", last_action_at=now, updated_at=now).where(
            Escalation.id == esc.id).execute()
        emit(app, "meeting.cancelled", esc, {
            "escalation_id": esc.code, "meeting_id": meeting.id, "uid": meeting.uid,
            "sequence": meeting.sequence, "cancelled_by": actor.login, "reason": reason})
        invite_id = _queue_invite(app, esc, meeting, "CANCEL", reason)
    return meeting, _deliver(app, invite_id)[0]


def list_calls(app, code):
    esc = get_escalation(app, code)
    return list(Meeting.select().where(Meeting.escalation == esc.id).order_by(Meeting.starts_at))


def log_call(app, code, duration, outcome, summary, contact=None, meeting_id=None):
    """Step 10: log a call on the escalation (and close the scheduled call it was)."""
    actor = app.actor
    esc = get_escalation(app, code)
    if outcome not in OUTCOMES:
        raise Refused(f"Unknown outcome '{outcome}': choose one of {', '.join(OUTCOMES)}")
    if not 1 <= int(duration) <= 600:
        raise Refused("The duration must be between 1 and 600 minutes")
    summary = _required_text(summary, "call summary")
    if contact:
        who = Contact.get_or_none(Contact.email == contact.strip().lower())
        if who is None or (esc.account_id and who.account_id != esc.account_id):
            raise Refused(f"Unknown contact '{contact}' for {esc.code}")
    else:
        who = esc.contact if esc.contact_id else None
    if meeting_id is not None:
        meeting = Meeting.get_or_none((Meeting.id == meeting_id) & (Meeting.escalation == esc.id))
        if meeting is None:
            raise NotFound(f"Call #{meeting_id} not found on {esc.code}")
    else:
        meeting = (Meeting.select().where(
            (Meeting.escalation == esc.id) & (Meeting.status == "scheduled")
            & (Meeting.starts_at <= app.now + dt.timedelta(hours=1)))
            .order_by(Meeting.starts_at.desc()).first())
    label = CALL_TYPES.get(meeting.type if meeting else "phone", "Call")
    now = app.now
    with atomic():
        act = log_activity(
            app, esc, "call", direction="outbound",
            subject=f"{label}{f' with {who.name}' if who else ''} ({int(duration)} min, {outcome})",
            body=summary, meta={"duration": int(duration), "outcome": outcome,
                                "contact_id": who.email if who else None,
                                "meeting_id": meeting.id if meeting else None})
        if meeting is not None:
            Meeting.update(status="done").where((Meeting.id == meeting.id)
                                                & (Meeting.status == "scheduled")).execute()
            outbox.cancel_waiting(f"reminder:{meeting.uid}:")
        Escalation.update(last_action="call_logged", last_action_at=now, updated_at=now).where(
            Escalation.id == esc.id).execute()
        emit(app, "activity.call_logged", esc, {
            "contact_id": who.email if who else None, "duration": int(duration),
            "outcome": outcome, "escalation_id": esc.code,
            "meeting_id": meeting.id if meeting else None, "logged_by": actor.login})
        emit(app, "escalation.action_taken", esc, {
            "escalation_id": esc.code, "action_type": "call_logged",
            "action_details": {"duration": int(duration), "outcome": outcome,
                               "activity_id": act.id}})
    return act, meeting


# -- step 9: messages ---------------------------------------------------------------------

def send_message(app, code, text, tone="professional", one_on_one=None, topic=None):
    """Message the reporter (in-app and email); with ``one_on_one``, a 1:1 task for you."""
    actor = app.actor
    esc = get_escalation(app, code)
    _require_manager(actor, esc, "message the reporter")
    if tone not in TONES:
        raise Refused(f"Unknown tone '{tone}': choose one of {', '.join(TONES)}")
    reporter = esc.reporter
    if reporter.id == actor.id:
        raise Refused(f"You reported {esc.code}: there is nobody to message")
    text = _required_text(text, "message")
    if one_on_one is not None and one_on_one <= app.now:
        raise Refused("The 1:1 must be in the future")
    topic = (topic or "").strip() or "Escalation Review"
    mail.check_header(topic, "topic")          # it becomes a task title and a subject
    now = app.now
    task = None
    with atomic():
        act = log_activity(app, esc, "message", direction="outbound",
                           subject=f"Message to {reporter.name}", body=text,
                           meta={"to": reporter.login, "tone": tone})
        emit(app, "activity.message_sent", esc, {
            "escalation_id": esc.code, "to": reporter.login, "from": actor.login,
            "tone": tone, "body": text, "sent_at": now})
        preview = " ".join(text.split())
        preview = preview if len(preview) <= 120 else preview[:117] + "..."
        notify(app, reporter, "message", f"Message from {actor.name} on {esc.code}: {preview}",
               esc, dedupe=f"message-{act.id}")
        ctx = {"text": text, "tone": tone, "sender": actor.name, "recipient": reporter.name,
               "code": esc.code, "title": esc.title, "company": app.get_settings().company}
        row_id = _email_user(app, reporter, esc, "message", ctx,
                             f"email:message-{act.id}:{esc.id}:{reporter.id}")
        if one_on_one is not None:
            title = f"1:1 with {_first(reporter.name)} - {topic}"
            task, _ = _new_task(app, esc, actor, title[:300], actor, None, one_on_one, "medium",
                                None, notify_user=False)
        Escalation.update(last_action="message_sent", last_action_at=now, updated_at=now).where(
            Escalation.id == esc.id).execute()
    return act, task, _deliver(app, row_id)[0]


# -- after delivery -----------------------------------------------------------------------

AFTER = {"client_email": _after_client_email, "reminder": _after_reminder}


def after_delivery(app, row, outcome, after):
    """Called by the deliverer, in the transaction that records a row sent (or dead)."""
    hook = AFTER.get(after.get("kind"))
    if hook is not None:
        hook(app, row, outcome, after)
