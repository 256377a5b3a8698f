"""One rendering test per template: subject on one line, text, HTML in the phone layout,
HTML autoescaped; and every template the domain queues exists."""
import re
from pathlib import Path

import pytest

from escalate_cli import mail
from escalate_cli.config import Settings

TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
HOSTILE = "<script>alert(1)</script>"

ESC = {"code": "ESC-2024-11-28-001", "title": f"Unauthorized Rate Increase {HOSTILE}",
       "category": "Client Complaint", "subcategory": "Billing Dispute", "priority": "critical",
       "status": "pending", "account": "Google Inc.", "reporter": "John Smith",
       "owner": "Sarah Martinez", "description": f"Client called upset. {HOSTILE}",
       "company": "InTime", "url": None, "message": "New escalation from John Smith: Client complaint"}
CLIENT = {"code": "ESC-2024-11-28-001", "title": "Unauthorized Rate Increase", "company": "InTime",
          "account": "Google Inc.", "contact_name": "Jane Doe", "first_name": "Jane",
          "candidate": "Sarah Chen", "agreed_rate": 110, "billed_rate": "120", "hours": "160",
          "corrected_total": 17600, "billed_total": 19200, "credit": "500",
          "credit_month": "December", "call_time": "9:00 AM", "sender": "Sarah Martinez",
          "sender_title": "Manager - Recruiting Pod A", "text": f"Thanks {HOSTILE}"}
TASK = {"task_id": 1, "title": f"Issue corrected invoice {HOSTILE}", "description": "Details",
        "due": "Nov 29, 2024 5:00 PM EST", "priority": "high", "assignee": "Finance Team",
        "creator": "Sarah Martinez", "code": "ESC-2024-11-28-001", "escalation_title": "x",
        "account": "Google Inc.", "company": "InTime", "url": None, "message": "m",
        "text": "Corrected invoice sent to Google", "done_by": "Maria Lopez",
        "done_at": "Nov 29, 2024 4:30 PM EST"}
CALL = {"summary": "Phone call: InTime & Google Inc.", "type_label": "Phone call",
        "when": "Fri, Nov 29, 2024 9:00 AM EST", "clock": "9:00 AM", "duration": 30,
        "agenda": f"1. Apologize {HOSTILE}", "location": "Phone: +16505550101",
        "organizer": "Sarah Martinez", "organizer_email": "sarah.martinez@intime.com",
        "contact_name": "Jane Doe", "contact_phone": "+16505550101", "code": "ESC-2024-11-28-001",
        "title": "Unauthorized Rate Increase", "company": "InTime", "updated": False,
        "sequence": 0, "reason": f"Moved {HOSTILE}"}
CONTEXTS = {
    "new-escalation": dict(ESC, urgent=True, recipient="Sarah Martinez"),
    "claimed": dict(ESC, message="Sarah Martinez has taken ownership of your escalation"),
    "assigned": ESC,
    "info-requested": dict(ESC, request=f"Which invoice? {HOSTILE}", manager="Sarah Martinez"),
    "resolved": dict(ESC, resolver="Sarah Martinez", notes=f"Fixed. {HOSTILE}", resolution_time="9h 13m"),
    "resolved-by-ic": dict(ESC, resolver="John Smith", notes=f"Fixed. {HOSTILE}", resolution_time="1h 2m"),
    "escalated": dict(ESC, note=f"Client demands the CEO {HOSTILE}", manager="Sarah Martinez"),
    "client-apology": CLIENT,
    "client-followup": CLIENT,
    "task-assigned": TASK,
    "task-done": TASK,
    "call-invite": CALL,
    "call-cancel": CALL,
    "call-reminder": CALL,
    "message": {"text": f"Hi John, {HOSTILE}", "tone": "professional", "sender": "Sarah Martinez",
                "recipient": "John Smith", "code": "ESC-2024-11-28-001",
                "title": "Unauthorized Rate Increase", "company": "InTime"},
}


def names():
    return sorted(p.name[:-len(".subject.j2")] for p in TEMPLATES.glob("*.subject.j2"))


def test_every_message_has_its_three_templates_and_a_test():
    from test_jobs_templates import TEMPLATES as JOB_TEMPLATES      # the jobs' own messages
    assert set(names()) == set(CONTEXTS) | set(JOB_TEMPLATES)
    for name in names():
        for kind in ("subject", "txt", "html"):
            assert (TEMPLATES / f"{name}.{kind}.j2").exists(), (name, kind)


def test_every_template_the_domain_queues_exists():
    domain = (Path(mail.__file__).parent / "domain.py").read_text()
    comms = (Path(mail.__file__).parent / "comms.py").read_text()
    queued = set(re.findall(r'email=\("([a-z-]+)"', domain))
    queued |= set(re.findall(r'template="([a-z-]+)"', comms))
    queued |= set(re.findall(r'"(task-[a-z]+|message|call-[a-z]+)", ', comms))
    assert queued and queued <= set(names()), queued - set(names())


@pytest.mark.parametrize("name", sorted(CONTEXTS))      # the jobs' own: test_jobs_templates
def test_template_renders(name):
    r = mail.render(Settings(), name, CONTEXTS[name])
    assert r.subject and "\n" not in r.subject
    assert r.text.strip()
    assert r.html.startswith("<!DOCTYPE html>")
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in r.html
    assert HOSTILE not in r.html                         # autoescaped
    if HOSTILE in r.text:
        assert "&lt;script&gt;" in r.html
    assert "{{" not in r.text and "{%" not in r.html


def test_use_case_subject_and_apology():
    r = mail.render(Settings(), "new-escalation", CONTEXTS["new-escalation"])
    assert r.subject == "[URGENT] Escalation: Client complaint - Google Inc."
    r = mail.render(Settings(), "client-apology", CONTEXTS["client-apology"])
    assert r.subject == "Re: Invoice Issue - Sarah Chen Contract"
    assert "2. Total: $17,600 (160 hours × $110) instead of $19,200" in r.text


def test_missing_variable_is_named():
    ctx = dict(CONTEXTS["resolved"])
    del ctx["notes"]
    with pytest.raises(mail.TemplateProblem) as exc:
        mail.render(Settings(), "resolved", ctx)
    assert exc.value.message == "Template resolved needs a value for 'notes' (pass --var notes=...)"


def test_header_checks():
    for bad in ("a\r\nBcc: x@y.z", "a\nb", "a\rb", "a\x00b", "a\u2028b"):
        with pytest.raises(mail.HeaderInjection):
            mail.check_header(bad, "subject")
    assert mail.valid_address("Jane Doe <jane@google.com>")
    for bad in ("jane", "jane@", "@google.com", "jane@google.com\nBcc: x@y.z", "a b@c.d"):
        assert not mail.valid_address(bad), bad
