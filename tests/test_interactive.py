"""`escalate show CODE -i` driven key by key through a pseudo-terminal, on both stores."""
import json
import sys

import pexpect
import pytest

from conftest import USE_CASE_NOW

CODE = "ESC-2024-11-28-001"
NOTES = ("Corrected invoice issued at $110/hr, client accepted the apology and the $500 "
         "goodwill credit.")


def spawn(base_env, user, now=USE_CASE_NOW, code=CODE):
    env = {k: v for k, v in base_env.items() if v != ""}
    env.update(ESCALATE_USER=user, ESCALATE_NOW=now, TERM="xterm", PATH="/usr/bin:/bin")
    child = pexpect.spawn(sys.executable, ["-m", "escalate_cli", "show", code, "-i"], env=env,
                          encoding="utf-8", timeout=20, dimensions=(200, 120))
    child.expect_exact("Keys: t take ownership")
    return child


def quit_(child):
    child.send("q")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0


def show(run, user="sarah.martinez"):
    return json.loads(run("show", CODE, "--format", "json", user=user).stdout)


def test_take_ownership_then_resolve_key_by_key(run, demo, base_env):
    child = spawn(base_env, "sarah.martinez")
    assert "Status: PENDING" in child.before
    assert "[t Take Ownership]" in child.before
    child.send("t")
    child.expect_exact("Owner: You ✓ (ESC-2024-11-28-001 is IN PROGRESS)")
    assert "Owner: Sarah Martinez (You)" in child.before          # the screen was redrawn
    assert "Status: IN PROGRESS" in child.before
    assert show(run)["owner"] == "sarah.martinez"

    child.send("r")
    child.expect_exact("Resolution notes")
    child.send("\x1b")                                              # Esc closes the prompt
    child.expect_exact("Cancelled.")
    assert show(run)["status"] == "in_progress"

    child.send("r")
    child.expect_exact("Resolution notes")
    child.send("too short\r")
    child.expect_exact("Error: Resolution notes too brief (min 50 chars)")

    child.send("r")
    child.expect_exact("Resolution notes")
    child.send(NOTES + "\r")
    child.expect_exact("Notify (ic, coo, ceo, comma-separated, or none) [ic]:")
    child.send("\x1b")                                              # Esc on the second prompt
    child.expect_exact("Cancelled.")
    assert show(run)["status"] == "in_progress"

    child.send("r")
    child.expect_exact("Resolution notes")
    child.send("Corrected invoice issued at $110/hr, client acceptX\x7fed the apology and "
               "the $500 goodwill credit.\r")                       # backspace edits the line
    child.expect_exact("[ic]:")
    child.send("ic,coo\r")
    child.expect_exact("Escalation marked as resolved ✓ (resolution time 8h 13m)")
    assert "Status: RESOLVED" in child.before
    quit_(child)

    d = show(run)
    assert d["status"] == "resolved" and d["resolution_notes"] == NOTES
    # the same service as `escalate resolve`: its event and its notifications
    events = [json.loads(line) for line in run("events", user="sarah.martinez").stdout.splitlines()]
    assert [e["payload"]["resolved_by"] for e in events if e["name"] == "escalation.resolved"] == [
        "sarah.martinez"]
    inbox = json.loads(run("inbox", "--format", "json", user="olivia.park").stdout)
    assert "Escalation resolved: Unauthorized Rate Increase - Google Inc. (strategic account)" in [
        n["message"] for n in inbox]


def test_errors_stay_on_the_screen(run, demo, base_env):
    child = spawn(base_env, "john.smith")
    child.send("t")
    child.expect_exact("Error: Only a manager of this pod or a leader can take ownership")
    child.send("x")
    child.expect_exact("Unknown key 'x'.")
    child.send("\x1b[A")                                            # an arrow key: ignored
    child.send("q")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert show(run)["status"] == "pending"


def test_resolve_before_owning_is_refused(run, demo, base_env, snap):
    before = snap()
    child = spawn(base_env, "sarah.martinez")
    child.send("r")
    child.expect_exact("Error: You must take ownership first")
    quit_(child)
    assert snap() == before


@pytest.mark.parametrize("key, name, first_prompt", [
    ("e", "compose_email", "Template [client-apology]:"),
    ("c", "schedule_call", "When (e.g. 'tomorrow 9am', '2024-11-29 09:00'):"),
    ("m", "send_message", "Message to John Smith:"),
])
def test_email_call_and_message_keys(run, demo, base_env, key, name, first_prompt):
    from escalate_cli import interactive
    assert run("claim", CODE, user="sarah.martinez").exit_code == 0
    child = spawn(base_env, "sarah.martinez")
    child.send(key)
    if interactive.comms_function(name) is None:
        child.expect_exact(f"is not available in this build (escalate_cli.comms.{name} is "
                           f"missing); use: escalate ")
    else:
        child.expect_exact(first_prompt)
        child.send("\x1b")
        child.expect_exact("Cancelled.")
    quit_(child)


def test_interactive_needs_a_terminal(run, demo):
    r = run("show", CODE, "-i", user="sarah.martinez")
    assert r.exit_code == 2
    assert r.stderr.startswith("Error: Interactive mode needs a terminal")
