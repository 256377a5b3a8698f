"""Recommended actions (step 3): the handling guide, what resolved similar escalations, and
the "escalate further if" thresholds, on both stores."""
import json
import shlex

import pytest

from conftest import USE_CASE_NOW

CODE = "ESC-2024-11-28-001"
BILLING_STEPS = [
    "Review the invoice against the original contract to confirm the agreed rate",
    "Contact Finance to confirm what was billed and why",
    "Contact the client directly within 24 hours to apologize",
    "Issue a corrected invoice immediately",
    "Offer a goodwill gesture (e.g., 1 week credit on the next invoice)",
    "Schedule a process review with the IC to prevent recurrence",
]
RESOLUTION = """Issue: the October invoice billed 40 hours the contractor never worked.

Actions Taken:
1. ✅ Had Finance reissue the October invoice at the contract rate (email 11:00)
2. ✅ Credited $300 goodwill on the next invoice
3. ✅ Walked the IC through the timesheet check before invoicing

Outcome: client satisfied, relationship intact."""


def csv_file(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def setup_records(run, tmp_path):
    r = run("import", "accounts", csv_file(tmp_path, "a.csv", (
        "name,strategic,annual_revenue\nAcme Corp,false,500000\nGlobex,false,50000\n"
        "Initech,false,2000000\nTiny LLC,false,20000\n")), user="admin")
    assert r.exit_code == 0, r.stderr
    r = run("import", "contracts", csv_file(tmp_path, "c.csv", (
        "code,account,candidate,title,bill_rate,pay_rate,start_date\n"
        "C-ACME-1,Acme Corp,Ann Lee,Developer,110,90,2024-01-15\n"
        "C-ACME-2,Acme Corp,Bo Chan,Analyst,80,85,2024-03-01\n"
        "C-ACME-3,Acme Corp,Cy Diaz,Analyst,85,85,2024-03-01\n"
        "C-GLOBEX-1,Globex,Di Egan,Designer,75,50,2024-02-01\n")), user="admin")
    assert r.exit_code == 0, r.stderr


def create(run, title, category, subcategory, description, priority="high", now=USE_CASE_NOW,
           user="john.smith", **extra):
    args = ["create", "--title", title, "--category", category, "--priority", priority,
            "--description", description]
    if subcategory:
        args += ["--subcategory", subcategory]
    for key, value in extra.items():
        args += [f"--{key}", value]
    r = run(*args, user=user, now=now)
    assert r.exit_code == 0, r.stderr
    return r.stdout.strip()


def recommendations(run, code, user="sarah.martinez", now=USE_CASE_NOW):
    r = run("show", code, "--format", "json", user=user, now=now)
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)["recommended_actions"]


def escalations_suggested(run, code, **kw):
    return [r for r in recommendations(run, code, **kw) if r["kind"] == "escalate"]


def plant_resolved(run, title, category, subcategory, description, notes, day, user="john.smith",
                   manager="sarah.martinez", **extra):
    code = create(run, title, category, subcategory, description, now=f"{day}T10:00:00-04:00",
                  user=user, **extra)
    assert run("claim", code, user=manager, now=f"{day}T10:30:00-04:00").exit_code == 0
    r = run("resolve", code, "--notes", notes, user=manager, now=f"{day}T15:00:00-04:00")
    assert r.exit_code == 0, r.stderr
    return code


# -- the guide and similar escalations ------------------------------------------------------

def test_billing_dispute_gets_guide_steps_and_what_resolved_a_similar_one(run, demo, tmp_path):
    setup_records(run, tmp_path)
    similar = plant_resolved(
        run, "Overbilled hours on October invoice", "Client Complaint", "Billing Dispute",
        "Client says the October invoice billed 40 extra hours at a bill rate above the "
        "contract. Client wants a corrected invoice.", RESOLUTION, "2024-10-02",
        account="Acme Corp")
    unrelated = plant_resolved(
        run, "Candidate ghosted before the first day", "Candidate Issue", "Ghosting",
        "Candidate stopped answering calls a week before the start date.",
        "Found a backup candidate within two days; the client accepted the new start date "
        "without complaint.", "2024-10-03", account="Globex")
    recs = recommendations(run, CODE)
    assert [r["text"] for r in recs if r["kind"] == "guide"] == BILLING_STEPS
    assert {r["source"] for r in recs if r["kind"] == "guide"} == {"Client Complaint - Billing"}
    cited = [r for r in recs if r["kind"] == "similar"]
    assert [(r["source"], r["text"]) for r in cited] == [
        (similar, "Had Finance reissue the October invoice at the contract rate"),
        (similar, "Walked the IC through the timesheet check before invoicing"),
    ]   # the goodwill credit is the guide's own step 5, so it is not repeated
    assert unrelated not in json.dumps(recs)
    # the use case's refund is $1,600, under the $5K threshold: no escalation suggested
    assert not [r for r in recs if r["kind"] == "escalate"]

    screen = run("show", CODE, user="sarah.martinez", now=USE_CASE_NOW).stdout
    panel = screen[screen.index("RECOMMENDED ACTIONS"):]
    assert "Based on the Client Complaint - Billing guide and similar" in panel
    assert f"resolved escalations ({similar}):" in panel
    assert "| 1. Review the invoice against the original contract to confirm   |" in panel
    assert "| 7. Had Finance reissue the October invoice at the contract rate  |" in panel
    assert f"(what resolved {similar})" in panel


def test_similar_escalations_respect_who_may_see_them(run, demo, tmp_path):
    setup_records(run, tmp_path)
    assert run("pod", "add", "Recruiting Pod B", "--manager", "admin", user="admin").exit_code == 0
    r = run("user", "add", "tom.ode", "--name", "Tom Ode", "--email", "tom.ode@intime.com",
            "--role", "ic", "--pod", "Recruiting Pod B", user="admin")
    assert r.exit_code == 0, r.stderr
    other_pod = plant_resolved(
        run, "Overbilled hours on October invoice", "Client Complaint", "Billing Dispute",
        "Client says the October invoice billed extra hours at a bill rate above the contract.",
        RESOLUTION, "2024-10-02", user="tom.ode", manager="olivia.park", account="Acme Corp")
    assert other_pod not in json.dumps(recommendations(run, CODE))          # Sarah: pod A
    assert other_pod in json.dumps(recommendations(run, CODE, user="olivia.park"))   # the COO


def test_no_guide_entry_for_a_category_still_gives_a_panel(run, demo, config_file):
    config_file.write_text(config_file.read_text() + "[guide.billing]\nenabled = false\n"
                           "[guide.client-complaint]\nenabled = false\n"
                           "[guide.performance]\nenabled = false\n")
    assert recommendations(run, CODE) == []
    screen = run("show", CODE, user="sarah.martinez", now=USE_CASE_NOW).stdout
    assert "No guide entry or similar resolved escalation yet." in screen


# -- "escalate further if" ----------------------------------------------------------------

def fired(run, code):
    found = escalations_suggested(run, code)
    assert len(found) <= 1
    return found[0] if found else None


def test_refund_over_5k_fires_and_5k_or_less_does_not(run, demo, tmp_path):
    setup_records(run, tmp_path)
    big = create(run, "Refund demanded", "Client Complaint", "Billing Dispute",
                 "Client demands a refund of $6,000 for hours billed twice in October.",
                 account="Acme Corp")
    at_limit = create(run, "Refund demanded", "Client Complaint", "Billing Dispute",
                      "Client demands a refund of $5,000 for hours billed twice in October.",
                      account="Acme Corp")
    small = create(run, "Refund demanded", "Client Complaint", "Billing Dispute",
                   "Client wants $4,800 refunded. Our rate is $120/hr.", account="Acme Corp")
    negated = create(run, "No refund asked", "Client Complaint", "Billing Dispute",
                     "The client is not asking for a refund of the $9,000 invoice, only a "
                     "corrected copy.", account="Acme Corp")
    rec = fired(run, big)
    assert rec["text"] == ("Escalate further: Client demands refund > $5K "
                           "(refund of $6,000 demanded, over $5,000)")
    assert rec["command"] == (f"escalate escalate {big} --to coo --note 'Client demands refund "
                              f"> $5K: refund of $6,000 demanded, over $5,000'")
    for code in (at_limit, small, negated):
        assert fired(run, code) is None, code
    told_ic = escalations_suggested(run, big, user="john.smith")    # an IC cannot escalate
    assert told_ic == [{"kind": "escalate", "source": "Client Complaint - Billing",
                        "reason": "refund of $6,000 demanded, over $5,000",
                        "text": "Ask your manager to escalate further to the COO: Client "
                                "demands refund > $5K (refund of $6,000 demanded, over $5,000)"}]
    # the suggested command is the real one
    assert run("claim", big, user="sarah.martinez").exit_code == 0
    r = run(*shlex.split(rec["command"])[1:], user="sarah.martinez")
    assert r.exit_code == 0, r.stderr
    shown = json.loads(run("show", big, "--format", "json", user="olivia.park").stdout)
    assert shown["status"] == "escalated" and shown["owner"] == "olivia.park"
    assert fired(run, big) is None            # escalated: nothing more to suggest


def test_refund_over_5k_from_invoices_above_the_contract_rate(run, demo, tmp_path):
    setup_records(run, tmp_path)
    r = run("import", "invoices", csv_file(tmp_path, "i.csv", (
        "number,contract,period,hours,bill_rate,pay_rate\n"
        "INV-1,C-ACME-1,2024-10,160,150,90\n"          # 160 x $40 = $6,400 above $110
        "INV-2,C-GLOBEX-1,2024-10,120,115,50\n")),     # 120 x $40 = $4,800 above $75
        user="admin")
    assert r.exit_code == 0, r.stderr
    over = create(run, "Invoice rate wrong", "Client Complaint", "Billing Dispute",
                  "Client disputes the October invoice.", contract="C-ACME-1")
    under = create(run, "Invoice rate wrong", "Client Complaint", "Billing Dispute",
                   "Client disputes the October invoice.", contract="C-GLOBEX-1")
    assert fired(run, over)["reason"] == ("$6,400 billed above the contract rate of $110/hr, "
                                          "over $5,000")
    assert fired(run, under) is None


def test_candidate_demanding_over_20_percent(run, demo, tmp_path):
    setup_records(run, tmp_path)
    cases = {
        "Candidate is asking for a 25% raise to stay on the project.": True,
        "Candidate is asking for a 20% raise to stay on the project.": False,
        "Candidate asks for a raise, up 15 percent; the margin would drop to 40%.": False,
        "Candidate demands $110/hr or will leave at the end of the month.": True,   # +22.2% of $90
        "Candidate demands $108/hr or will leave at the end of the month.": False,  # +20.0%
    }
    codes = {text: create(run, "Pay raise request", "Candidate Issue", "Compensation", text,
                          contract="C-ACME-1") for text in cases}
    for text, fires in cases.items():
        rec = fired(run, codes[text])
        assert (rec is not None) == fires, text
    assert fired(run, codes["Candidate demands $110/hr or will leave at the end of the month."])[
        "reason"] == "$110/hr asked against $90/hr: 22.2% increase, over 20%"
    assert fired(run, codes["Candidate is asking for a 25% raise to stay on the project."])[
        "reason"] == "25% increase asked, over 20%"


def test_negative_margin(run, demo, tmp_path):
    setup_records(run, tmp_path)
    negative = create(run, "Rate exception", "Rate Exception", "Margin",
                      "Approve the renewal rate?", contract="C-ACME-2")      # bills 80, pays 85
    zero = create(run, "Rate exception", "Rate Exception", "Margin",
                  "Approve the renewal rate?", contract="C-ACME-3")          # bills 85, pays 85
    by_text = create(run, "Rate exception", "Rate Exception", "Bill Rate",
                     "New submission: bill rate $95/hr, pay rate $100/hr for a senior role.")
    fine = create(run, "Rate exception", "Rate Exception", "Bill Rate",
                  "New submission: bill rate $100/hr, pay rate $95/hr for a senior role.")
    assert fired(run, negative)["reason"] == ("contract C-ACME-2 bills $80/hr and pays $85/hr: "
                                              "margin -$5/hr")
    assert fired(run, by_text)["reason"] == "bill rate $95/hr below pay rate $100/hr"
    assert fired(run, zero) is None and fired(run, fine) is None


def test_legal_action_threatened(run, demo):
    threat = create(run, "Notice period dispute", "Contract Dispute", "Terms",
                    "Client's counsel says they will take legal action if we enforce the "
                    "30-day notice period.")
    lawsuit = create(run, "Notice period dispute", "Contract Dispute", "Terms",
                     "Jane said: we are talking to our lawyers.")
    calm = create(run, "Notice period dispute", "Contract Dispute", "Terms",
                  "Client said they are not considering legal action; they want our Legal "
                  "team to review the terms with them.")
    rec = fired(run, threat)
    assert rec["text"] == ("Escalate further: Client threatens legal action (\"Client's counsel "
                           "says they will take legal action if we enforce the 30-day notice "
                           "period.\")")
    assert rec["command"].startswith(f"escalate escalate {threat} --to coo --note ")
    assert fired(run, lawsuit) is not None
    assert fired(run, calm) is None


def test_legal_threat_in_an_internal_note_counts_only_for_those_who_read_notes(run, demo):
    code = create(run, "Notice period dispute", "Contract Dispute", "Terms",
                  "Client disputes the notice period.")
    assert fired(run, code) is None
    r = run("note", code, "On the phone the client threatened a lawsuit.", user="sarah.martinez")
    assert r.exit_code == 0, r.stderr
    assert fired(run, code) is not None
    assert "lawsuit" not in run("show", code, "--format", "json", user="john.smith").stdout


def test_the_suggested_escalation_note_never_quotes_an_internal_note(run, demo):
    """The note of the suggested command lands on the timeline, which the reporter reads."""
    import shlex
    code = create(run, "Notice period dispute", "Contract Dispute", "Terms",
                  "Client disputes the notice period.")
    r = run("note", code, "Their counsel said they will sue us over kiwibird.",
            user="sarah.martinez")
    assert r.exit_code == 0, r.stderr
    rec = fired(run, code)
    assert "kiwibird" in rec["text"]            # the manager may read the note
    assert "kiwibird" not in rec["command"]
    assert rec["command"].endswith("'Client threatens legal action (see the internal notes)'")
    r = run(*shlex.split(rec["command"])[1:], user="sarah.martinez")
    assert r.exit_code == 0, r.stderr
    for args in (("timeline", code), ("show", code, "--format", "json"), ("events",)):
        out = run(*args, user="john.smith").stdout
        assert "Client threatens legal action" in out or args == ("events",)
        assert "kiwibird" not in out


def test_the_suggested_escalation_note_quotes_what_the_reporter_wrote(run, demo):
    code = create(run, "Notice period dispute", "Contract Dispute", "Terms",
                  "Client's counsel says they will take legal action.")
    r = run("note", code, "Their counsel said they will sue us over kiwibird.",
            user="sarah.martinez")
    assert r.exit_code == 0, r.stderr
    rec = fired(run, code)
    assert "kiwibird" not in rec["command"]
    assert "will take legal action" in rec["command"]


def test_process_failure_affecting_several_clients(run, demo, tmp_path):
    setup_records(run, tmp_path)
    first = create(run, "Invoice template bug", "System/Process Failure", "Template",
                   "The new invoice template doubled the overtime line.", account="Acme Corp",
                   now="2024-11-20T10:00:00-05:00")
    same_client = create(run, "Invoice template bug again", "System/Process Failure", "Template",
                         "Again the overtime line doubled.", account="Acme Corp",
                         now="2024-11-21T10:00:00-05:00")
    assert fired(run, first) is None and fired(run, same_client) is None      # one client
    old_other = create(run, "Invoice template bug", "System/Process Failure", "Template",
                       "Overtime doubled.", account="Initech", now="2024-10-01T10:00:00-04:00")
    assert fired(run, first) is None           # Initech's was 7 weeks earlier: not within 14 days
    assert fired(run, old_other) is None
    second = create(run, "Invoice template bug", "System/Process Failure", "Template",
                    "Overtime doubled on Globex's invoice too.", account="Globex",
                    now="2024-11-22T10:00:00-05:00")
    rec = fired(run, second)
    assert rec["reason"] == "System/Process Failure escalations on 2 accounts within 14 days"
    assert fired(run, first) is not None
    told = create(run, "Portal outage", "System/Process Failure", "Tooling",
                  "The timesheet portal is down for 3 clients since this morning.")
    one = create(run, "Portal outage", "System/Process Failure", "Tooling",
                 "The timesheet portal is down for one client since this morning.")
    assert fired(run, told)["reason"] == ('"The timesheet portal is down for 3 clients since '
                                         'this morning."')
    assert fired(run, one) is None


def test_client_terminating_and_candidate_no_show(run, demo):
    terminate = create(run, "Unhappy with developer", "Client Complaint", "Performance",
                       "Client wants to terminate the contract after two missed deadlines.")
    feedback = create(run, "Unhappy with developer", "Client Complaint", "Performance",
                      "Client gave feedback about two missed deadlines.")
    no_show = create(run, "Candidate vanished", "Candidate Issue", "Ghosting",
                     "Candidate already started on Monday and did not show up on Tuesday.")
    ghost = create(run, "Candidate vanished", "Candidate Issue", "Ghosting",
                   "Candidate stopped replying before the offer was signed.")
    assert fired(run, terminate) is not None and fired(run, feedback) is None
    assert fired(run, no_show) is not None and fired(run, ghost) is None


# -- the guide is data ----------------------------------------------------------------------

def test_guide_overridden_from_the_settings_file(run, demo, config_file):
    config_file.write_text(config_file.read_text() + """
[guide.billing]
actions = ["Call Finance before anything else", "Apologise to the client"]
escalate_if = [{check = "refund_over", amount = 1000, to = "ceo", label = "Refund over $1K"}]
""")
    code = create(run, "Refund", "Client Complaint", "Billing Dispute",
                  "Client wants a refund of $1,600 for the overbilled hours.")
    recs = recommendations(run, code)
    assert [r["text"] for r in recs if r["kind"] == "guide"] == [
        "Call Finance before anything else", "Apologise to the client"]
    assert recs[0]["command"] == (f"escalate escalate {code} --to ceo --note 'Refund over $1K: "
                                  f"refund of $1,600 demanded, over $1,000'")
    listing = run("guide", "--category", "client complaint", user="sarah.martinez")
    assert listing.exit_code == 0, listing.stderr
    assert "  1. Call Finance before anything else" in listing.stdout
    assert ("  escalate further to CEO if: Refund over $1K (refund_over: amount=1000)"
            in listing.stdout)


def test_guide_file_replaces_the_shipped_guide(run, demo, config_file, tmp_path):
    guide = tmp_path / "guide.toml"
    guide.write_text('[ours]\nname = "Billing, our way"\ncategory = "Client Complaint"\n'
                     'actions = ["Open a Finance ticket"]\n')
    config_file.write_text(config_file.read_text() + f'[insight]\nguide_file = "{guide}"\n')
    recs = recommendations(run, CODE)
    assert [(r["kind"], r["text"], r["source"]) for r in recs] == [
        ("guide", "Open a Finance ticket", "Billing, our way")]
    rows = json.loads(run("guide", "--format", "json", user="sarah.martinez").stdout)
    assert [r["key"] for r in rows] == ["ours"]


def test_a_bad_guide_is_a_clear_error(run, demo, config_file):
    config_file.write_text(config_file.read_text() + """
[guide.billing]
escalate_if = [{check = "refund_above", amount = 1000}]
""")
    r = run("show", CODE, user="sarah.martinez")
    assert r.exit_code == 1
    assert r.stderr == ("Error: handling guide entry 'billing': unknown check 'refund_above'; "
                        "use one of refund_over, percent_over, negative_margin, phrases, "
                        "clients_affected\n")


# -- impact ---------------------------------------------------------------------------------

@pytest.mark.parametrize("account, impact, reason", [
    ("Google Inc.", "high", "May lose account with $2M annual revenue"),   # strategic
    ("Initech", "high", "May lose account with $2M annual revenue"),       # revenue >= $1M
    ("Globex", "high", "May lose account with $50K annual revenue"),       # $156K of contracts
    ("Acme Corp", "high", "May lose account with $500K annual revenue"),   # 3 contracts at risk
    ("Tiny LLC", "low", "Limited revenue at stake"),
    (None, "low", "No account affected"),
])
def test_impact_rule(run, demo, tmp_path, account, impact, reason):
    setup_records(run, tmp_path)
    extra = {"account": account} if account else {}
    code = create(run, "Impact check", "Client Complaint", "Other", "Checking the impact.",
                  **extra)
    shown = json.loads(run("show", code, "--format", "json", user="sarah.martinez").stdout)
    assert (shown["impact"], shown["impact_reason"]) == (impact, reason)


def test_impact_medium(run, demo, tmp_path):
    r = run("import", "accounts", csv_file(tmp_path, "a.csv",
                                           "name,strategic,annual_revenue\nMid Co,no,300000\n"),
            user="admin")
    assert r.exit_code == 0, r.stderr
    r = run("import", "contracts", csv_file(tmp_path, "c.csv", (
        "code,account,candidate,title,bill_rate,pay_rate,start_date\n"
        "C-MID-1,Mid Co,Ed Fox,Tester,40,30,2024-01-15\n")), user="admin")   # $83,200 a year
    code = create(run, "Impact check", "Client Complaint", "Other", "Checking the impact.",
                  account="Mid Co")
    shown = json.loads(run("show", code, "--format", "json", user="sarah.martinez").stdout)
    assert (shown["impact"], shown["impact_reason"]) == ("medium",
                                                         "Account with $300K annual revenue")


def test_actions_typed_on_one_line_are_read_as_a_list():
    from escalate_cli.insight import resolution_actions
    notes = ("Actions Taken: 1. Reviewed the contract and confirmed $110/hr. 2. Asked Finance "
             "to reissue the invoice. 3. Credited $500 on the December invoice. Outcome: "
             "Client accepted.")
    assert resolution_actions(notes) == ["Reviewed the contract and confirmed $110/hr",
                                         "Asked Finance to reissue the invoice",
                                         "Credited $500 on the December invoice"]
    assert resolution_actions("Steps: 1. Called the client.") != ["Called the client"]
