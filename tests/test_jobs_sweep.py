"""The SLA sweep with a pinned clock: warnings and breaches at all four priorities, exactly
once; TC-006 (high past its SLA: badge, COO told) and critical (CEO told); holds, delivery
windows, catch-up after an outage, backfill, dry run, locks and the stale deliverer."""
import json

from jobs_helpers import at, create, events, notifications, outbox, query, settle_demo

DEMO = "ESC-2024-11-28-001"
BREACH = "⚠️ SLA breach: This escalation is overdue"


def sweep(run, when, *extra):
    r = run("jobs", "sla-sweep", "--now", when, *extra)
    assert r.exit_code == 0, r.stderr
    return r


def twice(run, when, *extra):
    first = sweep(run, when, *extra)
    sweep(run, when, *extra)
    return first


def four(run, when="2024-12-02 09:00"):
    codes = {}
    for prio in ("critical", "high", "medium", "low"):
        codes[prio] = create(run, f"{prio.title()} issue", prio, at(when),
                             account="Google Inc.")
    return codes


def told(db_url, kind):
    """{(code, login)} for in-app notifications of ``kind``."""
    rows = query(db_url, 'SELECT e."code", u."login", n."dedupe_key" FROM "notification" n '
                         'JOIN "user" u ON u."id" = n."user_id" '
                         'LEFT JOIN "escalation" e ON e."id" = n."escalation_id" '
                         'WHERE n."kind" = ? ORDER BY n."id"', kind)
    keys = [r["dedupe_key"] for r in rows]
    assert len(keys) == len(set(keys)) and None not in keys, keys     # never twice
    return {(r["code"], r["login"]) for r in rows}


def test_four_priorities_walk_through_warnings_and_breaches_exactly_once(run, demo, db_url):
    settle_demo(run)
    c = four(run)
    C, H, M, L = c["critical"], c["high"], c["medium"], c["low"]

    twice(run, at("2024-12-02 09:50"))              # critical: 75% of its 1 hour
    assert told(db_url, "sla.warning") == {(C, "sarah.martinez")}
    assert told(db_url, "sla.breached") == set()

    twice(run, at("2024-12-02 10:05"))              # critical breach: owner-or-manager + CEO
    assert told(db_url, "sla.breached") == {(C, "sarah.martinez"), (C, "david.kim")}
    ceo = [n for n in notifications(db_url, "sla.breached") if n["login"] == "david.kim"][0]
    assert ceo["message"] == (f"{BREACH}: {C} Critical issue (response was due "
                              f"Dec 2, 2024 10:00 AM)")
    sms = [o for o in outbox(db_url) if o["channel"] == "sms" and o["escalation_id"] is not None
           and "SLA" in (o["body_text"] or "")]
    assert sorted(o["to"][0] for o in sms if "breach" in o["body_text"]) == [
        "+15550100001", "+15550100004"]             # Sarah and David, at once

    twice(run, at("2024-12-02 12:05"))              # high: warning at 3 of 4 hours
    assert (H, "sarah.martinez") in told(db_url, "sla.warning")

    r = twice(run, at("2024-12-02 13:05"))          # TC-006: high past its SLA
    breached = told(db_url, "sla.breached")
    assert {(H, "sarah.martinez"), (H, "olivia.park")} <= breached
    assert (H, "david.kim") not in breached
    shown = run("show", H, user="sarah.martinez", now=at("2024-12-02 13:06"))
    assert BREACH in shown.stdout
    listed = json.loads(run("list", "--breached", "--format", "json", user="olivia.park",
                            now=at("2024-12-02 13:06")).stdout)
    assert {e["code"] for e in listed} == {C, H}
    coo_mail = [o for o in outbox(db_url, "sla-breach") if o["to"] == ["olivia.park@intime.com"]]
    assert len(coo_mail) == 1 and coo_mail[0]["ctx"]["code"] == H
    assert coo_mail[0]["ctx"]["role"] == "coo" and coo_mail[0]["not_before"] is None
    assert r.stderr == ""                           # quiet on success

    twice(run, at("2024-12-02 15:05"))              # medium warning
    twice(run, at("2024-12-02 17:05"))              # medium breach: COO too
    assert {(M, "sarah.martinez"), (M, "olivia.park")} <= told(db_url, "sla.breached")

    twice(run, at("2024-12-03 17:05"))              # low warning; critical's resolution warning
    assert {(L, "sarah.martinez"), (C, "sarah.martinez")} <= told(db_url, "sla.warning")
    twice(run, at("2024-12-04 13:05"))              # low breach (nobody above); critical resolution

    assert told(db_url, "sla.warning") == {(c, "sarah.martinez") for c in (C, H, M, L)}
    assert told(db_url, "sla.breached") == {
        (C, "sarah.martinez"), (C, "david.kim"), (H, "sarah.martinez"), (H, "olivia.park"),
        (M, "sarah.martinez"), (M, "olivia.park"), (L, "sarah.martinez")}
    # the critical escalation breached two clocks: each has its own notice, once
    per_clock = [n for n in notifications(db_url, "sla.breached")
                 if n["login"] == "david.kim"]
    assert [n["message"].split("(")[-1] for n in per_clock] == [
        "response was due Dec 2, 2024 10:00 AM)", "resolution was due Dec 4, 2024 1:00 PM)"]
    keys = [o["key"] for o in outbox(db_url)]
    assert len(keys) == len(set(keys))
    warnings = events(db_url, "escalation.sla_warning")
    breaches = events(db_url, "escalation.sla_breached")
    assert sorted((e["payload"]["escalation_id"], e["payload"]["clock"]) for e in warnings) == sorted(
        [(C, "response"), (H, "response"), (M, "response"), (L, "response"), (C, "resolution")])
    assert sorted((e["payload"]["escalation_id"], e["payload"]["clock"]) for e in breaches) == sorted(
        [(C, "response"), (H, "response"), (M, "response"), (L, "response"), (C, "resolution")])
    high = [e["payload"] for e in breaches if e["payload"]["escalation_id"] == H][0]
    assert high["escalate_to"] == "coo" and high["notified"] == ["sarah.martinez", "olivia.park"]
    assert high["due_at"] == "2024-12-02T18:00:00+00:00" and high["late"] is False
    low = [e["payload"] for e in breaches if e["payload"]["escalation_id"] == L][0]
    assert low["escalate_to"] is None and low["notified"] == ["sarah.martinez"]
    timeline = run("timeline", H, user="sarah.martinez").stdout
    assert "SLA WARNING" in timeline and "SLA BREACH" in timeline
    assert "Sarah Martinez, Olivia Park (COO) notified" in timeline


def test_warning_goes_to_the_owner_once_claimed(run, demo, db_url):
    settle_demo(run)
    r = run("user", "add", "mike.ross", "--name", "Mike Ross", "--email", "mike@intime.com",
            "--role", "manager", "--pod", "Recruiting Pod A", user="admin")
    assert r.exit_code == 0, r.stderr
    code = create(run, "Contract terms", "high", at("2024-12-02 09:00"), category="Contract Dispute")
    assert run("claim", code, user="mike.ross", now=at("2024-12-02 09:10")).exit_code == 0
    twice(run, at("2024-12-02 13:05"))              # response clock stopped by the claim
    assert told(db_url, "sla.breached") == set()
    twice(run, at("2024-12-05 15:05"))              # 36 of 48 business hours: resolution warning
    assert told(db_url, "sla.warning") == {(code, "mike.ross")}
    twice(run, at("2024-12-06 17:05"))
    assert told(db_url, "sla.breached") == {(code, "mike.ross"), (code, "olivia.park")}


def test_on_hold_does_not_breach_while_paused(run, demo, db_url):
    settle_demo(run)
    code = create(run, "Waiting for the client", "high", at("2024-12-02 09:00"))
    assert run("claim", code, user="sarah.martinez", now=at("2024-12-02 09:10")).exit_code == 0
    r = run("hold", code, "--reason", "Waiting for the client's purchase order",
            user="sarah.martinez", now=at("2024-12-02 10:00"))
    assert r.exit_code == 0, r.stderr
    twice(run, at("2024-12-09 09:05"))              # a week later: the 48 hours are long past
    assert told(db_url, "sla.breached") == set() and told(db_url, "sla.warning") == set()
    shown = json.loads(run("show", code, "--format", "json", user="sarah.martinez",
                           now=at("2024-12-09 09:05")).stdout)
    assert shown["breached"] is False and shown["sla_state"] == "paused"
    assert run("resume", code, user="sarah.martinez", now=at("2024-12-09 09:10")).exit_code == 0
    twice(run, at("2024-12-09 09:15"))              # due times moved by the pause: not due yet
    assert told(db_url, "sla.breached") == set()


def test_delivery_windows_critical_now_others_next_business_start(run, demo, db_url, config_file):
    settle_demo(run)
    medium = create(run, "Timesheet question", "medium", at("2024-12-02 12:00"))
    critical = create(run, "Candidate walked off site", "critical", at("2024-12-02 17:15"),
                      category="Candidate Issue")
    r = twice(run, at("2024-12-02 18:05"))          # both warnings fell at 18:00, after hours
    assert told(db_url, "sla.warning") == {(medium, "sarah.martinez"), (critical, "sarah.martinez")}
    mails = {o["ctx"]["code"]: o for o in outbox(db_url, "sla-warning")}
    assert mails[critical]["not_before"] is None                       # critical: at once
    assert str(mails[medium]["not_before"])[:16] == "2024-12-03 13:00"  # Tue 08:00 EST (UTC)
    assert str(mails[medium]["next_attempt_at"])[:16] == "2024-12-03 13:00"
    sms = [o for o in outbox(db_url) if o["channel"] == "sms" and o["escalation_id"] is not None
           and "must be claimed" in (o["body_text"] or "")]
    assert len(sms) == 1 and sms[0]["to"] == ["+15550100001"]
    assert r.exit_code == 0


def test_after_hours_can_fold_into_the_digest(run, demo, db_url, config_file):
    config_file.write_text(config_file.read_text() + '[jobs]\nafter_hours = "digest"\n')
    settle_demo(run)
    medium = create(run, "Timesheet question", "medium", at("2024-12-02 12:00"))
    twice(run, at("2024-12-02 18:05"))
    assert told(db_url, "sla.warning") == {(medium, "sarah.martinez")}     # in-app
    assert outbox(db_url, "sla-warning") == []                             # no email tonight


def test_catch_up_after_an_outage_one_message_per_person(run, demo, db_url):
    settle_demo(run)
    c = four(run)
    r = run("jobs", "sla-sweep", "--now", at("2024-12-03 17:45"), "--verbose")
    assert r.exit_code == 0, r.stderr
    assert "late, consolidated into 3 catch-up message(s)" in r.stderr
    sweep(run, at("2024-12-03 17:45"))
    assert told(db_url, "sla.warning") == set() and told(db_url, "sla.breached") == set()
    catch_up = notifications(db_url, "sla.catch_up")
    assert sorted(n["login"] for n in catch_up) == ["david.kim", "olivia.park", "sarah.martinez"]
    sarah = [n for n in catch_up if n["login"] == "sarah.martinez"][0]
    assert sarah["message"].startswith("SLA catch-up: 3 breach(es) and 2 warning(s) were found late")
    mails = outbox(db_url, "sla-catch-up")
    assert sorted(m["to"][0] for m in mails) == ["david.kim@intime.com", "olivia.park@intime.com",
                                                 "sarah.martinez@intime.com"]
    items = {(i["code"], i["action"]) for m in mails if m["to"] == ["sarah.martinez@intime.com"]
             for i in m["ctx"]["items"]}
    assert items == {(c["critical"], "breach"), (c["high"], "breach"), (c["medium"], "breach"),
                     (c["critical"], "warning"), (c["low"], "warning")}
    assert all(m["not_before"] is None for m in mails)       # critical among them: at once
    assert len(events(db_url, "escalation.sla_breached")) == 3
    assert all(e["payload"]["late"] for e in events(db_url, "escalation.sla_warning"))
    # and afterwards, back to one message per event
    sweep(run, at("2024-12-04 13:05"))
    assert told(db_url, "sla.breached") == {(c["critical"], "sarah.martinez"),
                                            (c["critical"], "david.kim"),
                                            (c["low"], "sarah.martinez")}


def test_backfill_records_without_notifying(run, demo, db_url):
    settle_demo(run)
    c = four(run)
    before = len(outbox(db_url))
    r = run("jobs", "sla-sweep", "--backfill", "--now", at("2024-12-03 17:45"), "-v")
    assert r.exit_code == 0, r.stderr
    assert "2 warning(s), 3 breach(es) (backfilled, nobody told)" in r.stderr
    assert len(outbox(db_url)) == before
    assert [n for n in notifications(db_url) if n["kind"].startswith("sla.")] == []
    breaches = events(db_url, "escalation.sla_breached")
    assert len(breaches) == 3 and all(e["payload"]["backfill"] for e in breaches)
    timeline = run("timeline", c["high"], user="sarah.martinez").stdout
    assert "recorded by a backfill; nobody was notified" in timeline
    sweep(run, at("2024-12-03 17:50"))                  # nothing left to tell
    assert [n for n in notifications(db_url) if n["kind"].startswith("sla.")] == []
    sweep(run, at("2024-12-04 13:05"))                  # new breaches are told as usual
    assert (c["low"], "sarah.martinez") in told(db_url, "sla.breached")


def test_dry_run_prints_the_plan_and_changes_nothing(run, demo, db_url, snap):
    settle_demo(run)
    c = four(run)
    assert run("claim", c["low"], user="sarah.martinez", now=at("2024-12-02 09:10")).exit_code == 0
    r = run("hold", c["low"], "--reason", "Waiting for Finance", "--until", at("2024-12-02 11:00"),
            user="sarah.martinez", now=at("2024-12-02 09:20"))
    assert r.exit_code == 0, r.stderr
    before = snap()
    r = run("jobs", "sla-sweep", "--dry-run", "--now", at("2024-12-02 13:05"), "--format", "json")
    assert r.exit_code == 0, r.stderr
    assert snap() == before
    plan = json.loads(r.stdout)
    rows = {(p["escalation"], p["clock"], p["action"]): p for p in plan if p["escalation"]}
    crit = rows[(c["critical"], "response", "breach")]
    assert crit["notify"] == ["sarah.martinez", "david.kim"]
    assert crit["channels"] == ["in-app", "email", "sms"]
    assert crit["deliver"] == "catch-up message"          # three hours late
    assert crit["at"] == "2024-12-02T10:00:00-05:00"
    high = rows[(c["high"], "response", "breach")]
    assert high["notify"] == ["sarah.martinez", "olivia.park"] and high["late"] is False
    assert high["channels"] == ["in-app", "email"] and high["deliver"] == "now"
    assert rows[(c["low"], "resolution", "auto-resume")]["at"] == "2024-12-02T11:00:00-05:00"
    assert rows[(c["critical"], "response", "breach")]["late"] is True
    table = run("jobs", "sla-sweep", "--dry-run", "--now", at("2024-12-02 09:50"))
    assert c["critical"] in table.stdout and "warning" in table.stdout
    assert snap() == before
    early = json.loads(run("jobs", "sla-sweep", "--dry-run", "--now", at("2024-12-02 09:01"),
                           "--format", "json").stdout)
    assert [p["action"] for p in early] == ["warn admins: deliver stale"]   # nothing else yet


def test_another_sweep_running_means_skip(run, demo, db_url, base_env):
    from escalate_cli.context import App
    from jobs.locks import JobLock
    settle_demo(run)
    code = create(run, "Urgent", "critical", at("2024-12-02 09:00"))
    holder = App(db_url=db_url, env=base_env)
    with JobLock(holder, "sla-sweep") as lock:
        assert lock.acquired
        r = run("jobs", "sla-sweep", "--now", at("2024-12-02 10:05"), "-v")
        assert r.exit_code == 0
        assert "sla-sweep: skipped: another instance is running" in r.stderr
        assert told(db_url, "sla.breached") == set()
    holder.close()
    sweep(run, at("2024-12-02 10:05"))
    assert (code, "david.kim") in told(db_url, "sla.breached")


def test_a_crashed_holders_lease_expires(run, demo, db_url):
    if not db_url.startswith("sqlite"):
        return    # PostgreSQL: the advisory lock dies with the crashed process's connection
    import datetime as dt
    from escalate_cli.db import make_database
    settle_demo(run)
    create(run, "Urgent", "critical", at("2024-12-02 09:00"))
    db = make_database(db_url)
    real = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    db.execute_sql('INSERT INTO "job_lock" ("name", "holder", "expires_at") VALUES (?, ?, ?)',
                   ("sla-sweep", "deadhost:1:x", real + dt.timedelta(minutes=5)))
    r = run("jobs", "sla-sweep", "--now", at("2024-12-02 10:05"), "-v")
    assert "skipped" in r.stderr and told(db_url, "sla.breached") == set()
    db.execute_sql('UPDATE "job_lock" SET "expires_at" = ?', (real - dt.timedelta(seconds=1),))
    db.close()
    r = run("jobs", "sla-sweep", "--now", at("2024-12-02 10:05"), "-v")
    assert "skipped" not in r.stderr and len(told(db_url, "sla.breached")) == 2
    assert query(db_url, 'SELECT * FROM "job_lock"') == []      # released after the run


def test_sweep_warns_admins_once_when_delivery_is_stale(run, demo, db_url):
    settle_demo(run)
    create(run, "Urgent", "high", at("2024-12-02 09:00"))     # queues an email to Sarah
    r = sweep(run, at("2024-12-02 09:30"))
    assert "WARNING: sla-sweep: The delivery job (escalate jobs deliver) has not succeeded" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    stale = notifications(db_url, "jobs.stale")
    assert [n["login"] for n in stale] == ["admin"]
    again = sweep(run, at("2024-12-02 09:35"))
    assert again.stderr == "" and len(notifications(db_url, "jobs.stale")) == 1
    # a working deliverer silences it
    from escalate_cli.context import App
    from jobs import locks
    app = App(db_url=db_url, env={"ESCALATE_CONFIG": run.env["ESCALATE_CONFIG"]})
    app.now_override = __import__("escalate_cli.config", fromlist=["x"]).parse_now(at("2024-12-02 09:40"))
    locks.succeeded(app, "deliver", "12 message(s) delivered")
    app.close()
    assert sweep(run, at("2024-12-02 09:45")).stderr == ""
    status = json.loads(run("jobs", "status", "--now", at("2024-12-02 09:45"), "--format",
                            "json").stdout)
    assert {s["job"]: s["state"] for s in status}["deliver"] == "ok"
