"""Raw floors: the SLA sweep as set-based SQL through sqlite3 / psycopg2, and delivery as
plain smtplib. No click, no peewee: the least a process can do for the same work.

    python bench/floor_raw.py sweep       # ESCALATE_DB, ESCALATE_NOW
    python bench/floor_raw.py deliver     # ESCALATE_DB, ESCALATE_SMTP_HOST, ESCALATE_SMTP_PORT

The sweep floor does, in one transaction, what a sweep must write for every clock whose
``next_check_at`` has come: an event, a timeline entry, an in-app notice and an outbox email
to the owner (or the pod manager), then marks the clocks warned or breached and moves their
next check; and resumes the escalations whose ``hold_until`` has come.
"""
import datetime as dt
import os
import sys
from urllib.parse import parse_qsl, unquote, urlsplit


def connect():
    url = os.environ["ESCALATE_DB"]
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        import sqlite3
        conn = sqlite3.connect((parts.netloc or "") + unquote(parts.path), isolation_level=None,
                               timeout=30)
        conn.execute("PRAGMA busy_timeout = 30000")
        return conn, "?", False
    import psycopg2
    kw = dict(parse_qsl(parts.query), host=parts.hostname, port=parts.port or 5432,
              user=parts.username, dbname=parts.path.lstrip("/"))
    return psycopg2.connect(**kw), "%s", True


def now():
    t = dt.datetime.fromisoformat(os.environ["ESCALATE_NOW"])
    return t.astimezone(dt.timezone.utc).replace(tzinfo=None)


BREACH = '''(c."warned_at" IS NOT NULL OR c."due_at" <= {p})'''


def sweep():
    conn, p, pg = connect()
    t = now()
    ts = t.isoformat(" ") if not pg else t
    cur = conn.cursor()
    if not pg:
        cur.execute("BEGIN IMMEDIATE")
    name = (f"CASE WHEN {BREACH.format(p=p)} THEN 'escalation.sla_breached' "
            f"ELSE 'escalation.sla_warning' END")
    source = (f'FROM "sla_clock" c JOIN "escalation" e ON e."id" = c."escalation_id" '
              f'LEFT JOIN "pod" pd ON pd."id" = e."pod_id" WHERE c."next_check_at" <= {p}')
    owner = 'COALESCE(e."owner_id", pd."manager_id")'
    key = f"'sla:' || c.\"id\" || ':' || (CASE WHEN {BREACH.format(p=p)} THEN 'b' ELSE 'w' END)"
    cur.execute(f'INSERT INTO "event" ("name", "escalation_id", "payload", "created_at", "dedupe_key") '
                f'SELECT {name}, c."escalation_id", \'{{}}\', {p}, {key} {source}', (ts, ts, ts, ts))
    acted = cur.rowcount
    cur.execute(f'INSERT INTO "activity" ("escalation_id", "type", "internal", "body", "occurred_at", '
                f'"created_at") SELECT c."escalation_id", \'sla\', {"false" if pg else 0}, {name}, {p}, {p} '
                f'{source}', (ts, ts, ts, ts))
    cur.execute(f'INSERT INTO "notification" ("user_id", "escalation_id", "kind", "message", '
                f'"created_at", "dedupe_key") SELECT {owner}, c."escalation_id", {name}, {name}, {p}, '
                f'{key} {source} AND {owner} IS NOT NULL', (ts, ts, ts, ts, ts))
    cur.execute(f'INSERT INTO "outbox" ("key", "channel", "escalation_id", "recipients", "template", '
                f'"status", "attempts", "next_attempt_at", "created_at") '
                f'SELECT \'email:\' || {key}, \'email\', c."escalation_id", \'{{}}\', {name}, \'queued\', 0, '
                f'{p}, {p} {source}', (ts, ts, ts, ts, ts))
    cur.execute(f'UPDATE "sla_clock" SET '
                f'"breached_at" = CASE WHEN "warned_at" IS NOT NULL OR "due_at" <= {p} THEN {p} END, '
                f'"warned_at" = COALESCE("warned_at", {p}), '
                f'"next_check_at" = CASE WHEN "warned_at" IS NULL AND "due_at" > {p} THEN "due_at" END '
                f'WHERE "next_check_at" <= {p}', (ts, ts, ts, ts, ts))
    cur.execute(f'UPDATE "escalation" SET "status" = COALESCE("substate", \'in_progress\'), '
                f'"substate" = NULL, "hold_until" = NULL, "updated_at" = {p} '
                f'WHERE "status" = \'on_hold\' AND "hold_until" <= {p}', (ts, ts))
    resumed = cur.rowcount
    if pg:
        conn.commit()
    else:
        cur.execute("COMMIT")
    print(f"sla-sweep floor: {acted} clocks, {resumed} resumed")


def deliver():
    import smtplib
    from email.message import EmailMessage
    conn, p, pg = connect()
    cur = conn.cursor()
    cur.execute('SELECT "id", "recipients", "subject", "body_text" FROM "outbox" '
                'WHERE "status" = \'queued\' AND "channel" = \'email\' ORDER BY "id"')
    rows = cur.fetchall()
    sent = []
    with smtplib.SMTP(os.environ.get("ESCALATE_SMTP_HOST", "localhost"),
                      int(os.environ.get("ESCALATE_SMTP_PORT", "25"))) as smtp:
        for oid, recipients, subject, body in rows:
            import json
            msg = EmailMessage()
            msg["From"] = "escalations@intime.com"
            msg["To"] = ", ".join(json.loads(recipients)["to"])
            msg["Subject"] = subject or ""
            msg.set_content(body or "")
            smtp.send_message(msg)
            sent.append((oid,))
    if pg:
        cur.executemany('UPDATE "outbox" SET "status" = \'sent\' WHERE "id" = %s', sent)
        conn.commit()
    else:
        cur.execute("BEGIN")
        cur.executemany('UPDATE "outbox" SET "status" = \'sent\' WHERE "id" = ?', sent)
        cur.execute("COMMIT")
    print(f"deliver floor: {len(sent)} sent")


if __name__ == "__main__":
    {"sweep": sweep, "deliver": deliver}[sys.argv[1]]()
