"""Help, version, completion, the bare command, settings, backups and a busy store."""
import json
import sqlite3

import click
import pytest
from click.testing import CliRunner

from escalate_cli import __version__
from escalate_cli.cli import cli


def _walk(group, prefix=()):
    for name, cmd in sorted(group.commands.items()):
        yield prefix + (name,), cmd
        if isinstance(cmd, click.Group):
            yield from _walk(cmd, prefix + (name,))


def test_every_command_has_help_with_an_example():
    missing = []
    for path, cmd in _walk(cli):
        result = CliRunner().invoke(cli, [*path, "--help"])
        assert result.exit_code == 0, (path, result.output)
        if "Example" not in result.output:                 # groups too
            missing.append(" ".join(path))
    assert not missing, f"commands without an example in --help: {missing}"
    top = CliRunner().invoke(cli, ["--help"])
    assert "Examples:" in top.output


def test_version():
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_help_never_touches_the_database(tmp_path):
    db = tmp_path / "never.db"
    result = CliRunner().invoke(cli, ["--db", f"sqlite:///{db}", "list", "--help"])
    assert result.exit_code == 0
    assert not db.exists()


def test_bare_command_shows_queue_or_getting_started(run, demo):
    assert "ESC-2024-11-28-001" in run(user="sarah.martinez").stdout
    r = run(env={"USER": "nobody.here", "LOGNAME": "nobody.here"})   # an OS login not on file
    assert r.exit_code == 0 and "escalate init --demo" in r.stdout


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_script(run, shell):
    r = run("completion", shell)
    assert r.exit_code == 0
    assert "_ESCALATE_COMPLETE" in r.stdout


def test_completion_of_codes_and_logins(run, demo):
    env = {"_ESCALATE_COMPLETE": "bash_complete", "COMP_WORDS": "escalate show ESC", "COMP_CWORD": "2"}
    r = run(user="sarah.martinez", env=env)
    assert "ESC-2024-11-28-001" in r.stdout
    env = {"_ESCALATE_COMPLETE": "bash_complete", "COMP_WORDS": "escalate --as sar", "COMP_CWORD": "2"}
    assert "sarah.martinez" in run(env=env).stdout
    # an IC of another pod gets no codes: completion respects access
    run("user", "add", "amy.wu", "--name", "Amy Wu", "--email", "amy@intime.com", "--role", "ic",
        user="admin")
    env = {"_ESCALATE_COMPLETE": "bash_complete", "COMP_WORDS": "escalate show ESC", "COMP_CWORD": "2"}
    assert "ESC-2024-11-28-001" not in run(user="amy.wu", env=env).stdout


def test_config_show_masks_secrets(run, demo, config_file):
    config_file.write_text(config_file.read_text() + '[smtp]\npassword = "hunter2-secret"\n')
    config_file.chmod(0o600)
    r = run("config", "show", "--format", "json", user="sarah.martinez",
            env={"ESCALATE_SMS_URL": "twilio://sid:tok-secret@+1555"})
    assert r.exit_code == 0, r.stderr
    assert "hunter2-secret" not in r.stdout + r.stderr and "tok-secret" not in r.stdout
    data = json.loads(r.stdout)
    assert data["smtp_password"] == "********" and data["sms_url"] == "********"


def test_world_readable_settings_with_password_is_warned(run, demo, config_file):
    config_file.write_text(config_file.read_text() + '[smtp]\npassword = "pw"\n')
    config_file.chmod(0o644)
    r = run("list", user="sarah.martinez")
    assert r.exit_code == 0
    assert "readable by others" in r.stderr and "chmod 600" in r.stderr


def test_bad_settings_file_is_one_clear_line(run, demo, config_file):
    config_file.write_text("timezone = [broken\n")
    r = run("list", user="sarah.martinez")
    assert r.exit_code == 1
    assert r.stderr.startswith("Error: settings file") and r.stderr.count("\n") == 1
    config_file.write_text('timezone = "Mars/Olympus"\n')
    r = run("list", user="sarah.martinez")
    assert r.exit_code == 1 and "unknown time zone 'Mars/Olympus'" in r.stderr


def test_bad_now_is_one_clear_line(run, demo):
    r = run("list", user="sarah.martinez", now="yesterday-ish")
    assert r.exit_code == 1 and "ESCALATE_NOW must be ISO 8601" in r.stderr


def test_backup_and_restore_are_complete(run, demo, db_url, tmp_path, snap):
    if not db_url.startswith("sqlite"):
        r = run("backup", str(tmp_path / "b.db"), user="admin")
        assert r.exit_code == 1 and "pg_dump" in r.stderr
        return
    before = snap()
    target = tmp_path / "backup.db"
    r = run("backup", str(target), user="admin")
    assert r.exit_code == 0, r.stderr
    assert (target.stat().st_mode & 0o077) == 0
    assert run("claim", "ESC-2024-11-28-001", user="sarah.martinez").exit_code == 0
    assert snap() != before
    assert run("restore", str(target), user="admin").exit_code == 2       # needs --yes
    r = run("restore", str(target), "--yes", user="admin")
    assert r.exit_code == 0, r.stderr
    assert snap() == before
    assert run("backup", str(tmp_path / "b2.db"), user="sarah.martinez").exit_code == 1


def test_sqlite_file_is_private(run, demo, db_url):
    if db_url.startswith("sqlite"):
        import os
        path = db_url[len("sqlite:///"):]
        assert os.stat(path).st_mode & 0o077 == 0


def test_locked_database_is_one_clear_line(run, demo, db_url):
    if not db_url.startswith("sqlite"):
        return      # PostgreSQL row locks are exercised by the claim race tests
    path = db_url[len("sqlite:///"):]
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        r = run("claim", "ESC-2024-11-28-001", user="sarah.martinez",
                env={"ESCALATE_BUSY_TIMEOUT_MS": "200"})
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert r.exit_code == 4, r.stderr
    assert r.stderr.strip() == "Error: the database is busy; try again"


def test_usage_errors_are_one_line_that_says_where_to_look(run, demo, snap):
    before = snap()
    r = run("create", "--title", "T", "--category", "Client Complaint", "--priority", "urgent",
            "--description", "d", user="john.smith")
    assert r.exit_code == 2
    assert r.stderr.strip() == ("Error: Invalid value for '--priority': 'urgent' is not one of "
                                "'critical', 'high', 'medium', 'low'. "
                                "See 'escalate create --help'.")
    r = run("nosuch", user="john.smith")
    assert r.exit_code == 2
    assert r.stderr.strip() == "Error: No such command 'nosuch'. See 'escalate --help'."
    assert snap() == before


def test_text_that_is_not_utf8_is_a_usage_error(run, demo, snap):
    before = snap()
    r = run("note", demo, "bad \udcff", user="sarah.martinez")
    assert (r.exit_code, r.stderr.strip()) == (
        2, "Error: arguments must be valid UTF-8 text. See 'escalate --help'.")
    r = run("note", demo, "-", user="sarah.martinez", input=b"\xff\xfe a latin-1 note")
    assert (r.exit_code, r.stderr.strip()) == (2, "Error: the input is not valid UTF-8 text")
    assert snap() == before


@pytest.mark.parametrize("args", [
    ("hold", "{code}", "--reason", "r", "--until", "9999-12-31 23:59"),
    ("report", "--until", "9999-12-31"),
    ("report", "--until", "0001-01-01"),
    ("task", "{code}", "--title", "t", "--assign", "finance", "--due", "9999-12-31 23:00",
     "--priority", "low"),
    ("jobs", "sla-sweep", "--now", "9999-12-31T23:00:00+00:00"),
    ("events", "--since", "99999999999999999999999"),
])
def test_far_off_dates_and_numbers_are_usage_errors(run, demo, snap, args):
    before = snap()
    r = run(*[a.format(code=demo) for a in args], user="sarah.martinez")
    assert r.exit_code == 2, r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert "out of range" in r.stderr or "not in the range" in r.stderr
    assert "internal error" not in r.stderr
    assert snap() == before


def test_now_out_of_range_or_without_offset_is_one_clear_line(run, demo):
    r = run("list", user="sarah.martinez", now="2024-11-01")
    assert r.stderr.strip() == ("Error: ESCALATE_NOW needs a UTC offset, for example "
                                "2024-11-01T00:00:00+00:00")
    r = run("list", user="sarah.martinez", now="9999-12-31T20:00:00-05:00")
    assert r.exit_code == 1 and "out of range" in r.stderr


def test_a_command_on_a_store_that_does_not_exist_creates_nothing(tmp_path):
    missing = tmp_path / "nowhere" / "x.db"
    for args in (["list"], ["jobs", "status"], ["--as", "sarah.martinez", "show", "ESC-1"]):
        r = CliRunner().invoke(cli, ["--db", f"sqlite:///{missing}", *args])
        assert r.exit_code == 1
        assert r.stderr.strip() == (f"Error: no database at {missing} yet: run 'escalate init' "
                                    f"(or point --db / ESCALATE_DB at yours)")
    r = CliRunner().invoke(cli, ["--db", f"sqlite:///{missing}"])
    assert r.exit_code == 0 and "Get started" in r.stdout
    assert not missing.parent.exists()
    assert CliRunner().invoke(cli, ["--db", f"sqlite:///{missing}", "init"]).exit_code == 0
    assert missing.exists()


def test_a_file_that_is_not_a_database_is_one_clear_line(tmp_path):
    f = tmp_path / "notes.db"
    f.write_text("just some notes\n" * 100)
    r = CliRunner().invoke(cli, ["--db", f"sqlite:///{f}", "--as", "x", "list"])
    assert (r.exit_code, r.stderr.strip()) == (
        1, "Error: the database file is not a SQLite database (check --db / ESCALATE_DB)")


def test_the_bare_command_names_an_unknown_user(run, demo):
    r = run(user="nobody")
    assert r.exit_code == 3 and r.stderr.startswith("Error: Unknown user 'nobody'")
    r = run("--as", "", "list")
    assert (r.exit_code, r.stderr.strip()) == (
        1, "Error: --as needs a login (or leave it out to act as yourself)")
