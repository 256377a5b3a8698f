"""Reminders: tasks due soon and overdue, idle escalations; once each (call reminders are
queued by `call schedule`: see test_comms)."""

from jobs_helpers import at, esc_id, insert, notifications, outbox, query, render, user_id, utc

DEMO = "ESC-2024-11-28-001"


def remind(run, when):
    r = run("jobs", "reminders", "--now", at(when), "-v")
    assert r.exit_code == 0, r.stderr
    run("jobs", "reminders", "--now", at(when))          # every reminder is sent once
    return r


def kinds(db_url, kind):
    return [(n["login"], n["message"]) for n in notifications(db_url, kind)]


def _update(db_url, sql, *params):
    from escalate_cli.db import make_database
    db = make_database(db_url)
    db.connect()
    if db.param != "?":
        sql = sql.replace("?", db.param)
    db.execute_sql(sql, params)
    db.close()


def test_tasks_due_soon_and_overdue_each_once(run, demo, db_url):
    assert run("claim", DEMO, user="sarah.martinez", now=at("2024-11-29 08:02")).exit_code == 0
    demo_id = esc_id(db_url, DEMO)
    insert(db_url, "task", escalation_id=demo_id, title="Call Jane back",
           assignee_user_id=user_id(db_url, "sarah.martinez"), due_at=utc("2024-11-30 09:00"),
           priority="high", status="open", created_at=utc("2024-11-29 08:05"))
    team = query(db_url, 'SELECT "id" FROM "team" WHERE "key" = ?', "finance")[0]["id"]
    insert(db_url, "task", escalation_id=demo_id, title="Issue corrected invoice",
           assignee_team_id=team, due_at=utc("2024-11-29 12:00"), priority="high",
           status="open", created_at=utc("2024-11-29 08:10"))
    r = remind(run, "2024-11-29 10:00")
    assert "2 due-soon and 0 overdue task reminder(s)" in r.stderr
    assert sorted(kinds(db_url, "reminder.task_due_soon")) == [
        ("maria.lopez", "Task due soon: Issue corrected invoice (due Nov 29, 2024 12:00 PM, "
                        "ESC-2024-11-28-001)"),
        ("sarah.martinez", "Task due soon: Call Jane back (due Nov 30, 2024 9:00 AM, "
                           "ESC-2024-11-28-001)")]
    r = remind(run, "2024-11-29 12:05")
    assert "0 due-soon and 2 overdue task reminder(s)" in r.stderr     # Finance and the owner
    overdue = sorted(kinds(db_url, "reminder.task_overdue"))
    assert [login for login, _ in overdue] == ["maria.lopez", "sarah.martinez"]
    mails = outbox(db_url, "task-reminder")
    to = sorted((m["to"][0], m["ctx"]["overdue"]) for m in mails)
    assert to == [("finance@intime.com", False), ("finance@intime.com", True),
                  ("sarah.martinez@intime.com", False), ("sarah.martinez@intime.com", True)]
    team_mail = [m for m in mails if m["to"] == ["finance@intime.com"] and m["ctx"]["overdue"]][0]
    parts = render("task-reminder", team_mail["ctx"])
    assert parts["subject"].strip() == "Task overdue: Issue corrected invoice (ESC-2024-11-28-001)"
    assert "Finance Team" in parts["txt"] and "overdue by 5 minutes" in parts["txt"]
    remind(run, "2024-11-29 15:00")
    assert len(kinds(db_url, "reminder.task_overdue")) == 2


def test_idle_escalation_follow_up_once(run, demo, db_url):
    assert run("claim", DEMO, user="sarah.martinez", now=at("2024-11-29 08:02")).exit_code == 0
    r = remind(run, "2024-11-30 09:00")
    assert "0 follow-up(s)" in r.stderr
    r = remind(run, "2024-12-01 08:05")
    assert "1 follow-up(s)" in r.stderr
    remind(run, "2024-12-02 09:00")
    assert kinds(db_url, "reminder.follow_up") == [(
        "sarah.martinez", "Follow up: no action on ESC-2024-11-28-001 for 2 days 3 minutes "
                          "(Unauthorized Rate Increase)")]
    (mail,) = outbox(db_url, "follow-up-reminder")
    assert mail["not_before"] is None                     # critical: not held for Monday
    render("follow-up-reminder", mail["ctx"])
    assert run("note", DEMO, "Called Jane; waiting for Finance", user="sarah.martinez",
               now=at("2024-12-02 10:00")).exit_code == 0
    remind(run, "2024-12-04 10:05")
    assert len(kinds(db_url, "reminder.follow_up")) == 2
