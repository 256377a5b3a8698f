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
