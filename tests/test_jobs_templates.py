"""Every message the jobs send renders (text and HTML, strict variables, HTML escaped), and
no internal note ever reaches one."""
import json

import pytest

from jobs_helpers import at, create, outbox, render

TEMPLATES = ("sla-warning", "sla-breach", "sla-catch-up", "digest", "digest-leadership",
             "task-reminder", "follow-up-reminder")
EVIL = '<script>alert("x")</script> & Co'

ESC = {"code": "ESC-2024-12-02-001", "title": EVIL, "priority": "high", "status": "PENDING",
       "account": "Google Inc.", "clock": "response", "must_be": "claimed",
       "due": "Dec 2, 2024 1:00 PM", "warn_at": "Dec 2, 2024 12:00 PM", "company": "InTime",
       "recipient": "Sarah Martinez", "url": "https://esc.intime.com/escalations/ESC-2024-12-02-001",
       "breach_message": "⚠️ SLA breach: This escalation is overdue", "message": EVIL}
ROW = {"code": "ESC-2024-12-02-001", "title": EVIL, "priority": "critical", "status": "PENDING",
       "owner": "unclaimed", "account": "Google Inc.", "age": "2h 5m", "sla": "BREACHED",
       "due": "Dec 2, 2024 10:00 AM", "url": None}
CONTEXTS = {
    "sla-warning": dict(ESC, share=75),
    "sla-breach": dict(ESC, role="coo"),
    "sla-catch-up": {"recipient": "Sarah Martinez", "company": "InTime", "breaches": 1, "more": 3,
                     "warnings": 1, "since": "Dec 2, 2024 10:00 AM", "message": EVIL,
                     "items": [dict(ESC, action="breach"), dict(ESC, action="warning", url=None)]},
    "digest": {"recipient": "Sarah Martinez", "company": "InTime", "date": "Monday, December 2, 2024",
               "since": "Dec 1, 2024 7:00 AM", "summary": "Daily digest: 1 open", "role": "MANAGER",
               "open": [ROW], "open_total": 1,
               "by_priority": [{"priority": "critical", "count": 1}, {"priority": "high", "count": 0}],
               "at_risk": [], "breached": [ROW], "resolved": [], "message": "m",
               "sla": {"total": 31, "badges": [
                   {"state": "breached", "label": "Breached", "count": 30, "percent": 97},
                   {"state": "at_risk", "label": "At risk", "count": 0, "percent": 0},
                   {"state": "on_hold", "label": "On hold", "count": 0, "percent": 0},
                   {"state": "on_track", "label": "On track", "count": 1, "percent": 3}]},
               "at_risk_total": 0, "breached_total": 30, "resolved_total": 0, "overdue_total": 1,
               "overdue_tasks": [{"title": EVIL, "due": "Nov 29", "overdue_by": "2d",
                                  "assignee": "Finance Team", "escalation": "ESC-1"}]},
    "digest-leadership": {"recipient": "Olivia Park", "company": "InTime", "role": "COO",
                          "date": "Monday, December 2, 2024", "since": "Dec 1, 2024 7:00 AM",
                          "summary": "Leadership digest", "strategic": [ROW], "breached": [ROW],
                          "escalated": [], "resolved": [ROW], "message": "m",
                          "strategic_total": 1, "breached_total": 1, "escalated_total": 0,
                          "resolved_total": 1},
    "task-reminder": {"task": EVIL, "description": None, "due": "Nov 29, 2024 12:00 PM",
                      "overdue": True, "priority": "high", "code": "ESC-1", "title": EVIL,
                      "overdue_by": "5 minutes", "company": "InTime", "url": None,
                      "recipient": "Finance Team", "message": "m"},
    "follow-up-reminder": {"code": "ESC-1", "title": EVIL, "priority": "critical",
                           "status": "IN PROGRESS", "last_action": "claimed",
                           "last_action_at": "Nov 29, 2024 8:02 AM", "idle_for": "2 days",
                           "company": "InTime", "url": None, "recipient": "Sarah Martinez",
                           "message": "m"},
}


@pytest.mark.parametrize("name", TEMPLATES)
def test_template_renders_escaped_multipart(name):
    parts = render(name, CONTEXTS[name])
    assert len(parts["subject"].strip().splitlines()) == 1
    assert parts["txt"].strip() and parts["html"].lstrip().startswith("<!DOCTYPE html>")
    assert "<script>" not in parts["html"]
    assert "&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt; &amp; Co" in parts["html"]
    assert 'name="viewport"' in parts["html"]              # readable on a phone
    if EVIL in parts["txt"]:
        assert "&lt;" not in parts["txt"]                  # plain text is not escaped
    if name in ("digest", "sla-catch-up"):                 # long lists are cut, and say so
        assert "and 29 more" in parts["txt"] + parts["html"] or "and 3 more" in parts["txt"]


def test_no_internal_note_reaches_a_job_message(run, demo, db_url, tmp_path):
    code = "ESC-2024-11-28-001"
    secret = "SECRET-ROOT-CAUSE: John used the wrong template"
    assert run("note", code, secret, user="sarah.martinez", now=at("2024-11-29 08:01")).exit_code == 0
    create(run, "Another", "high", at("2024-12-02 09:00"))
    for job, when in (("sla-sweep", "2024-11-29 08:50"), ("sla-sweep", "2024-11-29 09:05"),
                      ("sla-sweep", "2024-12-02 13:05"), ("digest", "2024-12-02 07:00"),
                      ("reminders", "2024-12-02 07:00")):
        r = run("jobs", job, "--now", at(when))
        assert r.exit_code == 0, r.stderr
    rendered = [m for m in outbox(db_url) if m["template"] in TEMPLATES]
    assert {m["template"] for m in rendered} >= {"sla-warning", "sla-breach", "digest",
                                                 "digest-leadership"}
    for m in rendered:
        assert "SECRET-ROOT-CAUSE" not in json.dumps(m["ctx"])
        for text in render(m["template"], m["ctx"]).values():
            assert "SECRET-ROOT-CAUSE" not in text
