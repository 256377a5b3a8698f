"""Reminders: tasks due soon and overdue, idle escalations.

Each reminder is sent once, by its key: a task's by the task and its due time (a task whose
due time moves is reminded again), an idle escalation's by its last action. Call reminders
are not here: ``escalate call schedule`` queues the owner's reminder for 15 minutes before
the call, and moves or drops it on reschedule or cancel (escalate_cli.comms); the deliver
job sends it on time.
"""
import datetime as dt

import peewee as pw

from escalate_cli import domain
from escalate_cli.fmt import duration_long, when
from escalate_cli.models import Escalation, Task, TeamMember, User

from . import timing
from .conf import job_settings
from .notices import Notices


def _stamp(t):
    return int(t.timestamp())


def _esc_url(app, code):
    s = app.get_settings()
    return f"{s.base_url.rstrip('/')}/escalations/{code}" if s.base_url and code else None


class Result:
    def __init__(self, kinds):
        self.due_soon = kinds.get("reminder.task_due_soon", 0)
        self.overdue = kinds.get("reminder.task_overdue", 0)
        self.follow_ups = kinds.get("reminder.follow_up", 0)
        self.warnings = []

    def summary(self):
        return (f"{self.due_soon} due-soon and {self.overdue} "
                f"overdue task reminder(s), {self.follow_ups} follow-up(s)")


def reminders(app, tick=None):
    notices = Notices(app)
    app.db                      # bind the models to the store
    _tasks(app, notices)
    _follow_ups(app, notices)
    with domain.atomic():
        result = Result(notices.drop_known().kinds())
        notices.flush()
    return result


def _tasks(app, notices):
    now = app.now
    js = job_settings(app)
    cal = app.get_settings().calendar()
    not_before, send = timing.delivery_window(cal, now, False, js.after_hours)
    soon = Task.select().where((Task.status == "open") & Task.due_at.is_null(False)
                               & (Task.due_at > now) & (Task.due_at <= now + js.task_due_soon))
    for t in soon.order_by(Task.due_at):
        _task_notice(app, notices, t, "due-soon", not_before, send)
    overdue = Task.select().where((Task.status == "open") & (Task.due_at <= now))
    for t in overdue.order_by(Task.due_at):
        urgent = t.priority == "critical"
        nb, sd = timing.delivery_window(cal, now, urgent, js.after_hours)
        _task_notice(app, notices, t, "overdue", nb, sd)


def _task_notice(app, notices, task, which, not_before, send):
    now, zone = app.now, app.get_settings().zone
    esc = task.escalation if task.escalation_id else None
    code = esc.code if esc else None
    if which == "overdue":
        message = (f"Task overdue: {task.title} (due {when(task.due_at, zone)}"
                   + (f", {code}" if code else "") + ")")
    else:
        message = (f"Task due soon: {task.title} (due {when(task.due_at, zone)}"
                   + (f", {code}" if code else "") + ")")
    ctx = {"task": task.title, "description": task.description, "due": when(task.due_at, zone),
           "overdue": which == "overdue", "priority": task.priority, "code": code,
           "title": esc.title if esc else None,
           "overdue_by": duration_long((now - task.due_at).total_seconds()) if which == "overdue" else None,
           "company": app.get_settings().company, "url": _esc_url(app, code), "recipient": None}
    dedupe = f"task-{which}-{task.id}-{_stamp(task.due_at)}"
    esc_id = esc.id if esc else None
    people = []
    if task.assignee_user_id:
        people.append(task.assignee_user)
    elif task.assignee_team_id:
        team = task.assignee_team
        if team.email:
            notices.email_address(team.email, dedupe, esc_id, "task-reminder",
                                  dict(ctx, recipient=team.name, message=message),
                                  not_before=not_before)
        people += list(User.select().join(TeamMember, on=(TeamMember.user == User.id))
                       .where(TeamMember.team == team.id))
    if which == "overdue" and esc is not None and esc.owner_id:
        people.append(esc.owner)           # the owner is waiting on it
    seen = set()
    for user in people:
        if user.id in seen or not user.active:
            continue
        seen.add(user.id)
        # a team member is told in-app; the team address already has the email
        email = ("task-reminder", dict(ctx, recipient=user.name)) if (
            task.assignee_user_id == user.id or user.id == (esc.owner_id if esc else None)) else None
        notices.notify(user, f"reminder.task_{which.replace('-', '_')}", message, esc_id,
                       email=email, dedupe=dedupe, not_before=not_before, send_email=send)


def _follow_ups(app, notices):
    """Owners of escalations in progress with no action for ``follow_up_after``."""
    now, zone = app.now, app.get_settings().zone
    js = job_settings(app)
    cal = app.get_settings().calendar()
    owner = User.alias()
    idle = (Escalation.select(Escalation, owner)
            .join(owner, on=(Escalation.owner == owner.id), attr="owner")
            .where(Escalation.status.in_(["in_progress", "escalated"])
                   & (pw.fn.COALESCE(Escalation.last_action_at, Escalation.created_at)
                      <= _naive(now - js.follow_up_after))))
    for esc in idle:
        last = esc.last_action_at or esc.created_at
        if not esc.owner.active:
            continue
        urgent = esc.priority == "critical"
        not_before, send = timing.delivery_window(cal, now, urgent, js.after_hours)
        message = (f"Follow up: no action on {esc.code} for {duration_long((now - last).total_seconds())} "
                   f"({esc.title})")
        ctx = {"code": esc.code, "title": esc.title, "priority": esc.priority,
               "status": domain.status_label(esc), "last_action": esc.last_action,
               "last_action_at": when(last, zone),
               "idle_for": duration_long((now - last).total_seconds()),
               "company": app.get_settings().company, "url": _esc_url(app, esc.code),
               "recipient": esc.owner.name}
        notices.notify(esc.owner, "reminder.follow_up", message, esc.id,
                       email=("follow-up-reminder", ctx), dedupe=f"follow-up-{_stamp(last)}",
                       not_before=not_before, send_email=send)


def _naive(t):
    return t.astimezone(dt.timezone.utc).replace(tzinfo=None)
