"""Long work on a terminal shows a progress bar on stderr and ends with its summary line; in
cron (no terminal) there is no bar: nothing on success, one line with --verbose."""
import os
import re
import subprocess
import sys

import pexpect
import pytest

from jobs_helpers import at, proc_env

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} escalate\[\d+\] INFO: (.*)$")


def _app(db_url, base_env, now=None):
    from escalate_cli.context import App
    env = dict(proc_env(base_env), ESCALATE_NOW=now) if now else proc_env(base_env)
    app = App(db_url=db_url, env=env)
    app.db
    return app


def queue_emails(db_url, base_env, n):
    from escalate_cli import domain
    app = _app(db_url, base_env)
    try:
        with domain.atomic():
            for i in range(n):
                domain.enqueue(app, "email", [f"person{i}@intime.com"], subject=f"Note {i}",
                               text=f"Message {i}\n")
    finally:
        app.close()


def raise_escalations(db_url, base_env, n, when):
    from escalate_cli import domain
    from escalate_cli.models import User
    app = _app(db_url, base_env, now=when)
    try:
        app._actor = User.get(User.login == "john.smith")
        for i in range(n):
            domain.create_escalation(app, title=f"Client issue {i}", category="Client Complaint",
                                     priority="critical", description="details")
    finally:
        app.close()


@pytest.fixture
def store(run):
    assert run("init").exit_code == 0


def on_terminal(env, *args, columns=100):
    child = pexpect.spawn(sys.executable, ["-m", "escalate_cli", *args], env=env,
                          dimensions=(40, columns), encoding="utf-8", timeout=120)
    child.expect(pexpect.EOF)
    child.close()
    return child.before, child.exitstatus


def test_delivery_on_a_terminal_draws_a_bar_then_one_line(store, db_url, base_env, smtp):
    queue_emails(db_url, base_env, 30)
    out, status = on_terminal(proc_env(base_env), "jobs", "deliver")
    assert status == 0, out
    assert "Delivering" in out and "30/30" in out
    assert "\r" in out                                   # redrawn in place
    assert out.rstrip().splitlines()[-1].endswith("deliver: sent 30, failed 0, dead 0")
    assert len(smtp.messages) == 30


def test_delivery_in_cron_is_quiet_or_one_line(store, db_url, base_env, smtp):
    queue_emails(db_url, base_env, 25)
    quiet = subprocess.run([sys.executable, "-m", "escalate_cli", "jobs", "deliver"],
                           env=proc_env(base_env), capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0
    assert quiet.stdout == "" and quiet.stderr == ""
    queue_emails(db_url, base_env, 25)
    verbose = subprocess.run([sys.executable, "-m", "escalate_cli", "jobs", "deliver", "-v"],
                             env=proc_env(base_env), capture_output=True, text=True, timeout=120)
    assert verbose.returncode == 0 and verbose.stdout == ""
    lines = verbose.stderr.splitlines()
    assert len(lines) == 1 and "%" not in lines[0]
    assert LOG_LINE.match(lines[0]).group(1) == "deliver: sent 25, failed 0, dead 0"
    assert len(smtp.messages) == 50


def test_sweep_on_a_terminal(run, demo, db_url, base_env):
    raise_escalations(db_url, base_env, 24, at("2024-12-02 09:00"))
    env = proc_env(base_env, ESCALATE_NOW=at("2024-12-02 10:05"))
    out, status = on_terminal(env, "jobs", "sla-sweep")
    assert status == 0, out
    assert "SLA sweep" in out and "25/25" in out          # 24 new breaches, the demo's late one
    assert "sla-sweep: 0 warning(s), 25 breach(es)" in out
    # nothing due the second time: no bar, just the line
    out, status = on_terminal(env, "jobs", "sla-sweep")
    assert status == 0 and "SLA sweep" not in out and "sla-sweep: 0 warning(s), 0 breach(es)" in out


def test_few_rows_draw_no_bar(store, db_url, base_env, smtp):
    queue_emails(db_url, base_env, 3)
    out, status = on_terminal(proc_env(base_env), "jobs", "deliver")
    assert status == 0
    assert "Delivering" not in out and out.strip() == "deliver: sent 3, failed 0, dead 0"


def test_import_on_a_terminal(run, demo, base_env, tmp_path):
    rows = "\n".join(f"Account {i},false,{1000 * i}" for i in range(40))
    path = tmp_path / "accounts.csv"
    path.write_text("name,strategic,annual_revenue\n" + rows + "\n")
    env = proc_env(base_env, ESCALATE_USER="admin")
    out, status = on_terminal(env, "import", "accounts", str(path))
    assert status == 0, out
    assert "Importing accounts" in out and "40/40" in out
    assert out.rstrip().endswith("accounts: 40 created, 0 updated")
    piped = subprocess.run([sys.executable, "-m", "escalate_cli", "import", "accounts", str(path)],
                           env=env, capture_output=True, text=True, timeout=120)
    assert piped.returncode == 0 and piped.stderr == "accounts: 0 created, 40 updated\n"
    assert os.path.exists(path)
