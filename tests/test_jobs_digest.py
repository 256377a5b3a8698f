"""Daily digests: per manager and for leadership, once per person per day."""
from jobs_helpers import (at, create, esc_id, insert, notifications, outbox, render, user_id,
                          utc)

DEMO = "ESC-2024-11-28-001"


def digest(run, when, *extra):
    r = run("jobs", "digest", "--now", at(when), "-v", *extra)
    assert r.exit_code == 0, r.stderr
    return r


def test_digests_per_manager_and_leadership_once_a_day(run, demo, db_url):
    r = run("user", "add", "mike.ross", "--name", "Mike Ross", "--email", "mike@intime.com",
            "--role", "manager", user="admin")
    assert r.exit_code == 0, r.stderr
    high = create(run, "Candidate ghosted", "high", at("2024-11-29 10:00"),
                  category="Candidate Issue", account="Google Inc.")
    assert run("claim", high, user="sarah.martinez", now=at("2024-11-29 10:05")).exit_code == 0
    r = run("escalate", high, "--to", "coo", "--note", "Client wants an executive call",
            user="sarah.martinez", now=at("2024-11-29 11:00"))
    assert r.exit_code == 0, r.stderr
    low = create(run, "Badge request", "low", at("2024-11-29 11:00"), category="System/Process Failure")
    insert(db_url, "task", escalation_id=esc_id(db_url, DEMO), title="Issue corrected invoice",
           assignee_user_id=user_id(db_url, "sarah.martinez"), due_at=utc("2024-11-29 17:00"),
           priority="high", status="open", created_at=utc("2024-11-29 09:00"))
    assert run("jobs", "sla-sweep", "--backfill", "--now", at("2024-12-02 06:00")).exit_code == 0

    r = digest(run, "2024-12-02 07:00")
    assert "3 digest(s) sent (sarah.martinez, olivia.park, david.kim)" in r.stderr
    assert "1 with nothing to report" in r.stderr           # Mike: no pod, nothing owned
    again = digest(run, "2024-12-02 07:30")
    assert "0 digest(s) sent, 3 already sent today, 1 with nothing to report" in again.stderr

    mails = {m["to"][0]: m for m in outbox(db_url) if m["template"] in ("digest", "digest-leadership")}
    assert sorted(mails) == ["david.kim@intime.com", "olivia.park@intime.com",
                             "sarah.martinez@intime.com"]
    sarah = mails["sarah.martinez@intime.com"]
    assert sarah["template"] == "digest" and sarah["not_before"] is None
    ctx = sarah["ctx"]
    assert ctx["open_total"] == 3                   # her pod's, including the one with the COO
    assert [x["code"] for x in ctx["open"]] == [DEMO, high, low]
    assert [x["code"] for x in ctx["breached"]] == [DEMO]
    assert [t["title"] for t in ctx["overdue_tasks"]] == ["Issue corrected invoice"]
    assert ctx["overdue_tasks"][0]["overdue_by"] == "2d 14h"
    assert ctx["by_priority"][0] == {"priority": "critical", "count": 1}
    assert ctx["date"] == "Monday, December 2, 2024"
    olivia = mails["olivia.park@intime.com"]["ctx"]
    assert olivia["role"] == "COO"
    assert [x["code"] for x in olivia["escalated"]] == [high]
    assert [x["code"] for x in olivia["breached"]] == [DEMO]
    assert {x["code"] for x in olivia["strategic"]} == {DEMO, high}
    david = mails["david.kim@intime.com"]["ctx"]
    assert david["escalated"] == [] and [x["code"] for x in david["breached"]] == [DEMO]
    for m in mails.values():                         # what the deliverer will render
        parts = render(m["template"], m["ctx"])
        assert "Digest" in parts["subject"] or "digest" in parts["subject"]
        assert DEMO in parts["txt"] and DEMO in parts["html"]
    inbox = [n["message"] for n in notifications(db_url, "digest") if n["login"] == "sarah.martinez"]
    assert inbox == ["Daily digest: 3 open (1 critical, 1 high, 1 low), 0 at risk, 1 breached, "
                     "1 overdue task(s), 0 resolved since your last digest"]

    # the next day: what was resolved since the last digest
    assert run("claim", low, user="sarah.martinez", now=at("2024-12-02 09:00")).exit_code == 0
    r = run("resolve", low, "--notes", "Badge issued by facilities; reporter confirmed access works.",
            user="sarah.martinez", now=at("2024-12-02 10:00"))
    assert r.exit_code == 0, r.stderr
    digest(run, "2024-12-03 07:00")
    latest = [m for m in outbox(db_url, "digest") if m["to"] == ["sarah.martinez@intime.com"]][-1]
    assert [x["code"] for x in latest["ctx"]["resolved"]] == [low]
    assert latest["ctx"]["since"] == "Dec 2, 2024 7:00 AM"
    assert len(notifications(db_url, "digest")) == 6


def test_empty_digests_only_when_asked(run, demo, db_url, config_file):
    run("user", "add", "mike.ross", "--name", "Mike Ross", "--email", "mike@intime.com",
        "--role", "manager", user="admin")
    digest(run, "2024-12-02 07:00")
    assert "mike.ross" not in {n["login"] for n in notifications(db_url, "digest")}
    config_file.write_text(config_file.read_text() + "[digest]\nsend_empty = true\n")
    digest(run, "2024-12-02 07:05")
    assert "mike.ross" in {n["login"] for n in notifications(db_url, "digest")}
    mike = [m for m in outbox(db_url, "digest") if m["to"] == ["mike@intime.com"]][0]
    parts = render("digest", mike["ctx"])
    assert "None" in parts["txt"] and "0 open" in parts["subject"]
