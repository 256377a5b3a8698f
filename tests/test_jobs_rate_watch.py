"""Rate watch: the use case's November invoice becomes exactly one system escalation."""
import json

import pytest

from jobs_helpers import at, events, notifications, query

CONTRACT = "C-2024-08-15-GOOG-001"
HEADER = "number,contract,period,hours,bill_rate,pay_rate\n"


def import_invoices(run, tmp_path, *lines, name="invoices.csv"):
    path = tmp_path / name
    path.write_text(HEADER + "".join(line + "\n" for line in lines))
    r = run("import", "invoices", str(path), user="admin", now=at("2024-12-01 22:00"))
    assert r.exit_code == 0, r.stderr
    return path


def watch(run, when="2024-12-02 02:30"):
    r = run("jobs", "rate-watch", "--now", at(when), "-v")
    assert r.exit_code == 0, r.stderr
    return r


@pytest.fixture
def before_the_incident(demo, db_url):
    """The use case's records as they were before John raised the incident: the contract,
    but no November invoice yet and no escalation that claims it."""
    from escalate_cli.db import make_database
    db = make_database(db_url)
    db.connect()
    with db.atomic():
        db.execute_sql('UPDATE "escalation" SET "source_key" = NULL')
        db.execute_sql('DELETE FROM "invoice"')
    db.close()
    return demo


def test_the_demo_incident_is_not_raised_twice(run, demo):
    """In the demo John already raised the November invoice: the watch finds it, adds nothing."""
    r = watch(run)
    assert "1 anomaly(ies), 0 new escalation(s)" in r.stderr
    assert system_escalations(run) == []


def system_escalations(run):
    rows = json.loads(run("list", "--status", "all", "--format", "json", user="admin").stdout)
    return [r for r in rows if r["reporter"] == "system"]


def test_the_use_case_invoice_raises_one_escalation_with_the_numbers(run, before_the_incident, tmp_path, db_url):
    import_invoices(run, tmp_path, f"INV-2024-11-GOOG-001,{CONTRACT},2024-11,160,120.00,90.00")
    r = watch(run)
    assert "1 anomaly(ies), 1 new escalation(s): ESC-2024-12-02-001" in r.stderr
    found = system_escalations(run)
    assert len(found) == 1
    code = found[0]["code"]
    d = json.loads(run("show", code, "--format", "json", user="sarah.martinez").stdout)
    assert d["title"] == f"Unauthorized rate increase on {CONTRACT} (Sarah Chen)"
    assert d["category"] == "Client Complaint" and d["subcategory"] == "Billing Dispute"
    assert d["priority"] == "critical"             # $1,600 on a strategic $2M account
    assert d["account"] == "Google Inc." and d["contract"] == CONTRACT
    assert d["pod"] == "Recruiting Pod A" and d["status"] == "pending"
    assert "$120/hr billed vs $110/hr agreed, 160 hours, $1,600 overbilled" in d["description"]
    assert d["description"].startswith(
        f"Invoice INV-2024-11-GOOG-001 (2024-11) for Sarah Chen on contract {CONTRACT} "
        f"(Google Inc.): $120/hr billed vs $110/hr agreed, 160 hours, $1,600 overbilled. "
        f"The contract's agreed rate is $110/hr and no approved rate change is on file.")
    row = query(db_url, 'SELECT "source", "source_key" FROM "escalation" WHERE "code" = ?', code)[0]
    assert row == {"source": "system",
                   "source_key": "rate-watch:bill-rate:INV-2024-11-GOOG-001:120.00"}
    inbox = [n["message"] for n in notifications(db_url) if n["login"] == "sarah.martinez"]
    assert "New escalation from System: Client complaint" in inbox
    created = [e for e in events(db_url, "escalation.created") if e["payload"]["escalation_id"] == code]
    assert created[0]["payload"]["reporter_id"] == "system"
    # a second run (and a re-import of the same file) changes nothing
    again = watch(run, "2024-12-03 02:30")
    assert "0 new escalation(s)" in again.stderr
    import_invoices(run, tmp_path, f"INV-2024-11-GOOG-001,{CONTRACT},2024-11,160,120.00,90.00")
    watch(run, "2024-12-04 02:30")
    assert len(system_escalations(run)) == 1
    # nobody can act as the system user
    r = run("list", user="system")
    assert r.exit_code == 3 and "Unknown user 'system'" in r.stderr


def test_an_approved_rate_change_is_not_an_anomaly(run, before_the_incident, tmp_path):
    r = run("contract", "approve-rate", CONTRACT, "--bill-rate", "120", "--effective", "2024-11-01",
            user="sarah.martinez", now=at("2024-10-28 10:00"))
    assert r.exit_code == 0, r.stderr
    assert r.stdout.strip() == (f"{CONTRACT}: bill rate $120/hr approved from Nov 01, 2024 "
                                f"(agreed $110/hr)")
    import_invoices(run, tmp_path, f"INV-11,{CONTRACT},2024-11,160,120,90",
                    f"INV-10,{CONTRACT},2024-10,168,120,90")
    r = watch(run)
    assert "1 new escalation(s)" in r.stderr         # October was billed before the approval
    (found,) = system_escalations(run)
    d = json.loads(run("show", found["code"], "--format", "json", user="admin").stdout)
    assert "Invoice INV-10 (2024-10)" in d["description"]
    assert "$120/hr billed vs $110/hr agreed, 168 hours, $1,680 overbilled" in d["description"]
    listed = json.loads(run("contract", "rates", CONTRACT, "--format", "json", user="admin").stdout)
    assert [(x["effective"], x["bill_rate"]) for x in listed] == [("2024-08-15", "110.00"),
                                                                  ("2024-11-01", "120.00")]


def test_approve_rate_refusals(run, before_the_incident, snap):
    before = snap()
    r = run("contract", "approve-rate", CONTRACT, "--bill-rate", "120", "--effective", "2024-11-01",
            user="john.smith")
    assert r.exit_code == 1
    assert r.stderr.strip() == ("Error: Only managers or the COO or the CEO or admins or Finance "
                                "can approve rate changes")
    r = run("contract", "approve-rate", "C-NOPE", "--bill-rate", "120", "--effective", "2024-11-01",
            user="admin")
    assert r.exit_code == 3 and r.stderr.strip() == "Error: Unknown contract 'C-NOPE'"
    r = run("contract", "approve-rate", CONTRACT, "--bill-rate", "lots", "--effective", "2024-11-01",
            user="admin")
    assert r.exit_code == 1 and "is not an amount" in r.stderr
    r = run("contract", "approve-rate", CONTRACT, "--bill-rate", "120", "--effective", "soon",
            user="admin")
    assert r.exit_code == 2
    r = run("contract", "approve-rate", CONTRACT, "--bill-rate", "120.005", "--effective",
            "2024-11-01", user="admin")
    assert (r.exit_code, r.stderr.strip()) == (
        1, "Error: --bill-rate: '120.005' has more than two decimals")
    assert snap() == before
    args = ("contract", "approve-rate", CONTRACT, "--bill-rate", "120", "--effective", "2024-11-01")
    assert run(*args, user="admin").exit_code == 0
    once = snap()
    r = run(*args, user="admin")
    assert (r.exit_code, r.stderr.strip()) == (
        4, f"Error: {CONTRACT}: $120.00/hr from 2024-11-01 was approved already")
    assert snap() == once


def test_negative_margin_and_underbilling(run, before_the_incident, tmp_path):
    import_invoices(run, tmp_path, f"INV-12,{CONTRACT},2024-12,160,85,90")
    r = watch(run, "2024-12-31 02:30")
    assert "2 anomaly(ies), 2 new escalation(s)" in r.stderr
    found = {e["subcategory"]: e for e in system_escalations(run)}
    margin = json.loads(run("show", found["Margin"]["code"], "--format", "json", user="admin").stdout)
    assert margin["category"] == "Rate Exception"
    assert margin["title"] == f"Negative margin on {CONTRACT} (Sarah Chen)"
    assert "$85/hr billed vs $90/hr paid, 160 hours, $800 negative margin" in margin["description"]
    assert margin["priority"] == "high"             # $800 on a strategic account
    under = json.loads(run("show", found["Bill Rate"]["code"], "--format", "json", user="admin").stdout)
    assert under["category"] == "Rate Exception"
    assert "$85/hr billed vs $110/hr agreed, 160 hours, $4,000 underbilled" in under["description"]
    assert under["priority"] == "critical"
    watch(run, "2025-01-01 02:30")
    assert len(system_escalations(run)) == 2


def test_priority_rule():
    from decimal import Decimal as D
    from types import SimpleNamespace as NS
    from jobs.ratewatch import priority_for
    small = NS(strategic=False, annual_revenue=D("50000"))
    big = NS(strategic=False, annual_revenue=D("1500000"))
    assert priority_for(D("50"), small) == "low"
    assert priority_for(D("100"), small) == "medium"
    assert priority_for(D("1000"), small) == "high"
    assert priority_for(D("5000"), small) == "critical"
    assert priority_for(D("50"), big) == "high"
    assert priority_for(D("1000"), big) == "critical"
