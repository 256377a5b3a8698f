"""Delivering the outbox: every email and SMS goes out, none is lost, none goes twice.

A row is written by the change that causes it (``domain.enqueue``, in the change's
transaction). Delivery happens after the commit, by the command when it can and by
``escalate jobs deliver`` otherwise:

- **Claiming.** A deliverer takes a batch in one short transaction: it selects due rows
  (queued or failed whose ``next_attempt_at`` has come, or ``sending`` rows whose lease has
  expired) and marks them ``sending`` with its own ``lease_owner`` and a ``lease_until``, by a
  conditional UPDATE. On PostgreSQL the candidates are selected ``FOR UPDATE SKIP LOCKED``,
  so two deliverers on two hosts take disjoint batches without waiting on each other; on
  SQLite the IMMEDIATE transaction serialises claimers. A row is only ever marked sent by
  the deliverer whose lease it holds.
- **Crashes.** A deliverer killed mid-batch leaves its rows ``sending``; when the lease
  expires the next run takes them again. A message the SMTP server had already accepted
  just before the kill goes out again with the same Message-ID (at-least-once is the best
  any SMTP client can do; mail programs drop the duplicate by Message-ID).
- **Failures.** An SMTP 4xx, a refused connection or a timeout leaves the row ``failed``
  with its error and retries it with exponential backoff; a 5xx (or too many attempts)
  makes it ``dead``. Recipients the server refuses for good (5xx) are recorded on the
  contact and the escalation; one it refuses for now (4xx, greylisting) is retried.
- **Partial delivery.** The recipients a server has accepted, and those it refused for
  good, are kept on the row (``recipients.done``): a retry goes only to the others, so
  nobody receives the same message twice.
"""
import copy
import datetime as dt
import json
import os
import socket
import uuid
from dataclasses import dataclass, field

from . import mail
from .errors import Conflict, NotFound, Refused
from .models import Attachment, Contact, Escalation, Outbox, Team, User

DUE_STATUSES = ("queued", "failed")
NO_SMS = "not sent: no SMS gateway configured (ESCALATE_SMS_URL or [sms] url)"
OPEN_STATUSES = ("queued", "sending", "failed")


@dataclass
class Outcome:
    """What happened to one row."""
    id: int
    channel: str
    status: str                      # sent / failed / dead
    error: str | None = None
    refused: dict = field(default_factory=dict)
    to: list = field(default_factory=list)
    skipped: bool = False            # the channel is not configured here (no SMS gateway)
    done: list = field(default_factory=list)   # recipients never to send this row to again
    gave_up: list = field(default_factory=list)   # of those, the ones refused for good


@dataclass
class Summary:
    claimed: int = 0
    sent: int = 0
    failed: int = 0
    dead: int = 0
    skipped: int = 0
    errors: list = field(default_factory=list)

    def add(self, outcome):
        if outcome.skipped:
            self.skipped += 1
            return
        setattr(self, outcome.status, getattr(self, outcome.status) + 1)
        if outcome.error:
            self.errors.append(f"#{outcome.id}: {outcome.error}")


def lease_owner():
    return f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def _is_postgres():
    from .models import database_proxy
    return type(database_proxy.obj).__name__.startswith("Postgres")


def _due(now):
    return ((Outbox.status.in_(DUE_STATUSES) & (Outbox.next_attempt_at <= now))
            | ((Outbox.status == "sending") & (Outbox.lease_until < now)))


def claim(app, owner, limit, ids=None):
    """Take up to ``limit`` due rows (among ``ids`` if given) under a lease; return them."""
    from .domain import atomic
    now = app.now
    lease = now + dt.timedelta(seconds=app.get_settings().outbox_lease_seconds)
    with atomic():
        query = Outbox.select(Outbox.id).where(_due(now))
        if ids is not None:
            query = query.where(Outbox.id.in_(list(ids)))
        query = query.order_by(Outbox.next_attempt_at, Outbox.id).limit(limit)
        if _is_postgres():
            query = query.for_update(skip_locked=True)
        picked = [r.id for r in query]
        if not picked:
            return []
        (Outbox.update(status="sending", lease_owner=owner, lease_until=lease,
                       attempts=Outbox.attempts + 1)
         .where(Outbox.id.in_(picked) & _due(now)).execute())
        return list(Outbox.select().where(Outbox.id.in_(picked) & (Outbox.lease_owner == owner)
                                          & (Outbox.status == "sending")).order_by(Outbox.id))


def due_count(app):
    """How many messages are due now (for a progress bar)."""
    app.db
    return Outbox.select().where(_due(app.now)).count()


def deliver_due(app, limit=500, batch=20):
    """Deliver what is due, ``batch`` rows per claim, at most ``limit``; the delivery job."""
    from . import progress
    app.db                      # bind the store: a job needs no acting user
    owner = lease_owner()
    summary = Summary()
    run = _Run(app)
    bar = progress.bar("Delivering", min(limit, due_count(app)) if progress.enabled() else 0)
    try:
        while summary.claimed < limit:
            rows = claim(app, owner, min(batch, limit - summary.claimed))
            if not rows:
                break
            summary.claimed += len(rows)
            for row in rows:
                summary.add(_deliver(app, row, owner, run))
                bar.update(1)
            if run.smtp_error is not None and all(r.channel == "email" for r in rows):
                break          # the server is down: the rest waits for the next run
    finally:
        bar.finish()
        run.close()
    return summary


def deliver_ids(app, ids):
    """Deliver these rows now if they are due; {id: Outcome}, missing when not claimed
    (not yet due, already sent, or held by another deliverer)."""
    ids = [i for i in ids if i is not None]
    if not ids:
        return {}
    owner = lease_owner()
    run = _Run(app)
    try:
        return {row.id: _deliver(app, row, owner, run) for row in claim(app, owner, len(ids), ids)}
    finally:
        run.close()


def deliver_keys(app, keys):
    """Deliver the rows of these keys now, if still due (``deliver_ids`` by key)."""
    keys = list(dict.fromkeys(keys))
    channels = ["email"] + (["sms"] if app.get_settings().sms_url else [])
    ids = []
    for i in range(0, len(keys), 500):     # a channel not set up here waits for the deliverer
        ids.extend(r[0] for r in Outbox.select(Outbox.id).where(
            Outbox.key.in_(keys[i:i + 500]) & Outbox.status.in_(DUE_STATUSES)
            & Outbox.channel.in_(channels)).tuples())
    return deliver_ids(app, ids)


class _Run:
    """Transports shared by the rows of one run; one SMTP connection, opened on demand."""

    def __init__(self, app):
        self.settings = app.get_settings()
        self.smtp = None
        self.smtp_error = None

    def smtp_transport(self):
        if self.smtp_error is not None:
            raise self.smtp_error
        if self.smtp is None or self.smtp.smtp is None:
            transport = mail.SmtpTransport(self.settings)
            try:
                transport.connect()
            except mail.TransportError as exc:
                self.smtp_error = exc
                raise
            self.smtp = transport
        return self.smtp

    def close(self):
        if self.smtp is not None:
            self.smtp.close()


# -- one row ------------------------------------------------------------------------------

def _loads(text, default):
    return json.loads(text) if text else default


def _deliver(app, row, owner, run):
    settings = app.get_settings()
    recipients = _loads(row.recipients, {})
    outcome = Outcome(id=row.id, channel=row.channel, status="sent", to=recipients.get("to", []))
    rendered = {}
    if row.attempts > settings.outbox_max_attempts:
        outcome.status = "dead"
        outcome.error = f"gave up after {settings.outbox_max_attempts} attempts"
    else:
        try:
            if row.channel == "email":
                rendered = _send_email(app, row, recipients, run, outcome)
            elif row.channel == "sms" and not settings.sms_url:
                # No gateway here: not a failure to retry every run, but visible in
                # 'escalate outbox --failed' with its reason.
                outcome.status, outcome.skipped = "dead", True
                outcome.error = NO_SMS
            elif row.channel == "sms":
                for number in recipients.get("to", []):
                    mail.send_sms(settings, number, row.body_text or "")
            else:
                raise mail.TransportError(f"unknown channel {row.channel!r}", permanent=True)
        except mail.TransportError as exc:
            outcome.error = str(exc)
            outcome.status = "dead" if exc.permanent else "failed"
        except Refused as exc:                         # a template or header problem
            outcome.status, outcome.error = "dead", exc.message
        if outcome.status == "failed" and row.attempts >= settings.outbox_max_attempts:
            outcome.status = "dead"
            outcome.error = f"{outcome.error} (gave up after {row.attempts} attempts)"
    _finish(app, row, owner, outcome, rendered)
    return outcome


def _send_email(app, row, recipients, run, outcome):
    from email.utils import formataddr
    settings = app.get_settings()
    headers = _loads(row.headers, {})
    parts = _loads(row.parts, {})
    rendered = {}
    subject, text, html = row.subject, row.body_text, row.body_html
    if text is None:
        if not row.template:
            raise mail.TransportError("nothing to send: no body and no template", permanent=True)
        r = mail.render(settings, row.template, _loads(row.context, {}), one_line_subject=True)
        subject, text, html = subject or r.subject, r.text, r.html
        rendered = {"subject": subject, "body_text": text, "body_html": html}
    esc = Escalation.get_or_none(Escalation.id == row.escalation_id) if row.escalation_id else None
    from_name = headers.get("from_name") or f"{settings.company} Escalations"
    mail.check_header(from_name, "sender name")
    attachments = []
    for att_id in parts.get("attachments", []):
        att = Attachment.get_or_none(Attachment.id == att_id)
        if att is None:
            raise mail.TransportError(f"attachment #{att_id} no longer exists", permanent=True)
        attachments.append((att.name, att.content_type, bytes(att.data)))
    outgoing = mail.Outgoing(
        from_addr=formataddr((from_name, mail.bare_address(settings.mail_from))),
        envelope_from=mail.bare_address(settings.mail_from),
        to=recipients.get("to", []), cc=recipients.get("cc", []), bcc=recipients.get("bcc", []),
        reply_to=headers.get("reply_to"), subject=subject or "", text=text, html=html,
        message_id=mail.message_id(settings, row.id, row.key),
        thread_root=mail.thread_root(settings, esc) if esc is not None else None,
        date=app.now.astimezone(settings.zone), attachments=attachments,
        calendar=parts.get("calendar"), calendar_method=parts.get("method"),
        auto_submitted=headers.get("auto", True))
    done = {a.lower() for a in recipients.get("done", [])}
    refused_before = {a.lower() for a in recipients.get("refused", [])}
    outgoing.skip = frozenset(done)
    envelope = outgoing.recipients
    rendered["message_id"] = outgoing.message_id
    to = {mail.bare_address(a).lower() for a in outgoing.to}
    if not envelope:               # everyone was reached, or refused for good, before
        outcome.done, outcome.gave_up = sorted(done), sorted(refused_before)
        if to <= refused_before:
            outcome.status = "dead"
            outcome.error = "refused earlier: " + ", ".join(sorted(refused_before))
        return rendered
    message = mail.build_message(outgoing)
    try:
        transport = run.smtp_transport()
        refused = transport.send(outgoing, message)
    except mail.TransportError as exc:
        if exc.connection:
            run.smtp = None
        if not exc.refused:
            raise
        refused = exc.refused          # every recipient refused: sorted out below
    refused = {mail.bare_address(a).lower(): v for a, v in refused.items()}
    for_good = {a: v for a, v in refused.items() if v[0] >= 500}
    for_now = {a: v for a, v in refused.items() if v[0] < 500}
    outcome.refused = for_good
    outcome.done = sorted(done | {a.lower() for a in envelope if a.lower() not in for_now})
    outcome.gave_up = sorted(refused_before | set(for_good))
    if for_now:
        outcome.status = "failed"
        outcome.error = "refused for now, will retry: " + mail._refusals(for_now) + (
            "; refused: " + mail._refusals(for_good) if for_good else "")
    elif for_good and to <= set(for_good) | refused_before:
        outcome.status = "dead"
        outcome.error = "refused: " + mail._refusals(for_good)
    elif for_good:
        outcome.error = "some recipients refused: " + mail._refusals(for_good)
    return rendered


def _finish(app, row, owner, outcome, rendered):
    """Record the outcome, if we still hold the lease; then what follows from it."""
    from .domain import atomic
    settings = app.get_settings()
    now = app.now
    values = dict(lease_owner=None, lease_until=None, last_error=outcome.error)
    if outcome.status == "sent":
        values.update(status="sent", sent_at=now, next_attempt_at=None)
    elif outcome.status == "dead":
        values.update(status="dead", next_attempt_at=None)
    else:
        delay = min(settings.outbox_backoff_seconds * 2 ** max(row.attempts - 1, 0),
                    settings.outbox_backoff_max_seconds)
        values.update(status="failed", next_attempt_at=now + dt.timedelta(seconds=delay))
    values.update(rendered)
    if outcome.done:
        recipients = _loads(row.recipients, {})
        recipients["done"] = outcome.done
        if outcome.gave_up:
            recipients["refused"] = outcome.gave_up
        values["recipients"] = json.dumps(recipients)
    with atomic():
        held = (Outbox.update(**values)
                .where((Outbox.id == row.id) & (Outbox.lease_owner == owner)
                       & (Outbox.status == "sending")).execute())
        if not held:          # our lease expired and another deliverer took the row over
            return
        row = Outbox.get_by_id(row.id)
        author_app = _as_author(app, row)
        recorded = record_refusals(author_app, row, outcome.refused) if outcome.refused else False
        if outcome.status == "failed":
            return
        if outcome.status == "dead" and not recorded and not outcome.skipped:
            _record_dead(author_app, row, outcome)
        after = _loads(row.parts, {}).get("after")
        if after:
            from .comms import after_delivery
            after_delivery(author_app, row, outcome, after)


def _as_author(app, row):
    """The app as the message's author, so the timeline and events name who sent it."""
    other = copy.copy(app)
    other._actor = User.get_or_none(User.id == row.author_id) if row.author_id else None
    return other


def _record_dead(app, row, outcome):
    from .domain import emit, log_activity
    if not row.escalation_id:
        return
    esc = Escalation.get_by_id(row.escalation_id)
    to = ", ".join(_loads(row.recipients, {}).get("to", []))
    what = f"Email \"{row.subject}\"" if row.channel == "email" and row.subject else \
        ("Email" if row.channel == "email" else "SMS")
    log_activity(app, esc, "delivery_failed", actor=None, subject="Delivery failed",
                 body=f"{what} to {to} could not be delivered: {outcome.error}",
                 meta={"outbox_id": row.id})
    emit(app, "outbox.dead", esc, {"escalation_id": esc.code, "outbox_id": row.id,
                                   "channel": row.channel, "to": to, "error": outcome.error})


# -- refused recipients -------------------------------------------------------------------

UNREACHABLE = "Unable to reach client. Please try alternate contact."


def alternate_contacts(contact):
    return list(Contact.select().where((Contact.account == contact.account_id)
                                       & (Contact.id != contact.id)
                                       & Contact.unreachable_at.is_null())
                .order_by(Contact.name))


def contact_line(c):
    extra = ", ".join(x for x in (c.title, c.phone) if x)
    return f"{c.name} <{c.email}>" + (f" ({extra})" if extra else "")


def unreachable_message(contact):
    """The use case's message, with the account's other contacts."""
    others = alternate_contacts(contact)
    account = contact.account.name
    if not others:
        return f"{UNREACHABLE} No other contacts on file for {account}."
    return (f"{UNREACHABLE} Other contacts at {account}: "
            + "; ".join(contact_line(c) for c in others))


def team_short_name(team):
    name = team.name
    return name[:-5] if name.lower().endswith(" team") else name


def record_refusals(app, row, refused):
    """Mark refused contacts unreachable; tell the escalation and the author. True if any."""
    from .domain import emit, log_activity, notify
    esc = Escalation.get_or_none(Escalation.id == row.escalation_id) if row.escalation_id else None
    now = app.now
    for addr, (code, text) in refused.items():
        bare = mail.bare_address(addr).lower()
        reason = f"{code} {text}"
        contact = Contact.get_or_none(Contact.email == bare)
        team = Team.get_or_none(Team.email == bare) if contact is None else None
        if contact is not None:
            Contact.update(unreachable_at=now, unreachable_reason=reason).where(
                Contact.id == contact.id).execute()
            message = unreachable_message(contact)
        elif team is not None:
            message = f"Unable to assign task to {team_short_name(team)}. Please contact Admin."
        else:
            message = f"Unable to reach {bare}."
        if esc is None:
            continue
        log_activity(app, esc, "delivery_failed", actor=None,
                     subject="Unable to reach client" if contact is not None else "Delivery failed",
                     body=f"{bare} refused \"{row.subject or row.channel}\": {reason}. {message}",
                     meta={"outbox_id": row.id, "to": bare, "code": code})
        emit(app, "activity.email_bounced", esc, {
            "escalation_id": esc.code, "to": bare, "code": code, "reason": text,
            "contact_id": contact.email if contact is not None else None, "outbox_id": row.id})
        if app._actor is not None:
            notify(app, app._actor, "delivery.refused", message, esc,
                   dedupe=f"refused-{row.id}-{bare}")
    return True


# -- reading and retrying -----------------------------------------------------------------

def _visible(app):
    from .domain import visible_clause
    actor = app.actor
    query = Outbox.select()
    if actor.role not in ("coo", "ceo", "admin"):
        visible = Escalation.select(Escalation.id).where(visible_clause(actor))
        query = query.where((Outbox.author == actor.id) | Outbox.escalation.in_(visible))
    return query.where((Outbox.status != "draft") | (Outbox.author == actor.id))


def list_rows(app, failed=False, drafts=False, everything=False, limit=200):
    """What waits and why: queued, sending and failed (``failed``: failed and dead)."""
    query = _visible(app)
    if failed:
        query = query.where(Outbox.status.in_(["failed", "dead"]))
    elif drafts:
        query = query.where(Outbox.status == "draft")
    elif not everything:
        query = query.where(Outbox.status.in_(list(OPEN_STATUSES)))
    return list(query.order_by(Outbox.id.desc()).limit(limit))


def get_row(app, row_id):
    row = _visible(app).where(Outbox.id == row_id).first()
    if row is None:
        raise NotFound(f"Outbox message #{row_id} not found or you don't have access")
    return row


def row_dict(app, row, detail=False):
    zone = app.get_settings().zone
    rcpt = _loads(row.recipients, {})

    def iso(t):
        return t.astimezone(zone).isoformat() if t is not None else None
    d = {"id": row.id, "channel": row.channel, "status": row.status,
         "escalation": row.escalation.code if row.escalation_id else None,
         "to": rcpt.get("to", []), "cc": rcpt.get("cc", []),
         "subject": row.subject or (f"({row.template})" if row.template else
                                    (row.body_text or "")[:60]),
         "attempts": row.attempts, "next_attempt_at": iso(row.next_attempt_at),
         "last_error": row.last_error, "created_at": iso(row.created_at),
         "sent_at": iso(row.sent_at)}
    if detail:
        d.update({"bcc": rcpt.get("bcc", []), "template": row.template,
                  "message_id": row.message_id, "lease_owner": row.lease_owner,
                  "lease_until": iso(row.lease_until), "body_text": row.body_text})
    return d


def retry(app, row_id):
    """Force a retry now (failed, dead or waiting rows); the outcome, or None if another
    deliverer holds it."""
    from .domain import atomic
    actor = app.actor
    row = get_row(app, row_id)
    if row.author_id != actor.id and actor.role not in ("manager", "coo", "ceo", "admin"):
        raise Refused(f"Only the author, a manager or an admin can retry outbox message #{row.id}")
    if row.status == "sent":
        from .fmt import when
        raise Refused(f"Outbox message #{row.id} was already sent "
                      f"({when(row.sent_at, app.get_settings().zone)})")
    if row.status == "draft":
        raise Refused(f"Outbox message #{row.id} is a draft: "
                      f"send it with 'escalate email send {row.id}'")
    if row.status == "cancelled":
        raise Refused(f"Outbox message #{row.id} was cancelled")
    if row.status == "sending" and row.lease_until and row.lease_until >= app.now:
        raise Conflict(f"Outbox message #{row.id} is being sent right now; look again in a minute")
    values = dict(status="queued", next_attempt_at=app.now, lease_owner=None, lease_until=None)
    recipients = _loads(row.recipients, {})
    if recipients.get("refused"):       # asked again by a person: those refused get another go
        gave_up = {a.lower() for a in recipients.pop("refused")}
        recipients["done"] = [a for a in recipients.get("done", []) if a.lower() not in gave_up]
        values["recipients"] = json.dumps(recipients)
    with atomic():
        (Outbox.update(**values)
         .where((Outbox.id == row.id) & (Outbox.status == row.status)).execute())
    return deliver_ids(app, [row.id]).get(row.id)


def cancel_waiting(key_prefix):
    """Cancel rows not yet sent whose key starts with ``key_prefix`` (stale reminders)."""
    return (Outbox.update(status="cancelled", next_attempt_at=None)
            .where(Outbox.key.startswith(key_prefix) & Outbox.status.in_(["queued", "failed"]))
            .execute())
