"""The sweep's warnings and breaches arrive for real: SMTP (parsed with `email`) and SMS."""
import json

CODE = "ESC-2024-11-28-001"


def _settle(run):
    """The demo escalation claimed and resolved, so only the new ones below speak."""
    assert run("claim", CODE, user="sarah.martinez", now="2024-11-29T08:02:00-05:00").exit_code == 0
    notes = "Corrected invoice issued, client accepted the apology; relationship intact."
    assert run("resolve", CODE, "--notes", notes, "--notify", "none", user="sarah.martinez",
               now="2024-11-29T09:00:00-05:00").exit_code == 0
    assert run("jobs", "sla-sweep", "--backfill", now="2024-11-29T09:01:00-05:00").exit_code == 0
    assert run("jobs", "deliver", now="2024-11-29T09:01:00-05:00").exit_code in (0, 1)


def test_tc006_high_breach_badge_and_coo_email(run, demo, smtp):
    _settle(run)
    before = len(smtp.messages)
    r = run("create", "--title", "Candidate threatens to quit over pay", "--category",
            "Candidate Issue", "--subcategory", "Compensation", "--priority", "high",
            "--description", "Wants a raise today.", user="john.smith",
            now="2024-12-02T08:00:00-05:00")
    code = r.stdout.strip()
    assert run("claim", code, user="sarah.martinez", now="2024-12-02T08:30:00-05:00").exit_code == 0
    # high: 48 business hours -> due Fri 2024-12-06 16:00 (Mon 8:00 + 4 x 10h + 8h); the
    # warning at 75% (36h) is Thu 14:00. The sweep runs every 5 minutes, twice each time.
    late = "2024-12-06T16:05:00-05:00"
    for now in ("2024-12-05T14:05:00-05:00", late):
        for _ in range(2):                               # twice: told once
            assert run("jobs", "sla-sweep", now=now).exit_code == 0
            assert run("jobs", "deliver", now=now).exit_code == 0
    new = smtp.messages[before:]
    breach = [m for m in new if code in m.subject and "olivia.park@intime.com" in m.rcpt_tos]
    assert len(breach) == 1, [(m.subject, m.rcpt_tos) for m in new]
    assert not [m for m in new if "david.kim@intime.com" in m.rcpt_tos and code in m.subject]
    mail = breach[0]
    assert mail.part("text/plain") is not None and mail.part("text/html") is not None
    assert mail.message["Message-ID"] and code.lower() in (mail.message["References"] or "").lower()
    owner_mails = [m for m in new if code in m.subject and "sarah.martinez@intime.com" in m.rcpt_tos]
    assert owner_mails, "the owner is told of the breach too"
    shown = run("show", code, user="sarah.martinez", now=late).stdout
    assert "⚠️ SLA breach: This escalation is overdue" in shown
    listed = json.loads(run("list", "--breached", "--format", "json", user="olivia.park", now=late).stdout)
    assert code in [e["code"] for e in listed]


def test_critical_breach_reaches_the_ceo_by_email_and_sms(run, demo, smtp, sms_gateway):
    _settle(run)
    before, sms_before = len(smtp.messages), len(sms_gateway.received)
    code = run("create", "--title", "Client threatens to terminate all contracts", "--category",
               "Client Complaint", "--priority", "critical", "--account", "Google Inc.",
               "--description", "Escalating now.", user="john.smith",
               now="2024-12-02T09:00:00-05:00").stdout.strip()
    late = "2024-12-02T10:30:00-05:00"                   # unclaimed past its 1-hour response
    for _ in range(2):
        assert run("jobs", "sla-sweep", now=late).exit_code == 0
        assert run("jobs", "deliver", now=late).exit_code == 0
    new = smtp.messages[before:]
    ceo = [m for m in new if code in m.subject and "david.kim@intime.com" in m.rcpt_tos]
    assert len(ceo) == 1, [(m.subject, m.rcpt_tos) for m in new]
    texts = [s["message"] for s in sms_gateway.received[sms_before:]]
    assert any("URGENT: Client escalation from John Smith. Login to handle." in t for t in texts), texts
    assert any(code in t for t in texts), texts
