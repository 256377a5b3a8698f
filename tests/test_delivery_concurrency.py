"""The outbox under real processes, on both stores: deliverers racing, and one killed."""
import datetime as dt
import os
import signal
import subprocess
import sys

import pytest

NOW = "2024-11-29T08:00:00-05:00"


def spawn(env, *args):
    return subprocess.Popen([sys.executable, "-m", "escalate_cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def proc_env(base_env, now=NOW):
    env = dict(os.environ)
    env.update({k: v for k, v in base_env.items() if v})
    env["ESCALATE_NOW"] = now
    env.pop("ESCALATE_USER", None)           # a job needs no acting user
    return env


def queue_emails(db_url, count):
    """Queue ``count`` emails through the domain's own enqueue, as a command would."""
    from escalate_cli import domain
    from escalate_cli.context import App
    app = App(db_url=db_url, now_override=dt.datetime.fromisoformat(NOW))
    app.db
    try:
        with domain.atomic():
            for i in range(count):
                domain.enqueue(app, "email", [f"person{i}@example.com"], key=f"test:{i}",
                               subject=f"Message {i}", text=f"Body {i}\n")
    finally:
        app.close()


def rows(db_url):
    from escalate_cli.db import make_database
    db = make_database(db_url)
    db.connect()
    try:
        return db.execute_sql('SELECT "subject", "status", "attempts" FROM "outbox" '
                              'ORDER BY "id"').fetchall()
    finally:
        db.close()


@pytest.mark.slow
def test_three_deliverers_at_once_send_each_message_once(run, base_env, smtp):
    assert run("init").exit_code == 0
    queue_emails(base_env["ESCALATE_DB"], 30)
    smtp.handler.delay = 0.05
    env = proc_env(base_env)
    procs = [spawn(env, "jobs", "deliver", "--batch", "3", "--verbose") for _ in range(3)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    assert all(code == 0 for code, _, _ in results), results
    sent = [int(err.split("deliver: sent ")[1].split(",")[0]) for _, _, err in results]  # the log line
    assert sum(sent) == 30, sent
    subjects = sorted(m.subject for m in smtp.messages)
    assert subjects == sorted(f"Message {i}" for i in range(30))       # each exactly once
    assert {(status, attempts) for _, status, attempts in rows(base_env["ESCALATE_DB"])} == {("sent", 1)}
    ids = [m.message["Message-ID"] for m in smtp.messages]
    assert len(set(ids)) == 30


@pytest.mark.slow
def test_deliverer_killed_mid_batch_loses_nothing(run, base_env, smtp):
    assert run("init").exit_code == 0
    queue_emails(base_env["ESCALATE_DB"], 6)
    smtp.handler.stall_after = 2             # the third message hangs at RCPT TO
    proc = spawn(proc_env(base_env), "jobs", "deliver", "--batch", "10")
    assert smtp.handler.stalled.wait(60), proc.communicate()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    smtp.handler.release.set()
    assert sorted(m.subject for m in smtp.messages) == ["Message 0", "Message 1"]
    state = rows(base_env["ESCALATE_DB"])
    assert [s for _, s, _ in state] == ["sent", "sent", "sending", "sending", "sending", "sending"]
    # another deliverer while the dead one's lease still runs: it leaves them alone
    r = run("jobs", "deliver", now="2024-11-29T08:04:00-05:00")
    assert (r.exit_code, r.stderr) == (0, "")
    assert len(smtp.messages) == 2
    # once the lease has expired, the rest goes, once
    r = run("jobs", "deliver", now="2024-11-29T08:05:01-05:00")
    assert (r.exit_code, r.stderr) == (0, "")
    assert sorted(m.subject for m in smtp.messages) == [f"Message {i}" for i in range(6)]
    assert [(s, a) for _, s, a in rows(base_env["ESCALATE_DB"])] == \
        [("sent", 1)] * 2 + [("sent", 2)] * 4
    r = run("jobs", "deliver", now="2024-11-29T09:00:00-05:00")
    assert r.exit_code == 0 and len(smtp.messages) == 6
