"""Notifications written by the jobs: in bulk, exactly once, inside delivery windows.

:class:`Notices` collects what :func:`escalate_cli.domain.notify` would write (an in-app
notification, an email and an SMS in the outbox, with the same unique keys) and writes it
with a few multi-row inserts instead of one statement per row, so that a sweep acting on
ten thousand escalations costs a few statements per batch. Unlike ``notify`` it can hold an
email back until the recipient's next business start (``not_before``).

Keys: ``{dedupe}:{escalation id or -}:{user id}`` for the in-app row, ``email:`` and
``sms:`` before it for the outbox: a repeated notice is ignored by the unique indexes,
whatever the number of runs, overlaps or hosts.
"""
import datetime as dt
import json

from escalate_cli.models import Activity, Event, Notification, Outbox

CHUNK = 400
UTC = dt.timezone.utc


def _json_default(value):
    """The encoding of :func:`escalate_cli.domain.emit`: UTC ISO times, Decimal as text."""
    if isinstance(value, dt.datetime):
        return value.astimezone(UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _chunks(rows, size=CHUNK):
    for i in range(0, len(rows), size):
        yield rows[i:i + size]


class Notices:
    def __init__(self, app):
        self.app = app
        self.notifications = {}
        self.outbox = {}
        self.events = {}
        self.activities = []
        self.deferred = 0
        self.folded = 0

    def __len__(self):
        return len(self.notifications) + len(self.outbox)

    def notify(self, user, kind, message, esc_id=None, email=None, sms=None, dedupe=None,
               not_before=None, send_email=True):
        """Tell ``user`` in-app, and by email (``(template, context)``) and SMS if given.

        ``not_before`` holds the email back; ``send_email=False`` keeps it in-app only (it
        folds into the digest).
        """
        now = self.app.now
        key = f"{dedupe or kind}:{esc_id if esc_id is not None else '-'}:{user.id}"
        self.notifications.setdefault(key, dict(
            user=user.id, escalation=esc_id, kind=kind, message=message, created_at=now,
            read_at=None, dedupe_key=key))
        if email is not None and user.email:
            if send_email:
                template, context = email
                self.outbox_row(f"email:{key}", "email", [user.email], esc_id, template=template,
                                context=dict(context, message=message), not_before=not_before)
            else:
                self.folded += 1
        if sms is not None and user.phone:
            self.outbox_row(f"sms:{key}", "sms", [user.phone], esc_id, text=sms)
        return key

    def email_address(self, address, key, esc_id, template, context, not_before=None):
        """Email an address that is no user (a team's shared mailbox)."""
        self.outbox_row(f"email:{key}:{esc_id if esc_id is not None else '-'}:{address}", "email",
                        [address], esc_id, template=template, context=context,
                        not_before=not_before)

    def outbox_row(self, key, channel, to, esc_id, template=None, context=None, text=None,
                   not_before=None):
        now = self.app.now
        if key in self.outbox:
            return
        if not_before is not None:
            self.deferred += 1
        self.outbox[key] = dict(
            key=key, channel=channel, escalation=esc_id, author=None,
            recipients=json.dumps({"to": list(to), "cc": [], "bcc": []}),
            subject=None, body_text=text, body_html=None, template=template,
            context=json.dumps(context, default=_json_default, sort_keys=True) if context else None,
            headers=None, parts=None, status="queued", attempts=0,
            next_attempt_at=not_before or now, lease_until=None, lease_owner=None,
            last_error=None, message_id=None, not_before=not_before, created_at=now, sent_at=None)

    def event(self, name, esc_id, payload, dedupe_key):
        self.events.setdefault(dedupe_key, dict(
            name=name, escalation=esc_id, actor=None,
            payload=json.dumps(payload, default=_json_default, sort_keys=True),
            created_at=self.app.now, dedupe_key=dedupe_key))

    def activity(self, esc_id, type_, subject, body, occurred_at=None, meta=None):
        now = self.app.now
        self.activities.append(dict(
            escalation=esc_id, type=type_, internal=False, direction=None, subject=subject,
            body=body, actor=None, occurred_at=occurred_at or now, created_at=now,
            meta=json.dumps(meta, default=_json_default, sort_keys=True) if meta else None))

    def drop_known(self):
        """Forget what an earlier run already wrote, so that counts say what is new."""
        keys = list(self.notifications)
        for chunk in _chunks(keys):
            for n in Notification.select(Notification.dedupe_key).where(
                    Notification.dedupe_key.in_(chunk)):
                self.notifications.pop(n.dedupe_key, None)
        for chunk in _chunks(list(self.outbox)):
            for o in Outbox.select(Outbox.key).where(Outbox.key.in_(chunk)):
                self.outbox.pop(o.key, None)
        return self

    def kinds(self):
        out = {}
        for row in self.notifications.values():
            out[row["kind"]] = out.get(row["kind"], 0) + 1
        return out

    def flush(self):
        """Write everything collected (in the caller's transaction) and start afresh."""
        bulk_insert(Event, list(self.events.values()), ignore=True)
        bulk_insert(Notification, list(self.notifications.values()), ignore=True)
        bulk_insert(Outbox, list(self.outbox.values()), ignore=True)
        bulk_insert(Activity, self.activities)
        counts = dict(notifications=len(self.notifications),
                      emails=sum(1 for r in self.outbox.values() if r["channel"] == "email"),
                      sms=sum(1 for r in self.outbox.values() if r["channel"] == "sms"))
        self.notifications, self.outbox, self.events, self.activities = {}, {}, {}, []
        return counts


def bulk_insert(model, rows, ignore=False):
    """Insert many rows with one prepared statement; ``ignore``: skip those whose unique
    key exists. (Building a multi-row INSERT through the query builder costs more than the
    database does, at ten thousand rows.)"""
    if not rows:
        return
    from escalate_cli.models import database_proxy
    db = database_proxy.obj
    names = list(rows[0])
    fields = [model._meta.fields[n] for n in names]
    columns = ", ".join(f'"{f.column_name}"' for f in fields)
    data = [tuple(f.db_value(row[n]) for f, n in zip(fields, names)) for row in rows]
    table = model._meta.table_name
    cursor = db.cursor()
    if type(db).__name__.startswith("Postgres"):
        from psycopg2.extras import execute_values
        execute_values(cursor, f'INSERT INTO "{table}" ({columns}) VALUES %s'
                               + (" ON CONFLICT DO NOTHING" if ignore else ""), data, page_size=500)
    else:
        marks = ", ".join("?" * len(fields))
        cursor.executemany(f'INSERT {"OR IGNORE " if ignore else ""}INTO "{table}" ({columns}) '
                           f'VALUES ({marks})', data)
