"""Colour and badges on a terminal; plain text when piped or with NO_COLOR."""
import os
import subprocess
import sys

import pexpect

from conftest import USE_CASE_NOW

CODE = "ESC-2024-11-28-001"


def _env(base_env, **extra):
    env = dict(os.environ)
    env.update({k: v for k, v in base_env.items() if v})
    env.update({"ESCALATE_USER": "sarah.martinez", "PAGER": "cat", "TERM": "xterm-256color"})
    env.pop("NO_COLOR", None)
    env.update(extra)
    return env


def _tty(env, *args):
    child = pexpect.spawn(sys.executable, ["-m", "escalate_cli", *args], env=env,
                          dimensions=(200, 250), encoding="utf-8", timeout=60)
    child.expect(pexpect.EOF)
    child.close()
    return child.before, child.exitstatus


def test_colour_on_a_terminal_plain_when_piped_or_no_color(run, demo, base_env):
    env = _env(base_env)           # the real clock: the 2024 escalation is long overdue
    out, status = _tty(env, "list")
    assert status == 0
    assert "\x1b[" in out and "SLA breach" in out and "critical" in out
    out, _ = _tty(env, "show", CODE)
    assert "\x1b[31m" in out and "⚠️ SLA breach: This escalation is overdue" in out
    env_nc = _env(base_env, NO_COLOR="1")
    out, _ = _tty(env_nc, "list")
    assert "\x1b[" not in out and "SLA breach" in out
    piped = subprocess.run([sys.executable, "-m", "escalate_cli", "show", CODE], env=env,
                           capture_output=True, text=True)
    assert piped.returncode == 0
    assert "\x1b[" not in piped.stdout
    assert "⚠️ SLA breach: This escalation is overdue" in piped.stdout


def test_not_overdue_has_no_badge(run, demo):
    out = run("show", CODE, user="sarah.martinez", now=USE_CASE_NOW).stdout
    assert "SLA breach" not in out


def _tty_sized(env, columns, *args):
    child = pexpect.spawn(sys.executable, ["-m", "escalate_cli", *args], env=env,
                          dimensions=(200, columns), encoding="utf-8", timeout=60)
    child.expect(pexpect.EOF)
    child.close()
    return child.before.replace("\r\n", "\n"), child.exitstatus


def test_tables_fit_the_terminal(run, demo, base_env):
    from escalate_cli.output import display_width, strip_ansi
    long_title = "Candidate accepted a counter-offer from the client's competitor after day one"
    run("create", "--title", long_title, "--category", "Candidate Issue", "--priority", "high",
        "--account", "Google Inc.", "--description", "d", user="john.smith", now=USE_CASE_NOW)
    run("claim", CODE, user="sarah.martinez", now=USE_CASE_NOW)
    run("note", CODE, "A long internal note. " * 20, user="sarah.martinez", now=USE_CASE_NOW)
    env = _env(base_env, ESCALATE_NOW=USE_CASE_NOW)
    for columns in (80, 100):
        for args in (["list"], ["timeline", CODE], ["inbox"], ["task", "list"]):
            out, status = _tty_sized(env, columns, *args)
            assert status == 0, out
            widths = [display_width(strip_ansi(line)) for line in out.splitlines()]
            assert max(widths) <= columns, (args, columns, out)
    out, _ = _tty_sized(env, 80, "list")
    assert "ESC-2024-11-28-001" in out and "ESC-2024-11-29-001" in out    # codes never cut
    assert "Candid" in out and "…" in out and long_title not in out       # titles are cut,
    assert "(due Nov 29" in out and "12:00 PM)" in out       # but a clock wraps, never cut
    wide, _ = _tty_sized(env, 250, "list")
    assert long_title in wide and "Sarah Martinez" in wide               # room for all
    piped = subprocess.run([sys.executable, "-m", "escalate_cli", "list"], env=env,
                           capture_output=True, text=True)
    assert long_title in piped.stdout and "…" not in piped.stdout        # a pipe gets it all
    # a narrow terminal leaves out the account and owner columns rather than breaking lines
    assert "owner" not in out.splitlines()[0] and "owner" in wide.splitlines()[0]


def test_long_output_goes_through_the_pager_on_a_terminal_only(run, demo, base_env):
    env = _env(base_env, ESCALATE_NOW=USE_CASE_NOW, PAGER="sed s/^/PAGED:/")
    child = pexpect.spawn(sys.executable, ["-m", "escalate_cli", "show", CODE], env=env,
                          dimensions=(20, 100), encoding="utf-8", timeout=60)  # 20 rows: too long
    child.expect(pexpect.EOF)
    child.close()
    lines = [line for line in child.before.replace("\r\n", "\n").splitlines() if line.strip()]
    assert len(lines) > 20 and all(line.startswith("PAGED:") for line in lines)
    short, _ = _tty_sized(env, 100, "claim", CODE)                     # one line: no pager
    assert short.strip() == f"{CODE}: Owner: Sarah Martinez (You). Status: IN PROGRESS"
    piped = subprocess.run([sys.executable, "-m", "escalate_cli", "show", CODE], env=env,
                           capture_output=True, text=True)
    assert "PAGED:" not in piped.stdout and "Escalation ID: " + CODE in piped.stdout
