"""Heartbeats, `jobs status`, failures as one log line, and the in-process scheduler."""
import json
import re
import signal
import threading
import time

from jobs_helpers import at, proc_env, spawn

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d{4} escalate\[\d+\] "
                      r"(INFO|WARNING|ERROR): \S")


def status(run, when):
    r = run("jobs", "status", "--now", at(when), "--format", "json")
    return r, {s["job"]: s for s in json.loads(r.stdout)}


def beat(run, name, when):
    from escalate_cli.config import parse_now
    from escalate_cli.context import App
    from jobs import locks
    app = App(db_url=run.env["ESCALATE_DB"], env={"ESCALATE_CONFIG": run.env["ESCALATE_CONFIG"]})
    app.now_override = parse_now(at(when))
    locks.succeeded(app, name, "ok")
    app.close()


def test_status_shows_each_job_and_fails_when_one_is_stale(run, demo):
    r, rows = status(run, "2024-12-02 07:05")
    assert r.exit_code == 1
    assert {k: v["state"] for k, v in rows.items()} == {k: "never ran" for k in rows}
    assert r.stderr.strip() == ("Error: stale job(s): sla-sweep, deliver, reminders, digest, "
                                "rate-watch: not succeeded within the expected interval")
    for args, when in ((("rate-watch",), "2024-12-02 02:30"), (("digest",), "2024-12-02 07:00"),
                       (("sla-sweep",), "2024-12-02 07:00"), (("reminders",), "2024-12-02 07:00")):
        assert run("jobs", *args, "--now", at(when)).exit_code == 0
    beat(run, "deliver", "2024-12-02 07:04")
    r, rows = status(run, "2024-12-02 07:05")
    assert r.exit_code == 0, r.stderr
    assert rows["sla-sweep"]["lag_seconds"] == 300 and rows["sla-sweep"]["outcome"] == "ok"
    assert rows["digest"]["schedule"] == "daily 07:00 mon-fri"
    assert rows["sla-sweep"]["last_success"] == "2024-12-02T07:00:00-05:00"
    # twenty minutes later nothing ran: the five-minute jobs are stale, the daily ones are not
    r, rows = status(run, "2024-12-02 07:25")
    assert r.exit_code == 1
    assert {k for k, v in rows.items() if v["state"] == "STALE"} == {"sla-sweep", "deliver",
                                                                      "reminders"}
    # Tuesday 09:30: the 07:00 digest and the 02:30 rate watch were missed
    r, rows = status(run, "2024-12-03 09:30")
    assert rows["digest"]["state"] == "STALE" and rows["rate-watch"]["state"] == "STALE"
    table = run("jobs", "status", "--now", at("2024-12-02 07:05"))
    assert "sla-sweep" in table.stdout and "every 5m" in table.stdout


def test_disabled_jobs_are_not_watched(run, demo, config_file):
    config_file.write_text(config_file.read_text() + '[jobs]\ndisabled = ["digest", "rate-watch", '
                                                     '"deliver", "reminders"]\n')
    assert run("jobs", "sla-sweep", "--now", at("2024-12-02 07:00")).exit_code == 0
    r, rows = status(run, "2024-12-02 07:05")
    assert r.exit_code == 0 and rows["digest"]["state"] == "disabled"


def test_a_failing_job_exits_1_with_one_timestamped_log_line(run, demo, tmp_path, config_file):
    config_file.write_text(config_file.read_text() + '[jobs.rate_watch]\npod = "Nope"\n')
    path = tmp_path / "inv.csv"
    path.write_text("number,contract,period,hours,bill_rate\nINV-1,C-2024-08-15-GOOG-001,2024-11,160,120\n")
    assert run("import", "invoices", str(path), user="admin").exit_code == 0
    r = run("jobs", "rate-watch", "--now", at("2024-12-02 02:30"))
    assert r.exit_code == 1 and r.stdout == ""
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and LOG_LINE.match(lines[0]), lines
    assert lines[0].endswith("ERROR: rate-watch failed: settings: jobs.rate_watch.pod: "
                             "unknown pod 'Nope'")
    _, rows = status(run, "2024-12-02 02:31")
    assert rows["rate-watch"]["outcome"] == "failed"
    assert rows["rate-watch"]["message"] == "settings: jobs.rate_watch.pod: unknown pod 'Nope'"


def test_bad_settings_are_one_clear_line(run, demo, config_file):
    config_file.write_text(config_file.read_text() + '[jobs]\nafter_hours = "never"\n')
    r = run("jobs", "sla-sweep")
    assert r.exit_code == 1
    assert r.stderr.count("\n") == 1
    assert r.stderr.rstrip().endswith("ERROR: sla-sweep failed: settings: jobs.after_hours must "
                                      "be one of defer, send, digest")


def test_run_once_runs_what_is_due_and_survives_a_failure(run, demo, db_url, base_env):
    from escalate_cli.config import parse_now
    from escalate_cli.context import App
    from jobs import runner
    calls = []

    def ok(name):
        def fn(app, tick):
            calls.append(name)
            return runner.Text(f"{name} done")
        return fn

    def boom(app, tick):
        calls.append("boom")
        raise RuntimeError("disk on fire")

    jobs = {"sla-sweep": (ok("sla-sweep"), True), "deliver": (boom, False),
            "reminders": (ok("reminders"), True), "digest": (ok("digest"), True),
            "rate-watch": (ok("rate-watch"), True)}
    app = App(db_url=db_url, env=base_env)
    app.now_override = parse_now(at("2024-12-02 07:05"))
    outcomes = runner.run_schedule(app, once=True, jobs=jobs)
    assert [(o.name, o.status) for o in outcomes] == [
        ("sla-sweep", "ok"), ("deliver", "failed"), ("reminders", "ok"), ("digest", "ok"),
        ("rate-watch", "ok")]
    assert outcomes[1].message == "RuntimeError: disk on fire"
    # the daily jobs ran because their time (07:00, 02:30) had passed today; now they have
    outcomes = runner.run_schedule(app, once=True, jobs=jobs)
    assert [o.name for o in outcomes] == ["sla-sweep", "deliver", "reminders"]
    app.close()


def test_jobs_run_survives_failures_and_stops_on_sigterm(run, demo, base_env, config_file, tmp_path):
    config_file.write_text(config_file.read_text() + (
        '[jobs]\ndisabled = ["deliver", "digest"]\n'
        '[jobs.schedule]\nsla-sweep = "1s"\nreminders = "1s"\nrate-watch = "1s"\n'
        '[jobs.rate_watch]\npod = "Nope"\n'))
    path = tmp_path / "inv.csv"
    path.write_text("number,contract,period,hours,bill_rate\nINV-1,C-2024-08-15-GOOG-001,2024-11,160,120\n")
    assert run("import", "invoices", str(path), user="admin").exit_code == 0
    proc = spawn(proc_env(base_env), "jobs", "run")
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(iter(proc.stderr.readline, "")), daemon=True)
    reader.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        sweeps = [x for x in lines if "INFO: sla-sweep:" in x]
        if len(sweeps) >= 2 and any("ERROR: rate-watch failed" in x for x in lines):
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    reader.join(timeout=5)
    assert len([x for x in lines if "INFO: sla-sweep:" in x]) >= 2, lines
    assert any("rate-watch failed: settings: jobs.rate_watch.pod: unknown pod 'Nope'" in x
               for x in lines)
    stop = [i for i, x in enumerate(lines) if "SIGTERM received" in x]
    assert len(stop) == 1 and lines[-1].rstrip().endswith("INFO: jobs run: stopped")
    assert len(lines) - stop[0] <= 3          # at most the job in progress finishes after it
    assert all(LOG_LINE.match(x) for x in lines), lines
