"""Steps 1-5 of UC-MGR-002 through the real command, on both stores."""
import functools
import json

from conftest import USE_CASE_NOW

CODE = "ESC-2024-11-28-001"


def test_demo_escalation_in_sarahs_queue(run, demo):
    r = run("list", user="sarah.martinez", now=USE_CASE_NOW)
    assert r.exit_code == 0, r.stderr
    assert CODE in r.stdout
    assert "Unauthorized Rate Increase" in r.stdout
    assert "PENDING" in r.stdout


def test_tc001_ic_escalates_manager_notified_and_queued(run, demo):
    # TC-001: an IC escalates a client complaint -> the manager is notified, it is queued
    r = run("create", "--title", "Candidate ghosted on day one", "--category", "Candidate Issue",
            "--subcategory", "Ghosting", "--priority", "high", "--account", "Google Inc.",
            "--description", "Candidate did not show up; client is asking for a backup.",
            user="john.smith", now="2024-11-29T10:00:00-05:00")
    assert r.exit_code == 0, r.stderr
    code = r.stdout.strip()
    assert code == "ESC-2024-11-29-001"
    inbox = run("inbox", "--format", "json", user="sarah.martinez", now="2024-11-29T10:01:00-05:00")
    messages = [n["message"] for n in json.loads(inbox.stdout)]
    assert "New escalation from John Smith: Candidate issue" in messages
    queue = json.loads(run("list", "--format", "json", user="sarah.martinez",
                           now="2024-11-29T10:01:00-05:00").stdout)
    assert [e["code"] for e in queue] == [CODE, code]     # critical first, then high
    high = queue[1]
    assert high["status"] == "pending" and high["owner"] is None
    assert high["reporter"] == "john.smith"
    assert high["response_due"] == "2024-11-29T14:00:00-05:00"   # 4 business hours
    assert high["age_seconds"] == 60
    # an email to the manager is waiting in the outbox for delivery
    from conftest import snapshot
    rows = snapshot(run.env["ESCALATE_DB"])["outbox"]
    assert any("sarah.martinez@intime.com" in str(row) for row in rows)


def test_show_renders_every_section_of_step_3(run, demo):
    r = run("show", CODE, user="sarah.martinez", now=USE_CASE_NOW)
    assert r.exit_code == 0, r.stderr
    out = r.stdout
    for text in ("Escalation: Unauthorized Rate Increase", "CRITICAL", "Escalation ID: ESC-2024-11-28-001",
                 "Created: Nov 28, 2024 11:47 PM", "Status: PENDING",
                 "Reporter: John Smith (IC - Recruiting)", "Age: 8 hours 13 minutes",
                 "Category: Client Complaint → Billing Dispute",
                 "Priority: Critical (Affects strategic account)",
                 "Impact: High (May lose account with $2M annual revenue)",
                 "Account: Google Inc. (Strategic Account)",
                 "Contact: Jane Doe (Hiring Manager) - jane@google.com",
                 "Placement: Sarah Chen (Senior Developer)",
                 "Contract: C-2024-08-15-GOOG-001 (Started: Aug 15, 2024)",
                 "DESCRIPTION", "IC'S INITIAL ASSESSMENT", "TIMELINE OF EVENTS",
                 "Finance sends November invoice", "ATTACHED DOCUMENTS",
                 "invoice-nov-2024-google.pdf", "contract-aug-2024-google.pdf",
                 "None - First escalation with this client", "SLA: Respond by Nov 29, 2024 9:00 AM"):
        assert text in out, text


def test_show_json_fields(run, demo):
    r = run("show", CODE, "--format", "json", user="sarah.martinez", now=USE_CASE_NOW)
    d = json.loads(r.stdout)
    assert d["code"] == CODE and d["status"] == "pending" and d["priority"] == "critical"
    assert d["category"] == "Client Complaint" and d["owner"] is None
    assert d["reporter"] == "john.smith" and d["account"] == "Google Inc."
    assert d["created_at"] == "2024-11-28T23:47:00-05:00"
    assert d["age_seconds"] == 8 * 3600 + 13 * 60
    assert d["response_due"] == "2024-11-29T09:00:00-05:00"
    assert d["resolution_due"] == "2024-12-03T12:00:00-05:00"
    assert d["breached"] is False
    assert len(d["attachments"]) == 3


def test_tc002_claim_sets_in_progress_and_tells_reporter(run, demo):
    r = run("claim", CODE, user="sarah.martinez", now="2024-11-29T08:02:00-05:00")
    assert r.exit_code == 0, r.stderr
    d = json.loads(run("show", CODE, "--format", "json", user="sarah.martinez",
                       now="2024-11-29T08:03:00-05:00").stdout)
    assert d["status"] == "in_progress" and d["owner"] == "sarah.martinez"
    assert d["claimed_at"] == "2024-11-29T08:02:00-05:00"
    inbox = json.loads(run("inbox", "--format", "json", user="john.smith").stdout)
    assert inbox[0]["message"] == "Sarah Martinez has taken ownership of your escalation"
    events = [json.loads(line) for line in run("events", user="sarah.martinez").stdout.splitlines()]
    assigned = [e for e in events if e["name"] == "escalation.assigned"]
    assert assigned[0]["payload"] == {"escalation_id": CODE, "assigned_to": "sarah.martinez",
                                      "assigned_at": "2024-11-29T13:02:00+00:00"}
    timeline = run("timeline", CODE, user="sarah.martinez").stdout
    assert "escalation_claimed" in timeline


def test_claim_already_taken_names_the_owner_exit_4(run, demo, snap):
    run("user", "add", "mike.ross", "--name", "Mike Ross", "--email", "mike@intime.com",
        "--role", "manager", "--pod", "Recruiting Pod A", user="admin")
    assert run("claim", CODE, user="sarah.martinez").exit_code == 0
    before = snap()
    r = run("claim", CODE, user="olivia.park")
    assert r.exit_code == 4
    assert r.stderr.strip() == "Error: This escalation is already being handled by Sarah Martinez"
    assert snap() == before


def test_tc005_first_half_ic_cannot_claim(run, demo, snap):
    before = snap()
    r = run("claim", CODE, user="john.smith")
    assert r.exit_code == 1
    assert "take ownership" in r.stderr and r.stderr.count("\n") == 1
    assert snap() == before


def test_tc005_resolve_without_ownership(run, demo, snap):
    before = snap()
    r = run("resolve", CODE, "--notes", "x" * 60, user="sarah.martinez")
    assert r.exit_code == 1
    assert r.stderr.strip() == "Error: You must take ownership first"
    assert snap() == before


def test_unknown_code_and_no_access_are_indistinguishable(run, demo, snap):
    run("user", "add", "amy.wu", "--name", "Amy Wu", "--email", "amy@intime.com", "--role", "ic",
        user="admin")
    before = snap()
    for user, code in (("sarah.martinez", "ESC-2099-01-01-001"), ("amy.wu", CODE),
                       ("maria.lopez", CODE)):
        r = run("show", code, user=user)
        assert r.exit_code == 3, (user, r.stderr)
        assert r.stderr.strip() == "Error: Escalation not found or you don't have access"
        r = run("claim", code, user=user)
        assert r.exit_code == 3
    assert snap() == before


def unboxed(screen):
    """The text of a boxed screen with its wrapped lines joined again."""
    return " ".join(line.strip("|+- ") for line in screen.splitlines())


def test_step5_internal_note_hidden_from_ic(run, demo, snap):
    # The screen wraps its lines to the box: read it unwrapped, or a wrapped "Root cause"
    # would let the hidden-from-the-IC checks below pass for nothing.
    run = functools.partial(run, now="2024-11-29T08:05:00-05:00")
    run("claim", CODE, user="sarah.martinez")
    r = run("note", CODE, "-", user="sarah.martinez",
            input="Root cause identified: IC used new November template\n")
    assert r.exit_code == 0, r.stderr
    shown = run("show", CODE, "--format", "json", user="sarah.martinez").stdout
    assert "Root cause identified" in shown
    assert "(internal note): Root cause" in unboxed(run("show", CODE, user="sarah.martinez").stdout)
    for fmt in ("table", "json", "csv"):
        out = unboxed(run("show", CODE, "--format", fmt, user="john.smith").stdout)
        assert "Root cause identified" not in out and "Root" not in out
    assert "Root" not in run("timeline", CODE, user="john.smith").stdout
    ic_events = run("events", user="john.smith").stdout
    assert "Root cause identified" not in ic_events and "escalation.investigated" in ic_events
    mgr_events = [json.loads(x) for x in run("events", user="sarah.martinez").stdout.splitlines()]
    inv = [e for e in mgr_events if e["name"] == "escalation.investigated"][0]["payload"]
    assert inv == {"escalation_id": CODE, "investigated_by": "sarah.martinez",
                   "investigation_notes": "Root cause identified: IC used new November template\n".strip()}
    before = snap()
    r = run("note", CODE, "an IC cannot add notes", user="john.smith")
    assert r.exit_code == 1 and snap() == before


def test_attachments_roundtrip_and_safe_extraction(run, demo, tmp_path):
    doc = tmp_path / "contract.pdf"
    doc.write_bytes(b"%PDF-1.4 test")
    r = run("attach", CODE, str(doc), user="sarah.martinez")
    assert r.exit_code == 0, r.stderr
    listing = json.loads(run("attachment", "list", CODE, "--format", "json",
                             user="sarah.martinez").stdout)
    mine = [a for a in listing if a["name"] == "contract.pdf"][0]
    assert mine["content_type"] == "application/pdf" and mine["size"] == 13
    import hashlib
    assert mine["sha256"] == hashlib.sha256(b"%PDF-1.4 test").hexdigest()
    out = tmp_path / "out"
    out.mkdir()
    r = run("attachment", "get", CODE, "contract.pdf", "-o", str(out), user="sarah.martinez")
    assert r.exit_code == 0, r.stderr
    assert (out / "contract.pdf").read_bytes() == b"%PDF-1.4 test"


def test_attachment_size_limit(run, demo, tmp_path, config_file, snap):
    config_file.write_text(config_file.read_text() + "[attachments]\nmax_bytes = 10\n")
    big = tmp_path / "big.pdf"
    big.write_bytes(b"x" * 11)
    before = snap()
    r = run("attach", CODE, str(big), user="sarah.martinez")
    assert r.exit_code == 1 and "too large" in r.stderr
    assert snap() == before


def test_create_idempotency_key(run, demo):
    args = ("create", "--title", "Rate question", "--category", "rate exception", "--priority",
            "low", "--description", "Candidate asks for a higher pay rate", "--idempotency-key", "k-1")
    first = run(*args, user="john.smith")
    second = run(*args, user="john.smith")
    assert first.exit_code == second.exit_code == 0
    assert first.stdout == second.stdout


def test_create_validation_errors_write_nothing(run, demo, snap):
    before = snap()
    r = run("create", "--title", "x", "--category", "Nope", "--priority", "low",
            "--description", "d", user="john.smith")
    assert r.exit_code == 1 and "Unknown category" in r.stderr
    r = run("create", "--title", "x", "--category", "Rate Exception", "--priority", "urgent",
            "--description", "d", user="john.smith")
    assert r.exit_code == 2
    r = run("create", "--title", "x", "--category", "Rate Exception", "--priority", "low",
            "--description", "d", "--account", "Nobody Inc.", user="john.smith")
    assert r.exit_code == 1 and "Unknown account" in r.stderr
    assert snap() == before


def test_unknown_user_is_a_clear_error(run, demo):
    r = run("list", user="nobody")
    assert r.exit_code == 3
    assert "Unknown user 'nobody'" in r.stderr


def test_assign_invalid_assignee(run, demo, snap):
    before = snap()
    r = run("assign", CODE, "--to", "ghost", user="sarah.martinez")
    assert r.exit_code == 1 and r.stderr.strip() == "Error: Invalid assignee"
    assert snap() == before
    r = run("assign", CODE, "--to", "olivia.park", user="sarah.martinez")
    assert r.exit_code == 0, r.stderr
    d = json.loads(run("show", CODE, "--format", "json", user="olivia.park").stdout)
    assert d["owner"] == "olivia.park" and d["status"] == "in_progress"


def test_request_info_reaches_reporter(run, demo):
    r = run("request-info", CODE, "--message", "Which invoice number?", user="sarah.martinez")
    assert r.exit_code == 0, r.stderr
    inbox = json.loads(run("inbox", "--format", "json", user="john.smith").stdout)
    assert "Which invoice number?" in inbox[0]["message"]


def test_attachment_names_cannot_escape_the_folder():
    from escalate_cli.domain import safe_filename
    assert safe_filename("../../etc/passwd") == "passwd"
    assert safe_filename("..\\..\\win.ini") == "win.ini"
    assert safe_filename("..") == "attachment"
    assert safe_filename(".bashrc") == "bashrc"
    assert safe_filename("a\x00b\nc.pdf") == "abc.pdf"


def test_extraction_never_overwrites(run, demo, tmp_path):
    out = tmp_path / "o"
    out.mkdir()
    first = run("attachment", "get", CODE, "1", "-o", str(out), user="sarah.martinez")
    assert first.exit_code == 0, first.stderr
    again = run("attachment", "get", CODE, "1", "-o", str(out), user="sarah.martinez")
    assert again.exit_code == 1 and "already exists" in again.stderr
