"""The floor of show, list, claim and create: click and peewee running the same queries.

What a command costs beyond this is the product's own overhead (its imports, its Python
between the queries, its rendering). The SQL here is what escalate runs for the same
screen (see escalate_cli/domain.py): the user and their pods, then the escalation by code
(show, claim), the manager's queue (list), or the inserts of a new escalation (create).
Output is plain ``print``: no tabulate, no templates. Same environment as the command:
ESCALATE_DB, ESCALATE_USER, ESCALATE_NOW.
"""
import datetime as dt
import os
import sys

import click


def _peewee(postgres):
    """peewee, without letting it import psycopg2 for a SQLite store (as escalate does)."""
    if postgres:
        import peewee
        return peewee
    hidden = [m for m in ("psycopg2", "psycopg") if m not in sys.modules]
    for m in hidden:
        sys.modules[m] = None
    try:
        import peewee
    finally:
        for m in hidden:
            sys.modules.pop(m, None)
    return peewee


def connect():
    from urllib.parse import parse_qsl, unquote, urlsplit
    url = os.environ["ESCALATE_DB"]
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        pw = _peewee(False)
        db = pw.SqliteDatabase((parts.netloc or "") + unquote(parts.path), timeout=5,
                               pragmas={"journal_mode": "wal", "foreign_keys": 1,
                                        "busy_timeout": 5000, "synchronous": "normal"})
    else:
        pw = _peewee(True)
        kw = dict(parse_qsl(parts.query), host=parts.hostname, port=parts.port or 5432,
                  user=parts.username)
        db = pw.PostgresqlDatabase(parts.path.lstrip("/"), **kw)
    db.connect()
    return db, parts.scheme != "sqlite"


def now():
    t = dt.datetime.fromisoformat(os.environ["ESCALATE_NOW"])
    return t.astimezone(dt.timezone.utc).replace(tzinfo=None)


class Ctx:
    def __init__(self):
        self.db, self.pg = connect()
        self.p = "%s" if self.pg else "?"
        self.now = now()

    def q(self, sql, params=()):
        return self.db.execute_sql(sql.replace("?", self.p), params)

    def user(self):
        row = self.q('SELECT "id", "role", "pod_id", "name" FROM "user" WHERE "login" = ?',
                     (os.environ["ESCALATE_USER"],)).fetchone()
        pods = [r[0] for r in self.q('SELECT "id" FROM "pod" WHERE "manager_id" = ?', (row[0],))]
        if row[2] and row[2] not in pods:
            pods.append(row[2])
        return row, pods


ESC_BY_CODE = '''SELECT e."id", e."code", e."title", e."status", e."priority", e."pod_id", e."owner_id",
  e."reporter_id", e."account_id", e."created_at", e."response_due", e."resolution_due",
  e."description", e."assessment", r."name", o."name", a."name", a."strategic", c."name",
  c."email", k."code", k."bill_rate", k."pay_rate"
FROM "escalation" e JOIN "user" r ON r."id" = e."reporter_id"
LEFT JOIN "user" o ON o."id" = e."owner_id" LEFT JOIN "account" a ON a."id" = e."account_id"
LEFT JOIN "contact" c ON c."id" = e."contact_id" LEFT JOIN "contract" k ON k."id" = e."contract_id"
WHERE e."code" = ?'''

# The manager's queue: the first page of escalate_cli.domain.list_escalations for a manager,
# its candidate ids chosen by the SQL of escalate_cli.queue (given by the runner in
# BENCH_QUEUE_SQL, so that this process imports none of escalate).
QUEUE = '''SELECT e."code", e."priority", e."status", e."title", a."name", o."name", e."created_at",
  e."response_due", e."resolution_due", e."claimed_at", r."login", p."name"
FROM "escalation" e JOIN "user" r ON r."id" = e."reporter_id"
LEFT JOIN "user" o ON o."id" = e."owner_id" LEFT JOIN "account" a ON a."id" = e."account_id"
LEFT JOIN "pod" p ON p."id" = e."pod_id"
WHERE e."id" IN ({candidates})
ORDER BY e."priority_rank",
  (CASE WHEN e."status" = 'pending' THEN e."response_due"
        WHEN e."status" = 'in_progress' THEN e."resolution_due" END) IS NULL,
  CASE WHEN e."status" = 'pending' THEN e."response_due"
       WHEN e."status" = 'in_progress' THEN e."resolution_due" END,
  e."created_at"
LIMIT 200'''


@click.group()
def cli():
    """Floors of the benchmark."""


@cli.command()
@click.argument("code")
def show(code):
    c = Ctx()
    user, pods = c.user()
    esc = c.q(ESC_BY_CODE, (code,)).fetchone()
    if esc is None or not (user[1] in ("coo", "ceo", "admin") or esc[5] in pods
                           or user[0] in (esc[6], esc[7])):
        sys.exit(3)
    for value in esc:
        print(value)
    for row in c.q('SELECT u."name" FROM "user" u JOIN "consulted" x ON x."user_id" = u."id" '
                   'WHERE x."escalation_id" = ? ORDER BY x."added_at"', (esc[0],)):
        print(row)
    for row in c.q('SELECT a."occurred_at", a."type", a."subject", a."body", u."name" FROM "activity" a '
                   'LEFT JOIN "user" u ON u."id" = a."actor_id" WHERE a."escalation_id" = ? '
                   'ORDER BY a."occurred_at", a."id"', (esc[0],)):
        print(row)
    for row in c.q('SELECT "id", "name", "size" FROM "attachment" WHERE "escalation_id" = ? '
                   'ORDER BY "id"', (esc[0],)):
        print(row)
    if esc[8]:
        for row in c.q('SELECT "code", "title", "status" FROM "escalation" WHERE "account_id" = ? '
                       'AND "created_at" < ? AND "id" <> ? ORDER BY "created_at" DESC LIMIT 10',
                       (esc[8], esc[9], esc[0])):
            print(row)


@cli.command("list")
def list_():
    import json
    c = Ctx()
    c.user()
    candidates, params = json.loads(os.environ["BENCH_QUEUE_SQL"])
    for row in c.q(QUEUE.format(candidates=candidates), params):
        print(*row, sep="  ")


@cli.command()
@click.argument("code")
def claim(code):
    c = Ctx()
    user, pods = c.user()
    esc = c.q(ESC_BY_CODE, (code,)).fetchone()
    if esc is None or esc[5] not in pods:
        sys.exit(3)
    with c.db.atomic():
        won = c.q('UPDATE "escalation" SET "owner_id" = ?, "status" = ?, "claimed_at" = ?, '
                  '"updated_at" = ?, "last_action" = ?, "last_action_at" = ?, "version" = "version" + 1 '
                  'WHERE "id" = ? AND "owner_id" IS NULL AND "status" = ?',
                  (user[0], "in_progress", c.now, c.now, "claimed", c.now, esc[0], "pending")).rowcount
        if not won:
            sys.exit(4)
        c.q('UPDATE "sla_clock" SET "stopped_at" = ?, "met" = ?, "next_check_at" = NULL '
            'WHERE "escalation_id" = ? AND "kind" = ?', (c.now, True, esc[0], "response"))
        _timeline_event_notice(c, esc[0], user[0], esc[7], "escalation_claimed",
                               f"{user[3]} took ownership", "escalation.assigned", "claimed")
    print(f"{code}: Owner: {user[3]} (You). Status: IN PROGRESS")


@cli.command()
@click.option("--title", required=True)
@click.option("--category", required=True)
@click.option("--priority", required=True)
@click.option("--account")
@click.option("--description", required=True)
def create(title, category, priority, account, description):
    c = Ctx()
    user, pods = c.user()
    acc = c.q('SELECT "id" FROM "account" WHERE "name" = ?', (account,)).fetchone() if account else None
    pod = c.q('SELECT "id", "manager_id" FROM "pod" WHERE "id" = ?', (user[2],)).fetchone()
    day = c.now.date()
    with c.db.atomic():
        row = c.q('SELECT "last" FROM "code_counter" WHERE "day" = ?', (day,)).fetchone()
        seq = (row[0] + 1) if row else 1
        if row:
            c.q('UPDATE "code_counter" SET "last" = ? WHERE "day" = ?', (seq, day))
        else:
            c.q('INSERT INTO "code_counter" ("day", "last") VALUES (?, ?)', (day, seq))
        code = f"ESC-{day:%Y-%m-%d}-{seq:03d}"
        due = c.now + dt.timedelta(hours=4)
        cur = c.q('INSERT INTO "escalation" ("code", "day", "seq", "title", "category", "priority", '
                  '"priority_rank", "impact", "status", "reporter_id", "pod_id", "account_id", '
                  '"description", "created_at", "resolved_by_ic", "policy_version", "response_due", '
                  '"resolution_due", "paused_seconds", "paused_wall_seconds", "source", "version", '
                  '"updated_at") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)'
                  + (' RETURNING "id"' if c.pg else ''),
                  (code, day, seq, title, category, priority, 1, "medium", "pending", user[0],
                   pod[0] if pod else None, acc[0] if acc else None, description, c.now, False,
                   "default-1", due, due, 0, 0, "manual", 1, c.now))
        esc_id = cur.fetchone()[0] if c.pg else cur.lastrowid
        for kind in ("response", "resolution"):
            c.q('INSERT INTO "sla_clock" ("escalation_id", "kind", "started_at", "warn_at", "due_at", '
                '"next_check_at") VALUES (?, ?, ?, ?, ?, ?)', (esc_id, kind, c.now, due, due, due))
        _timeline_event_notice(c, esc_id, user[0], pod[1] if pod else user[0], "created",
                               f"{user[3]} escalated to manager: {title}", "escalation.created", "new")
    print(code)


def _timeline_event_notice(c, esc_id, actor, recipient, activity, body, event, kind):
    """The rows every change writes with it: timeline, event, in-app notice and outbox email."""
    c.q('INSERT INTO "activity" ("escalation_id", "type", "internal", "body", "actor_id", '
        '"occurred_at", "created_at") VALUES (?, ?, ?, ?, ?, ?, ?)',
        (esc_id, activity, False, body, actor, c.now, c.now))
    c.q('INSERT INTO "event" ("name", "escalation_id", "actor_id", "payload", "created_at") '
        'VALUES (?, ?, ?, ?, ?)', (event, esc_id, actor, '{"escalation_id": %d}' % esc_id, c.now))
    key = f"{kind}:{esc_id}:{recipient}"
    c.q('INSERT INTO "notification" ("user_id", "escalation_id", "kind", "message", "created_at", '
        '"dedupe_key") VALUES (?, ?, ?, ?, ?, ?)', (recipient, esc_id, kind, body, c.now, key))
    c.q('INSERT INTO "outbox" ("key", "channel", "escalation_id", "author_id", "recipients", '
        '"template", "context", "status", "attempts", "next_attempt_at", "created_at") '
        'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
        ("email:" + key, "email", esc_id, actor, '{"to": ["someone@intime.com"]}', kind, "{}",
         "queued", 0, c.now, c.now))


if __name__ == "__main__":
    cli()
