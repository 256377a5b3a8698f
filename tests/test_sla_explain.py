"""``escalate sla explain``: why each due time is what it is; and the 0003 upgrade."""
import json

from conftest import USE_CASE_NOW

CODE = "ESC-2024-11-28-001"


def explain(run, code=CODE, now=USE_CASE_NOW, user="sarah.martinez", *extra):
    r = run("sla", "explain", code, "--format", "json", *extra, user=user, now=now)
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


def text(run, code=CODE, now=USE_CASE_NOW, user="sarah.martinez"):
    r = run("sla", "explain", code, user=user, now=now)
    assert r.exit_code == 0, r.stderr
    return r.stdout


def test_use_case_response_explained(run, demo, snap):
    before = snap()
    e = explain(run)
    assert e["policy"] == {
        "version": "default-1", "stored_version": "default-1", "source": "snapshot",
        "priority": "critical", "response_hours": 1.0, "resolution_hours": 24.0,
        "resolution_business_days": None, "escalate_to": "ceo", "warn_share": 0.75}
    assert e["calendar"] == {"kind": "business", "zone": "America/New_York",
                             "days": ["mon", "tue", "wed", "thu", "fri"], "start": "08:00",
                             "end": "18:00", "holidays": []}
    response, resolution = e["clocks"]
    assert response["due_at"] == "2024-11-29T09:00:00-05:00" and response["state"] == "running"
    assert response["counting_from"] == "2024-11-29T08:00:00-05:00"
    assert response["counted"] == [{"start": "2024-11-29T08:00:00-05:00",
                                    "end": "2024-11-29T09:00:00-05:00", "seconds": 3600}]
    assert response["skipped"] == [{"start": "2024-11-28T23:47:00-05:00",
                                    "end": "2024-11-29T08:00:00-05:00", "seconds": 8 * 3600 + 780,
                                    "reasons": ["night"], "days": []}]
    assert response["adds_up"] and response["elapsed_seconds"] == 0
    assert response["remaining_seconds"] == 3600
    assert resolution["due_at"] == "2024-12-03T12:00:00-05:00"
    assert resolution["counted_seconds"] == resolution["window_seconds"] == 24 * 3600
    assert [s["reasons"] for s in resolution["skipped"]] == [["night"], ["night", "weekend"],
                                                              ["night"]]
    assert resolution["skipped"][1]["days"] == [{"date": "2024-11-30", "why": "weekend"},
                                                {"date": "2024-12-01", "why": "weekend"}]
    assert e["pauses"] == [] and resolution["dst_changes"] == []
    out = text(run)
    for line in (
            "SLA of ESC-2024-11-28-001 as of Fri Nov 29, 2024 8:00 AM EST",
            "Policy: version default-1, critical priority, from the snapshot taken when it was opened",
            "  respond within 1 business hour; resolve within 24 business hours; on breach: CEO; "
            "warning at 75% of the window",
            "Calendar: Mon, Tue, Wed, Thu, Fri 08:00-18:00 America/New_York; holidays: none",
            "Response (take ownership): 1h of business time; due Fri Nov 29, 2024 9:00 AM EST - running",
            "  skipped   Thu Nov 28, 2024 11:47 PM EST - Fri Nov 29, 2024 8:00 AM EST (8h 13m): night",
            "  counted   Fri Nov 29, 2024 8:00 AM EST - 9:00 AM EST (1h)",
            "  total     1h counted of 1h",
            "  skipped   Fri Nov 29, 2024 6:00 PM EST - Mon Dec 2, 2024 8:00 AM EST (2d 14h): "
            "night, weekend (Sat Nov 30, Sun Dec 1)",
            "  total     24h counted of 24h"):
        assert line in out.splitlines(), line
    assert snap() == before


def test_explain_at_a_given_time_and_after_the_claim(run, demo):
    e = explain(run, CODE, USE_CASE_NOW, "sarah.martinez", "--at", "2024-11-29 08:30")
    assert e["at"] == "2024-11-29T08:30:00-05:00"
    assert e["clocks"][0]["elapsed_seconds"] == 1800
    assert run("claim", CODE, user="sarah.martinez", now="2024-11-29T08:02:00-05:00").exit_code == 0
    response = explain(run, now="2024-11-29T10:00:00-05:00")["clocks"][0]
    assert response["state"] == "met" and response["stopped_by"] == "claimed"
    assert response["stopped_at"] == "2024-11-29T08:02:00-05:00"
    assert "- met (claimed Fri Nov 29, 2024 8:02 AM EST)" in text(run, now="2024-11-29T10:00:00-05:00")
    r = run("sla", "explain", CODE, "--at", "not a time at all", user="sarah.martinez")
    assert r.exit_code == 2


def test_pauses_with_reason_and_who(run, demo, base_env):
    assert run("claim", CODE, user="sarah.martinez", now="2024-11-29T08:02:00-05:00").exit_code == 0
    assert run("hold", CODE, "--reason", "Waiting for Finance", "--until", "2024-12-02 10:00",
               user="sarah.martinez", now="2024-11-29T16:00:00-05:00").exit_code == 0
    # while on hold: the due time is a projection
    e = explain(run, now="2024-12-02T09:00:00-05:00")
    res = e["clocks"][1]
    assert res["state"] == "paused" and res["projected"] is True
    assert res["due_at"] == "2024-12-03T15:00:00-05:00"         # if resumed at 9:00: +3h
    [p] = e["pauses"]
    assert p["ongoing"] and p["reason"] == "Waiting for Finance" and p["held_by"] == "sarah.martinez"
    assert p["until"] == "2024-12-02T10:00:00-05:00"
    assert "paused; if resumed now it would be due Tue Dec 3, 2024 3:00 PM EST" in \
        text(run, now="2024-12-02T09:00:00-05:00")
    from escalate_cli import domain
    from test_lifecycle import domain_app
    with domain_app(base_env, "2024-12-02T10:30:00-05:00") as app:
        domain.resume_due_holds(app)
    e = explain(run, now="2024-12-02T11:00:00-05:00")
    [p] = e["pauses"]
    assert p["end"] == "2024-12-02T10:00:00-05:00" and p["ended_by"] == "system"
    assert p["ended_how"] == "resumed" and p["business_seconds"] == 4 * 3600
    assert p["moved_due_seconds"] == 4 * 3600 and p["wall_seconds"] == 66 * 3600
    res = e["clocks"][1]
    assert res["due_at"] == "2024-12-03T16:00:00-05:00" and res["consistent"] is True
    assert res["counted_seconds"] == 24 * 3600 and res["adds_up"]
    assert sum(h["seconds"] for h in res["on_hold"]) == 4 * 3600
    out = text(run, now="2024-12-02T11:00:00-05:00")
    assert "  on hold   Fri Nov 29, 2024 4:00 PM EST - 6:00 PM EST (2h)" in out
    assert ("    reason: Waiting for Finance; held by Sarah Martinez; 2d 18h on the wall clock, "
            "4h of business time; moved the resolution due time by 4h") in out
    assert "resumed by System (hold until Dec 2, 2024 10:00 AM ended)" in out


def test_daylight_saving_holidays_and_24x7_explained(run, demo, config_file):
    config_file.write_text(config_file.read_text()
                           + '[business_hours]\nholidays = ["2024-11-04"]\n'
                             '[sla.high]\ncalendar = "24x7"\n')
    codes = []
    for prio in ("high", "medium"):
        r = run("create", "--title", "Weekend no-show", "--category", "Candidate Issue",
                "--priority", prio, "--description", "d", user="john.smith",
                now="2024-11-02T10:00:00-04:00")
        assert r.exit_code == 0, r.stderr
        codes.append(r.stdout.strip())
    high = explain(run, codes[0], now="2024-11-02T11:00:00-04:00")
    assert high["calendar"] == {"kind": "24x7", "zone": "America/New_York"}
    res = high["clocks"][1]
    assert res["due_at"] == "2024-11-04T09:00:00-05:00"       # 48 real hours
    [d] = res["dst_changes"]
    assert (d["at"], d["from_name"], d["to_name"]) == ("2024-11-03T01:00:00-05:00", "EDT", "EST")
    assert d["wall_before"] == "02:00" and d["wall_after"] == "01:00" and "real hours" in d["effect"]
    medium = explain(run, codes[1], now="2024-11-02T11:00:00-04:00")
    resp = medium["clocks"][0]
    assert resp["due_at"] == "2024-11-05T16:00:00-05:00"      # weekend and holiday skipped
    assert resp["skipped"][0]["reasons"] == ["night", "weekend", "holiday"]
    assert resp["skipped"][0]["days"][-1] == {"date": "2024-11-04", "why": "holiday"}
    out = text(run, codes[1], now="2024-11-02T11:00:00-04:00")
    assert ("night, weekend (Sat Nov 2, Sun Nov 3), holiday (Mon Nov 4)") in out
    assert ("  dst       Sun Nov 3, 2024: 02:00 EDT -> 01:00 EST (clocks back 1h); business hours "
            "stay 08:00-18:00 local time, so no business time is gained or lost; the night is "
            "1h longer") in out


def test_an_ic_reporter_may_read_the_explanation(run, demo):
    assert explain(run, user="john.smith")["code"] == CODE


def test_upgrade_from_0002_keeps_data_and_adds_the_snapshot(run, db_url):
    from escalate_cli import migrations
    from escalate_cli.db import make_database
    db = make_database(db_url)
    db.connect()
    migrations.migrate(db, upto="0002_communication_and_jobs")
    db.execute_sql('INSERT INTO "pod" ("name") VALUES (\'Old Pod\')')
    db.close()
    r = run("init", "--demo")
    assert r.exit_code == 0, r.stderr
    assert f"{len(migrations.MIGRATIONS) - 2} applied now" in r.stderr
    db.connect()
    try:
        names = [row[0] for row in db.execute_sql('SELECT "name" FROM "pod" ORDER BY "id"')]
        snapshot = db.execute_sql('SELECT "sla_policy" FROM "escalation"').fetchone()[0]
    finally:
        db.close()
    assert names == ["Old Pod", "Recruiting Pod A"]
    assert json.loads(snapshot)["priorities"]["low"]["resolution_business_days"] == 5
