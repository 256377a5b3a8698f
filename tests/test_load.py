"""Load, with real processes, on both stores: hundreds of escalations created at once by
several processes, sweeps and deliverers racing, and readers next to a writer that holds
its transaction open. (Twenty claims racing: tests/test_concurrency.py.)"""
import collections
import json
import os
import sqlite3
import subprocess
import sys
import time

import pytest

from jobs_helpers import at, query, settle_demo
from rel_helpers import (Domain, finish, is_postgres, pg_session, proc_env, spawn, sqlite_path)

pytestmark = pytest.mark.slow
WORKER = os.path.join(os.path.dirname(__file__), "workers.py")
PROCESSES, PER_PROCESS = 8, 25                 # 200 escalations
DAYS = ("2024-12-02T10:00:00-05:00", "2024-12-03T10:00:00-05:00")


def test_eight_processes_create_two_hundred_escalations(run, demo, db_url, base_env):
    """Every code unique, sequential per day with no gap, none lost; each escalation whole
    (its clocks, timeline entry, event and the pod manager's notice) and nothing more."""
    procs = []
    for p in range(PROCESSES):
        env = proc_env(base_env, user="john.smith", now=DAYS[p % 2])
        procs.append(subprocess.Popen([sys.executable, WORKER, "create", str(PER_PROCESS),
                                       f"P{p}"], env=env, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True))
    results = finish(procs)
    assert all(code == 0 for code, _, _ in results), [err for _, _, err in results]
    printed = [line for _, out, _ in results for line in out.split()]
    assert len(printed) == len(set(printed)) == PROCESSES * PER_PROCESS
    rows = query(db_url, 'SELECT "id", "code", "day", "seq", "title" FROM "escalation" '
                         'WHERE "title" LIKE ? ORDER BY "id"', "P%")
    assert sorted(r["code"] for r in rows) == sorted(printed)
    assert sorted(r["title"] for r in rows) == sorted(f"P{p}-{i}" for p in range(PROCESSES)
                                                      for i in range(PER_PROCESS))
    per_day = collections.defaultdict(list)
    for r in rows:
        day = str(r["day"])
        assert r["code"] == f"ESC-{day}-{r['seq']:03d}"
        per_day[day].append(r["seq"])
    half = PROCESSES * PER_PROCESS // 2
    assert {d: sorted(s) for d, s in per_day.items()} == {
        "2024-12-02": list(range(1, half + 1)), "2024-12-03": list(range(1, half + 1))}
    counters = {str(r["day"]): r["last"] for r in query(db_url, 'SELECT * FROM "code_counter"')}
    assert counters["2024-12-02"] == counters["2024-12-03"] == half
    # each one whole, once
    ids = {r["id"] for r in rows}

    def per_escalation(sql, *params):
        found = collections.Counter(r["escalation_id"] for r in query(db_url, sql, *params))
        return {i: found.get(i, 0) for i in ids}
    assert set(per_escalation('SELECT "escalation_id" FROM "sla_clock"').values()) == {2}
    assert set(per_escalation('SELECT "escalation_id" FROM "activity" WHERE "type" = ?',
                              "created").values()) == {1}
    assert set(per_escalation('SELECT "escalation_id" FROM "event" WHERE "name" = ?',
                              "escalation.created").values()) == {1}
    assert set(per_escalation('SELECT "escalation_id" FROM "notification" WHERE "kind" = ?',
                              "escalation.new").values()) == {1}
    assert set(per_escalation('SELECT "escalation_id" FROM "outbox" WHERE "template" = ?',
                              "new-escalation").values()) == {1}


def _make_due(dom, count):
    """``count`` critical and ``count`` high escalations raised Monday 09:00 (domain calls:
    set-up at the speed of the store, not of process starts)."""
    from escalate_cli import domain
    for i in range(count):
        for priority in ("critical", "high"):
            dom("john.smith", domain.create_escalation, title=f"{priority} {i}",
                category="Client Complaint", priority=priority,
                description=f"{priority} {i}: details", now=at("2024-12-02 09:00"))


def test_four_sweeps_and_two_deliverers_tell_everyone_exactly_once(
        run, demo, db_url, base_env, config_file, smtp, sms_gateway):
    """At each moment of the day four sweeps and two deliverers start together: every warning
    and breach is recorded once, every person told once in-app, and every email and SMS
    reaches the server once."""
    config_file.write_text(config_file.read_text() + "[jobs]\nbatch = 4\n")
    settle_demo(run)
    assert run("jobs", "deliver", now=at("2024-12-02 07:45")).exit_code == 0
    smtp.handler.messages.clear()
    sms_gateway.received.clear()
    first = query(db_url, 'SELECT MAX("id") AS "n" FROM "outbox"')[0]["n"]
    _make_due(Domain(db_url, config_file), 6)
    smtp.handler.delay = 0.01
    for moment in ("2024-12-02 09:50", "2024-12-02 10:05", "2024-12-02 12:05",
                   "2024-12-02 13:05"):
        env = proc_env(base_env, now=at(moment))
        procs = [spawn(env, "jobs", "sla-sweep", "--no-lock") for _ in range(2)]
        procs += [spawn(env, "jobs", "sla-sweep") for _ in range(2)]
        procs += [spawn(env, "jobs", "deliver", "--batch", "3") for _ in range(2)]
        results = finish(procs)
        assert all(code == 0 for code, _, _ in results), [e for _, _, e in results]
    r = run("jobs", "deliver", now=at("2024-12-02 13:10"))
    assert r.exit_code == 0, r.stderr
    # the records: one per clock and kind
    acts = query(db_url, 'SELECT "escalation_id", "type" FROM "activity" WHERE "type" IN (?, ?)',
                 "sla_warning", "sla_breach")
    assert len(acts) == 24 and len(set(map(tuple, (a.values() for a in acts)))) == 24
    evs = collections.Counter(e["name"] for e in query(
        db_url, 'SELECT "name" FROM "event" WHERE "name" LIKE ?', "escalation.sla_%"))
    assert evs == {"escalation.sla_warning": 12, "escalation.sla_breached": 12}
    notes = collections.Counter(n["kind"] for n in query(
        db_url, 'SELECT "kind" FROM "notification" WHERE "kind" LIKE ?', "sla.%"))
    assert notes == {"sla.warning": 12, "sla.breached": 24}
    # the outbox: every row sent, once, and the server got each exactly once
    rows = query(db_url, 'SELECT "id", "channel", "status", "attempts", "message_id", "template" '
                         'FROM "outbox" ORDER BY "id"')
    assert rows and {(r["status"], r["attempts"]) for r in rows} == {("sent", 1)}, rows
    emails = [r for r in rows if r["channel"] == "email" and r["id"] > first]
    assert len([r for r in emails if (r["template"] or "").startswith("sla-")]) == 36
    received = collections.Counter(str(m.message["Message-ID"]) for m in smtp.messages)
    assert set(received.values()) == {1}
    assert set(received) == {r["message_id"] for r in emails}
    sms = [r for r in rows if r["channel"] == "sms" and r["id"] > first]
    assert len(sms_gateway.received) == len(sms) == 6 + 6 + 12     # new, warnings, breaches


def _hold_write_lock(db_url):
    """Another process's write transaction, open: SQLite's write lock with a change not yet
    committed, or a PostgreSQL row lock on the demo's escalation."""
    if is_postgres(db_url):
        conn = pg_session(db_url, autocommit=False)
        conn.cursor().execute('UPDATE "escalation" SET "title" = "title" || %s WHERE "id" = 1',
                              (" (being edited)",))
        return conn
    conn = sqlite3.connect(sqlite_path(db_url), isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute('UPDATE "escalation" SET "title" = "title" || \' (being edited)\' WHERE "id" = 1')
    return conn


def test_readers_are_not_blocked_by_a_writer(run, demo, db_url, base_env):
    """While a writer holds its transaction open, reads answer at once with the last
    committed state (SQLite WAL, PostgreSQL MVCC); a writer that needs the same lock waits
    the busy timeout, then gets one clear line and exit 4."""
    code = "ESC-2024-11-28-001"
    holder = _hold_write_lock(db_url)
    try:
        env = proc_env(base_env, user="sarah.martinez", ESCALATE_BUSY_TIMEOUT_MS=10_000)
        reads = [("show", code), ("list",), ("timeline", code), ("show", code, "--format", "json"),
                 ("events",), ("inbox",), ("jobs", "status", "--format", "json")]
        started = time.monotonic()
        results = finish([spawn(env, *args) for args in reads])
        elapsed = time.monotonic() - started
        assert [c for c, _, _ in results] == [0, 0, 0, 0, 0, 0, 1], results   # status: stale
        assert "(being edited)" not in results[0][1]
        assert json.loads(results[3][1])["title"] == "Unauthorized Rate Increase"
        assert elapsed < 8, elapsed          # far below the 10 s a blocked reader would wait
        env["ESCALATE_BUSY_TIMEOUT_MS"] = "300"
        started = time.monotonic()
        [(code_, out, err)] = finish([spawn(env, "claim", code)])
        assert (code_, out, err) == (4, "", "Error: the database is busy; try again\n")
        assert time.monotonic() - started < 8
    finally:
        holder.rollback() if is_postgres(db_url) else holder.execute("ROLLBACK")
        holder.close()
    r = run("claim", code, user="sarah.martinez")
    assert r.exit_code == 0, r.stderr
