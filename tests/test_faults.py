"""Faults: a mail server that refuses, hangs, defers (4xx) or rejects (5xx); a PostgreSQL
connection killed in the middle of a command and of a sweep; processes SIGKILLed in the
middle of an import and of a sweep. Each leaves the data consistent, which the tests check
row by row, and the next run completes the work. (A deliverer SIGKILLed mid-batch:
tests/test_delivery_concurrency.py; the server refusing connections: tests/test_comms.py.)"""
import collections
import json
import os
import re
import signal
import socket
import threading
import time
import uuid

import pytest

from conftest import Runner, snapshot
from jobs_helpers import at, query, settle_demo
from rel_helpers import (Domain, is_postgres, pg_backends, pg_session, proc_env, spawn,
                         sqlite_path, sqlite_write_locked, wait_until, with_app_name)
from smtp_server import Handler, SmtpServer

CODE = "ESC-2024-11-28-001"
LOST = re.compile(r"(Error: )?lost the connection to the database \((terminating connection due "
                  r"to administrator command|server closed the connection unexpectedly)\); "
                  r"try again\n")
SARAH = "sarah.martinez"
NOW = "2024-11-29T08:00:00-05:00"


def outbox(db_url):
    return query(db_url, 'SELECT "id", "status", "attempts", "next_attempt_at", "last_error", '
                         '"template", "channel" FROM "outbox" WHERE "channel" = ? ORDER BY "id"',
                 "email")


# -- SMTP -----------------------------------------------------------------------------------

class FaultyHandler(Handler):
    """Answers DATA with ``data_reply`` while it is set (e.g. '451 ...' or '554 ...')."""

    def __init__(self):
        super().__init__()
        self.data_reply = None
        self.data_calls = 0

    async def handle_DATA(self, server, session, envelope):
        self.data_calls += 1
        if self.data_reply:
            return self.data_reply
        return await super().handle_DATA(server, session, envelope)


@pytest.fixture
def faulty_smtp(base_env):
    server = SmtpServer()
    server.handler = FaultyHandler()
    server.start()
    base_env["ESCALATE_SMTP_HOST"] = "127.0.0.1"
    base_env["ESCALATE_SMTP_PORT"] = str(server.port)
    yield server
    server.stop()


class SilentServer:
    """Accepts connections and never says a word (a hung mail server)."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(conn)

    def close(self):
        self.sock.close()
        for c in self.conns:
            c.close()


def test_smtp_that_never_answers_times_out_and_the_mail_waits(run, demo, db_url, base_env,
                                                             config_file, smtp):
    """[smtp] timeout bounds each attempt; the command says "Failed to send email" and the
    job one line; the message waits (backoff) and goes once the server answers."""
    silent = SilentServer()
    real_port = base_env["ESCALATE_SMTP_PORT"]
    base_env["ESCALATE_SMTP_PORT"] = str(silent.port)
    config_file.write_text(config_file.read_text() + "[smtp]\ntimeout = 0.5\n")
    try:
        assert run("claim", CODE, user=SARAH, now=NOW).exit_code == 0
        started = time.monotonic()
        r = run("email", CODE, "-t", "client-followup", user=SARAH, now=NOW)
        assert (r.exit_code, r.stderr) == (1, "Error: Failed to send email. Please try again.\n")
        r = run("jobs", "deliver", now=NOW)
        elapsed = time.monotonic() - started
        assert r.exit_code == 1 and r.stderr.count("\n") == 1, r.stderr
        assert f"SMTP server 127.0.0.1:{silent.port} unavailable: " in r.stderr
        assert "timed out" in r.stderr
        assert elapsed < 6, elapsed           # two attempts of 0.5 s, not the 10 s default
    finally:
        silent.close()
    rows = outbox(db_url)
    assert {r["status"] for r in rows} == {"failed"}
    assert all("timed out" in r["last_error"] for r in rows)
    base_env["ESCALATE_SMTP_PORT"] = real_port
    r = run("jobs", "deliver", now="2024-11-29T08:30:00-05:00")
    assert r.exit_code == 0, r.stderr
    assert {(r["status"], r["attempts"]) for r in outbox(db_url)} <= {("sent", 2), ("sent", 3)}
    subjects = collections.Counter(m.subject for m in smtp.messages)
    assert len(smtp.messages) == len(outbox(db_url)) and set(subjects.values()) == {1}


def test_smtp_4xx_is_retried_with_backoff_then_sent_once(run, demo, db_url, faulty_smtp):
    faulty_smtp.handler.data_reply = "451 4.3.0 Mailbox busy, try again later"
    r = run("jobs", "deliver", now=NOW)
    assert r.exit_code == 1 and "SMTP error 451 4.3.0 Mailbox busy" in r.stderr
    [row] = outbox(db_url)
    assert (row["status"], row["attempts"]) == ("failed", 1)
    # not due before its backoff: nothing tried
    assert run("jobs", "deliver", now="2024-11-29T08:00:30-05:00").exit_code == 0
    assert faulty_smtp.handler.data_calls == 1
    r = run("jobs", "deliver", now="2024-11-29T08:01:00-05:00")
    assert r.exit_code == 1
    [row] = outbox(db_url)
    assert (row["status"], row["attempts"]) == ("failed", 2)
    assert str(row["next_attempt_at"]).startswith("2024-11-29 13:03:00")   # +120 s, in UTC
    faulty_smtp.handler.data_reply = None
    assert run("jobs", "deliver", now="2024-11-29T08:03:00-05:00").exit_code == 0
    assert run("jobs", "deliver", now="2024-11-29T09:00:00-05:00").exit_code == 0
    [row] = outbox(db_url)
    assert (row["status"], row["attempts"]) == ("sent", 3)
    assert len(faulty_smtp.messages) == 1


def test_smtp_4xx_forever_gives_up_after_max_attempts(run, demo, db_url, faulty_smtp,
                                                      config_file):
    config_file.write_text(config_file.read_text() + "[outbox]\nmax_attempts = 3\n"
                                                      "backoff_seconds = 1\n")
    faulty_smtp.handler.data_reply = "421 4.7.0 Try again later"
    for minute in range(6):
        run("jobs", "deliver", now=f"2024-11-29T08:0{minute}:00-05:00")
    [row] = outbox(db_url)
    assert (row["status"], row["attempts"]) == ("dead", 3)
    assert "gave up after 3 attempts" in row["last_error"]
    assert faulty_smtp.handler.data_calls == 3
    assert run("jobs", "deliver", now="2024-11-30T08:00:00-05:00").exit_code == 0
    assert faulty_smtp.handler.data_calls == 3


def test_smtp_5xx_is_dead_at_once_recorded_and_not_retried(run, demo, db_url, faulty_smtp):
    faulty_smtp.handler.data_reply = "554 5.7.1 Message rejected as spam"
    r = run("jobs", "deliver", now=NOW)
    assert r.exit_code == 1 and "SMTP error 554 5.7.1 Message rejected as spam" in r.stderr
    [row] = outbox(db_url)
    assert (row["status"], row["attempts"]) == ("dead", 1)
    for later in ("2024-11-29T09:00:00-05:00", "2024-12-05T09:00:00-05:00"):
        assert run("jobs", "deliver", now=later).exit_code == 0
    assert faulty_smtp.handler.data_calls == 1
    timeline = json.loads(run("timeline", CODE, "--format", "json", user=SARAH).stdout)
    [failed] = [a for a in timeline if a["type"] == "delivery_failed"]
    assert "554 5.7.1 Message rejected as spam" in failed["body"]
    dead = [json.loads(e["payload"]) for e in query(
        db_url, 'SELECT "payload" FROM "event" WHERE "name" = ?', "outbox.dead")]
    assert [d["outbox_id"] for d in dead] == [row["id"]]
    r = run("outbox", "--failed", "--format", "json", user="admin")
    assert [x["status"] for x in json.loads(r.stdout) if x["channel"] == "email"] == ["dead"]


# -- the sweep's records, row by row --------------------------------------------------------

def assert_sweep_consistent(db_url, recipients):
    """Row by row: every clock whose breach was claimed has exactly one breach event, one
    timeline entry, and one notice and one email per recipient; a clock not claimed has
    none of them. No half-written sweep. Returns the number of breaches recorded."""
    clocks = {(c["escalation_id"], c["kind"]): c["breached_at"] is not None for c in query(
        db_url, 'SELECT "escalation_id", "kind", "breached_at" FROM "sla_clock"')}
    events = collections.Counter(
        (e["escalation_id"], json.loads(e["payload"])["clock"]) for e in query(
            db_url, 'SELECT "escalation_id", "payload" FROM "event" WHERE "name" = ?',
            "escalation.sla_breached"))
    notices = collections.Counter()
    for n in query(db_url, 'SELECT "dedupe_key" FROM "notification" WHERE "kind" = ?',
                   "sla.breached"):
        kind, esc, _ = n["dedupe_key"].split(":")           # sla-breach-CLOCK:ESC:USER
        notices[(int(esc), kind.removeprefix("sla-breach-"))] += 1
    mails = collections.Counter()
    for o in query(db_url, 'SELECT "key" FROM "outbox" WHERE "key" LIKE ?', "email:sla-breach-%"):
        _, kind, esc, _ = o["key"].split(":")
        mails[(int(esc), kind.removeprefix("sla-breach-"))] += 1
    acts = collections.Counter(a["escalation_id"] for a in query(
        db_url, 'SELECT "escalation_id" FROM "activity" WHERE "type" = ?', "sla_breach"))
    expected_acts = collections.Counter()
    for key, breached in clocks.items():
        want = 1 if breached else 0
        assert events[key] == want, (key, breached, events[key])
        assert notices[key] == want * recipients and mails[key] == want * recipients, key
        expected_acts[key[0]] += want
    assert +acts == +expected_acts
    return sum(clocks.values())


def _due_escalations(dom, count):
    """``count`` high escalations raised Monday 08:00: response breached at 12:00, and the
    warnings recorded (backfilled) beforehand, so a later sweep only breaches."""
    from escalate_cli import domain
    for i in range(count):
        dom("john.smith", domain.create_escalation, title=f"Due {i}",
            category="Client Complaint", priority="high", description=f"Due {i}: details",
            now=at("2024-12-02 08:00"))


# -- PostgreSQL: the connection killed mid-command and mid-sweep -----------------------------

@pytest.fixture
def pg(tmp_path):
    """A PostgreSQL schema of its own (these faults exist only there), with the CLI runner."""
    from conftest import PG_URL, _pg_connect
    schema = "t_" + uuid.uuid4().hex[:12]
    admin = _pg_connect()
    admin.autocommit = True
    admin.cursor().execute(f'CREATE SCHEMA "{schema}"')
    config = tmp_path / "config.toml"
    config.write_text('company = "InTime"\ntimezone = "America/New_York"\n')
    url = f"{PG_URL}?options=-csearch_path%3D{schema}"
    env = {"ESCALATE_DB": url, "ESCALATE_CONFIG": str(config), "NO_COLOR": "1",
           "ESCALATE_USER": "", "ESCALATE_NOW": "", "EDITOR": "false", "HOME": str(tmp_path),
           "ESCALATE_SMTP_PORT": "9"}
    run = Runner(env)
    assert run("init", "--demo").exit_code == 0
    try:
        yield run, url, env, admin, config
    finally:
        admin.cursor().execute(f'DROP SCHEMA "{schema}" CASCADE')
        admin.close()


def _block_on_key(url, table, columns, values):
    """Insert a row in a transaction left open: whoever inserts the same unique key waits
    for this transaction, in the middle of its own."""
    conn = pg_session(url, autocommit=False)
    cols = ", ".join(f'"{c}"' for c in columns)
    marks = ", ".join(["%s"] * len(values))
    conn.cursor().execute(f'INSERT INTO "{table}" ({cols}) VALUES ({marks})', values)
    return conn


def _kill_when_waiting(admin, app_name):
    [(pid, *_)] = wait_until(lambda: pg_backends(admin, app_name, "wait_event_type = 'Lock'"),
                             what="the command to wait on the lock")
    with admin.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(%s)", (pid,))
    wait_until(lambda: not pg_backends(admin, app_name), what="the backend to go")


def test_postgres_connection_killed_mid_command(pg):
    """The claim has updated the escalation, stopped its clock, written its timeline entry and
    event, and waits to insert the reporter's notice when its connection is killed: it fails
    with one line, nothing of it remains, and running it again does it all once."""
    run, url, env, admin, _ = pg
    ids = {r["login"]: r["id"] for r in query(url, 'SELECT "id", "login" FROM "user"')}
    before = snapshot(url)
    blocker = _block_on_key(url, "notification",
                            ("user_id", "escalation_id", "kind", "message", "created_at",
                             "dedupe_key"),
                            (ids["john.smith"], 1, "blocker", "blocker", "2024-11-29 13:00:00",
                             f"claimed-{ids[SARAH]}:1:{ids['john.smith']}"))
    name = "esc-" + uuid.uuid4().hex[:8]
    penv = proc_env(env, user=SARAH, now=NOW, ESCALATE_DB=with_app_name(url, name),
                    ESCALATE_BUSY_TIMEOUT_MS=60_000)
    proc = spawn(penv, "claim", CODE)
    _kill_when_waiting(admin, name)
    out, err = proc.communicate(timeout=60)
    blocker.rollback()
    blocker.close()
    assert (proc.returncode, out) == (1, "")
    assert LOST.fullmatch(err), err
    assert snapshot(url) == before
    r = run("claim", CODE, user=SARAH, now=NOW)
    assert r.exit_code == 0, r.stderr
    rows = snapshot(url)
    assert len(rows["activity"]) == len(before["activity"]) + 1
    assert len(rows["event"]) == len(before["event"]) + 1
    assert len(rows["notification"]) == len(before["notification"]) + 1
    assert len(rows["outbox"]) == len(before["outbox"]) + 1
    shown = json.loads(run("show", CODE, "--format", "json", user=SARAH).stdout)
    assert (shown["status"], shown["owner"]) == ("in_progress", SARAH)


def test_postgres_connection_killed_mid_sweep(pg):
    """The sweep has claimed a batch of breaches and is writing their events when its
    connection is killed: one log line, exit 1, the batch rolled back whole (no clock
    claimed without its notices); the next run records and tells each breach once."""
    run, url, env, admin, config = pg
    config.write_text(config.read_text() + "[jobs]\nbatch = 4\n")
    settle_demo(run)
    _due_escalations(Domain(url, config), 10)
    assert run("jobs", "sla-sweep", "--backfill", now=at("2024-12-02 11:30")).exit_code == 0
    esc = query(url, 'SELECT "id" FROM "escalation" WHERE "title" = ?', "Due 9")[0]["id"]
    blocker = _block_on_key(url, "event", ("name", "escalation_id", "payload", "created_at",
                                           "dedupe_key"),
                            ("blocker", esc, "{}", "2024-12-02 17:00:00",
                             f"sla_breached:{esc}:response"))
    name = "esc-" + uuid.uuid4().hex[:8]
    penv = proc_env(env, ESCALATE_DB=with_app_name(url, name), ESCALATE_BUSY_TIMEOUT_MS=60_000)
    proc = spawn(penv, "jobs", "sla-sweep", "--now", at("2024-12-02 12:05"))
    _kill_when_waiting(admin, name)
    out, err = proc.communicate(timeout=60)
    blocker.rollback()
    blocker.close()
    assert proc.returncode == 1 and out == "" and err.count("\n") == 1, err
    assert LOST.fullmatch(err.split("ERROR: sla-sweep failed: ")[1]), err
    done_before = assert_sweep_consistent(url, recipients=2)
    assert done_before < 10                        # the killed batch left nothing behind
    r = run("jobs", "sla-sweep", now=at("2024-12-02 12:06"))
    assert r.exit_code == 0, r.stderr
    assert assert_sweep_consistent(url, recipients=2) == 10
    assert run("jobs", "sla-sweep", now=at("2024-12-02 12:10")).exit_code == 0
    assert assert_sweep_consistent(url, recipients=2) == 10


# -- SIGKILL mid-import and mid-sweep, both stores --------------------------------------------

def _in_write_transaction(db_url, admin, app_name):
    if is_postgres(db_url):
        return bool(pg_backends(admin, app_name, "backend_xid IS NOT NULL"))
    return sqlite_write_locked(sqlite_path(db_url))


def _kill_in_transaction(proc, db_url, app_name, ready=lambda: True):
    admin = pg_session(db_url) if is_postgres(db_url) else None
    try:
        wait_until(lambda: proc.poll() is None and ready()
                   and _in_write_transaction(db_url, admin, app_name),
                   every=0.002, what="the process to be inside its transaction")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        if admin is not None:       # the server rolls back when it notices the client gone
            wait_until(lambda: not pg_backends(admin, app_name), what="the backend to go")
    finally:
        if admin is not None:
            admin.close()


def test_sigkill_mid_import_leaves_nothing_and_the_next_run_imports_all(
        run, demo, db_url, base_env, tmp_path, snap):
    rows = [(f"Contact {i}", f"contact{i}@google.com", f"+1650555{i:04d}", f"Buyer {i}")
            for i in range(3000)]
    f = tmp_path / "contacts.csv"
    f.write_text("account,name,email,phone,title\n"
                 + "".join(f"Google Inc.,{n},{e},{p},{t}\n" for n, e, p, t in rows))
    before = snap()
    name = "esc-" + uuid.uuid4().hex[:8]
    url = with_app_name(db_url, name) if is_postgres(db_url) else db_url
    proc = spawn(proc_env(base_env, user="admin", ESCALATE_DB=url), "import", "contacts", f)
    _kill_in_transaction(proc, db_url, name)
    assert proc.returncode == -signal.SIGKILL
    assert snap() == before                  # all or nothing: nothing
    r = run("import", "contacts", str(f), user="admin")
    assert r.exit_code == 0, r.stderr
    assert "contacts: 3000 created, 0 updated" in r.stderr
    got = {(c["name"], c["email"], c["phone"], c["title"]) for c in query(
        db_url, 'SELECT "name", "email", "phone", "title" FROM "contact" WHERE "email" LIKE ?',
        "contact%")}
    assert got == set(rows)


def _kill_sqlite_sweep_mid_batch(proc, path):
    """SIGKILL the sweep while it holds the write lock after its heartbeat and some batches
    (a tight loop on one connection: a batch lasts milliseconds)."""
    import sqlite3
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                conn.execute("BEGIN IMMEDIATE")
                conn.execute("ROLLBACK")
                continue
            except sqlite3.OperationalError:
                pass                            # someone writes: is it a batch?
            running = conn.execute('SELECT 1 FROM "job_run" WHERE "name" = \'sla-sweep\' AND '
                                   '"last_started_at" > \'2024-12-02 16:40:00\'').fetchone()
            done = conn.execute('SELECT COUNT(*) FROM "sla_clock" WHERE "breached_at" IS NOT '
                                'NULL').fetchone()[0]
            if running and 0 < done < 30:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
                return
        raise AssertionError("the sweep was not caught between its first and last batch")
    finally:
        conn.close()


def test_sigkill_mid_sweep_leaves_whole_batches_and_the_next_run_finishes(
        run, demo, db_url, base_env, config_file):
    """Killed in the middle of a batch (PostgreSQL: while its batch waits on a row another
    session holds; SQLite: while it holds the write lock), the sweep leaves the batches it
    committed whole and the one in flight absent; the next run, at once, does the rest."""
    config_file.write_text(config_file.read_text() + "[jobs]\nbatch = 3\n")
    settle_demo(run)
    _due_escalations(Domain(db_url, config_file), 30)
    assert run("jobs", "sla-sweep", "--backfill", now=at("2024-12-02 11:30")).exit_code == 0
    name = "esc-" + uuid.uuid4().hex[:8]
    url = with_app_name(db_url, name) if is_postgres(db_url) else db_url
    env = proc_env(base_env, ESCALATE_DB=url, ESCALATE_BUSY_TIMEOUT_MS=60_000)
    if is_postgres(db_url):
        esc = query(db_url, 'SELECT "id" FROM "escalation" WHERE "title" = ?', "Due 20")[0]["id"]
        blocker = _block_on_key(db_url, "event", ("name", "escalation_id", "payload",
                                                  "created_at", "dedupe_key"),
                                ("blocker", esc, "{}", "2024-12-02 17:00:00",
                                 f"sla_breached:{esc}:response"))
        proc = spawn(env, "jobs", "sla-sweep", "--now", at("2024-12-02 12:05"))
        admin = pg_session(db_url)
        try:
            wait_until(lambda: pg_backends(admin, name, "wait_event_type = 'Lock'"),
                       what="the sweep to wait in its batch")
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
            blocker.rollback()        # the batch's statement ends; its client is gone: rollback
            blocker.close()
            wait_until(lambda: not pg_backends(admin, name), what="the backend to go")
        finally:
            admin.close()
    else:
        proc = spawn(env, "jobs", "sla-sweep", "--now", at("2024-12-02 12:05"))
        _kill_sqlite_sweep_mid_batch(proc, sqlite_path(db_url))
    assert proc.returncode == -signal.SIGKILL
    assert 0 < assert_sweep_consistent(db_url, recipients=2) < 30
    # the next run, at once: the dead sweep's lock does not hold it back
    r = run("jobs", "sla-sweep", "-v", now=at("2024-12-02 12:06"))
    assert r.exit_code == 0, r.stderr
    assert "skipped" not in r.stderr
    assert assert_sweep_consistent(db_url, recipients=2) == 30
