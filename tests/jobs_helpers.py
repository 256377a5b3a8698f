"""Helpers shared by the jobs' tests: read rows straight from the store, spawn real processes."""
import json
import os
import subprocess
import sys

NY = "-05:00"          # the company zone's offset in late November / December 2024


def at(text):
    """'2024-12-02 09:50' -> ISO with the New York offset (EST in these tests)."""
    return text.replace(" ", "T") + ":00" + NY


def query(db_url, sql, *params):
    """Rows of ``sql`` (``?`` placeholders) as dicts."""
    from escalate_cli.db import make_database
    db = make_database(db_url)
    db.connect()
    try:
        if db.param != "?":
            sql = sql.replace("?", db.param)
        cur = db.execute_sql(sql, params)
        names = [c[0] for c in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]
    finally:
        db.close()


def outbox(db_url, template=None):
    rows = query(db_url, 'SELECT * FROM "outbox" ORDER BY "id"')
    for r in rows:
        r["to"] = json.loads(r["recipients"])["to"]
        r["ctx"] = json.loads(r["context"]) if r["context"] else {}
    return [r for r in rows if template is None or r["template"] == template]


def notifications(db_url, kind=None):
    rows = query(db_url, 'SELECT n.*, u."login" AS "login" FROM "notification" n '
                         'JOIN "user" u ON u."id" = n."user_id" ORDER BY n."id"')
    return [r for r in rows if kind is None or r["kind"] == kind]


def events(db_url, name):
    rows = query(db_url, 'SELECT * FROM "event" WHERE "name" = ? ORDER BY "id"', name)
    for r in rows:
        r["payload"] = json.loads(r["payload"])
    return rows


def proc_env(base_env, **extra):
    env = dict(os.environ)
    env.update({k: v for k, v in base_env.items() if v})
    env.pop("ESCALATE_NOW", None)
    env.pop("ESCALATE_USER", None)
    env.update({k: v for k, v in extra.items() if v is not None})
    return env


def spawn(env, *args):
    return subprocess.Popen([sys.executable, "-m", "escalate_cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def create(run, title, priority, when, category="Client Complaint", user="john.smith", **opts):
    args = ["create", "--title", title, "--category", category, "--priority", priority,
            "--description", f"{title}: details for the test"]
    for k, v in opts.items():
        args += [f"--{k.replace('_', '-')}", v]
    r = run(*args, user=user, now=when)
    assert r.exit_code == 0, r.stderr
    return r.stdout.strip()


def utc(text):
    """'2024-12-02 09:00' New York (EST) -> naive UTC, as the store keeps times."""
    import datetime as dt
    t = dt.datetime.fromisoformat(at(text))
    return t.astimezone(dt.timezone.utc).replace(tzinfo=None)


def insert(db_url, table, **values):
    """Insert one row straight into the store (for records another branch's commands make)."""
    from escalate_cli.db import make_database
    db = make_database(db_url)
    db.connect()
    try:
        cols = ", ".join(f'"{k}"' for k in values)
        marks = ", ".join([db.param] * len(values))
        db.execute_sql(f'INSERT INTO "{table}" ({cols}) VALUES ({marks})', list(values.values()))
    finally:
        db.close()


def user_id(db_url, login):
    return query(db_url, 'SELECT "id" FROM "user" WHERE "login" = ?', login)[0]["id"]


def esc_id(db_url, code):
    return query(db_url, 'SELECT "id" FROM "escalation" WHERE "code" = ?', code)[0]["id"]


def render(template, context):
    """Render a message as the deliverer will: Jinja2, HTML autoescaped, strict variables."""
    import jinja2
    env = jinja2.Environment(loader=jinja2.PackageLoader("escalate_templates", "."),
                             autoescape=jinja2.select_autoescape(["html.j2"]),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return {part: env.get_template(f"{template}.{part}.j2").render(**context)
            for part in ("subject", "txt", "html")}


def settle_demo(run):
    """Take the demo's escalation out of the way: claimed and resolved before Monday."""
    code = "ESC-2024-11-28-001"
    assert run("claim", code, user="sarah.martinez", now=at("2024-12-02 07:00")).exit_code == 0
    r = run("resolve", code, "--notes", "Corrected invoice issued, client called back and "
            "accepted the apology; credit applied.", user="sarah.martinez",
            now=at("2024-12-02 07:30"))
    assert r.exit_code == 0, r.stderr
