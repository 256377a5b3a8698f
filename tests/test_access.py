"""Access control, table-driven: every command that takes an escalation code, as every kind
of user, on both stores; and internal notes in every output.

The matrix follows PRODUCT.md and the use case: an escalation is seen by its reporter, its
owner, the people Consulted on it, the managers of its pod, the COO, the CEO and admins;
anyone else gets exactly the answer a code that does not exist gets ("Escalation not found
or you don't have access", exit 3), so that a code cannot be probed. Among those who see
it, who may *act* is decided per command (managers of the pod and leaders manage it; the
owner resolves it; investigation notes are for managers and leaders); the others are
refused with a reason (exit 1). Refused and hidden attempts change nothing.
"""
import json

import pytest

from rel_helpers import MONDAY, Domain

NOT_FOUND = "Error: Escalation not found or you don't have access\n"
UNKNOWN = ("Error: Unknown user 'nobody': ask an admin to add you (escalate user add nobody ...), "
           "or pass --as LOGIN\n")
NOTES = ("Corrected invoice issued at the agreed $110/hr; the client accepted the apology and "
         "the credit.")

ROLES = {
    "reporting IC": "john.smith",
    "IC of the pod": "amy.wu",
    "IC of another pod": "carl.diaz",
    "manager of the pod": "sarah.martinez",
    "manager of another pod": "ben.ortiz",
    "COO": "olivia.park",
    "CEO": "david.kim",
    "admin": "admin",
    "finance member": "maria.lopez",
    "unknown user": "nobody",
}
SEES = {"reporting IC", "manager of the pod", "COO", "CEO", "admin"}
MANAGES = {"manager of the pod", "COO", "CEO", "admin"}
OWNS = {"manager of the pod"}          # the scenarios' owner, when there is one

ONLY_MANAGERS = "Only a manager of this pod or a leader can {}"
OWNERSHIP = "You must take ownership first"

# command -> (scenario, arguments after the code, who may do it, the refusal of the others
# who see it). Scenarios: pending (raised by John, pod A, medium, with the Google contact,
# contract and an attachment), owned (claimed by Sarah), held (owned and on hold),
# ic_resolved (resolved by John while pending: awaiting approval).
MATRIX = {
    "show": ("pending", ["show", "{code}"], SEES, None),
    "show --format json": ("pending", ["show", "{code}", "--format", "json"], SEES, None),
    "show --format csv": ("pending", ["show", "{code}", "--format", "csv"], SEES, None),
    "timeline": ("pending", ["timeline", "{code}"], SEES, None),
    "timeline --format json": ("pending", ["timeline", "{code}", "--format", "json"], SEES, None),
    "attachment list": ("pending", ["attachment", "list", "{code}"], SEES, None),
    "attachment get": ("pending", ["attachment", "get", "{code}", "evidence.txt", "--stdout"],
                       SEES, None),
    "sla explain": ("pending", ["sla", "explain", "{code}"], SEES, None),
    "call list": ("pending", ["call", "list", "{code}"], SEES, None),
    "claim": ("pending", ["claim", "{code}"], MANAGES, ONLY_MANAGERS.format("take ownership")),
    "assign": ("pending", ["assign", "{code}", "--to", "sarah.martinez"], MANAGES,
               ONLY_MANAGERS.format("assign this escalation")),
    "request-info": ("pending", ["request-info", "{code}", "--message", "Which invoice?"],
                     MANAGES, ONLY_MANAGERS.format("request more information")),
    "note": ("pending", ["note", "{code}", "Root cause: the new template"], MANAGES,
             "Only managers and leaders can add investigation notes"),
    "attach": ("pending", ["attach", "{code}", "{file}"], SEES, None),
    "resolve": ("owned", ["resolve", "{code}", "--notes", NOTES], OWNS, OWNERSHIP),
    "hold": ("owned", ["hold", "{code}", "--reason", "Waiting for Finance"], MANAGES, OWNERSHIP),
    "resume": ("held", ["resume", "{code}"], MANAGES, OWNERSHIP),
    "escalate": ("owned", ["escalate", "{code}", "--to", "coo", "--note", "Client asks for an "
                           "executive call"], MANAGES, ONLY_MANAGERS.format("escalate further")),
    "approve": ("ic_resolved", ["approve", "{code}"], MANAGES,
                ONLY_MANAGERS.format("approve a resolution")),
    "progress": ("owned", ["progress", "{code}", "Investigating", "--note", "Reading invoices"],
                 OWNS, OWNERSHIP),
    "priority": ("pending", ["priority", "{code}", "high", "--reason", "Client threatens to "
                             "leave"], MANAGES, ONLY_MANAGERS.format("change the priority")),
    "email": ("owned", ["email", "{code}", "-t", "client-followup", "--draft"], MANAGES,
              ONLY_MANAGERS.format("email the client")),
    "task": ("owned", ["task", "{code}", "--title", "Issue corrected invoice", "--assign",
                       "finance", "--due", "2024-12-03 17:00"], MANAGES,
             ONLY_MANAGERS.format("create tasks on this escalation")),
    "call schedule": ("owned", ["call", "schedule", "{code}", "--at", "2024-12-03 09:00",
                                "--no-invite"], MANAGES,
                      ONLY_MANAGERS.format("schedule calls on this escalation")),
    "call log": ("owned", ["call", "log", "{code}", "--duration", "10", "--outcome", "neutral",
                           "--summary", "Talked it through"], SEES, None),
    "message": ("owned", ["message", "{code}", "Thanks for raising this quickly"], MANAGES,
                ONLY_MANAGERS.format("message the reporter")),
}


def expected(command, role):
    """'ok', 'refused' or 'hidden' (and 'unknown' for a user not on file)."""
    _, _, allowed, _ = MATRIX[command]
    if role == "unknown user":
        return "unknown"
    if role not in SEES:
        return "hidden"
    return "ok" if role in allowed else "refused"


@pytest.fixture
def world(run, demo, base_env, config_file, tmp_path):
    """Pod A (Sarah; John, who reports, and Amy), pod B (Ben; Carl); the demo's leaders and
    Finance; an attachment to use."""
    base_env["ESCALATE_SMTP_PORT"] = "9"          # nothing listens: mail waits in the outbox
    steps = [
        ("user", "add", "amy.wu", "--name", "Amy Wu", "--email", "amy.wu@intime.com", "--role",
         "ic", "--pod", "Recruiting Pod A"),
        ("user", "add", "ben.ortiz", "--name", "Ben Ortiz", "--email", "ben.ortiz@intime.com",
         "--role", "manager"),
        ("pod", "add", "Recruiting Pod B", "--manager", "ben.ortiz"),
        ("user", "add", "carl.diaz", "--name", "Carl Diaz", "--email", "carl.diaz@intime.com",
         "--role", "ic", "--pod", "Recruiting Pod B"),
    ]
    for args in steps:
        r = run(*args, user="admin")
        assert r.exit_code == 0, (args, r.stderr)
    evidence = tmp_path / "evidence.txt"
    evidence.write_text("Invoice INV-2024-11-0042: 160 h at $120/hr\n")
    return Domain(base_env["ESCALATE_DB"], config_file), evidence


def make(dom, scenario, evidence):
    from escalate_cli import domain
    esc = dom("john.smith", domain.create_escalation, title="Invoice at the wrong rate",
              category="Client Complaint", subcategory="Billing Dispute", priority="medium",
              description="Billed $120/hr instead of $110/hr.", account="Google Inc.",
              contact="jane@google.com", contract="C-2024-08-15-GOOG-001",
              attachments=[str(evidence)])
    if scenario in ("owned", "held"):
        dom("sarah.martinez", domain.claim, esc.code)
    if scenario == "held":
        dom("sarah.martinez", domain.hold, esc.code, "Waiting for the client")
    if scenario == "ic_resolved":
        dom("john.smith", domain.resolve, esc.code, NOTES)
    return esc.code


def test_every_command_as_every_role(run, world, snap):
    dom, evidence = world
    table = {command: {role: expected(command, role) for role in ROLES} for command in MATRIX}
    seen = {}
    for command, (scenario, template, allowed, refusal) in MATRIX.items():
        def args(code):
            return [a.format(code=code, file=evidence) for a in template]
        # those who may not do it, on one escalation that must not change
        shared = make(dom, scenario, evidence)
        before = snap()
        for role, outcome in table[command].items():
            if outcome == "ok":
                continue
            r = run(*args(shared), user=ROLES[role], now=MONDAY)
            seen[(command, role)] = r.exit_code
            if outcome == "hidden":
                assert (r.exit_code, r.stdout, r.stderr) == (3, "", NOT_FOUND), (command, role)
            elif outcome == "unknown":
                assert (r.exit_code, r.stdout, r.stderr) == (3, "", UNKNOWN), (command, role)
            else:
                assert (r.exit_code, r.stderr) == (1, f"Error: {refusal}\n"), (command, role)
        # a code that does not exist answers exactly like one you may not see
        r = run(*args("ESC-2024-12-02-999"), user="sarah.martinez", now=MONDAY)
        assert (r.exit_code, r.stdout, r.stderr) == (3, "", NOT_FOUND), command
        assert snap() == before, command
        # those who may, each on an escalation of their own
        for role, outcome in table[command].items():
            if outcome != "ok":
                continue
            code = make(dom, scenario, evidence) if scenario != "pending" or \
                command not in READS else shared
            r = run(*args(code), user=ROLES[role], now=MONDAY)
            seen[(command, role)] = r.exit_code
            assert r.exit_code == 0, (command, role, r.stderr)
            assert not r.stderr.startswith("Error"), (command, role, r.stderr)
    assert len(seen) == len(MATRIX) * len(ROLES)


READS = {"show", "show --format json", "show --format csv", "timeline", "timeline --format json",
         "attachment list", "attachment get", "sla explain", "call list"}


def test_the_matrix_is_the_product_brief():
    """The table above, as people read it (a change to it is a change to the product)."""
    readers = sorted(r for r in ROLES if expected("show", r) == "ok")
    assert readers == ["CEO", "COO", "admin", "manager of the pod", "reporting IC"]
    hidden = sorted(r for r in ROLES if expected("show", r) == "hidden")
    assert hidden == ["IC of another pod", "IC of the pod", "finance member",
                      "manager of another pod"]
    assert {c for c in MATRIX if expected(c, "reporting IC") == "ok"} == \
        READS | {"attach", "call log"}
    assert {c for c in MATRIX if expected(c, "COO") == "refused"} == {"resolve", "progress"}


# -- internal notes -------------------------------------------------------------------------

SECRET = "Zqxjkvoid"           # one word, unique to the internal note


def _outputs(run, role, login, code):
    """Everything ``login`` can read about the escalation, as text."""
    reads = [
        ("show", code), ("show", code, "--format", "json"), ("show", code, "--format", "csv"),
        ("timeline", code), ("timeline", code, "--format", "json"),
        ("timeline", code, "--format", "csv"), ("events",), ("events", "--format", "table"),
        ("events", "--format", "csv"), ("list", "--status", "all", "--format", "json"),
        ("list", "--status", "all", "--format", "csv"), ("inbox", "--format", "json"),
        ("task", "list", "--all", "--format", "json"), ("outbox", "--all", "--format", "json"),
        ("sla", "explain", code, "--format", "json"), ("call", "list", code, "--format", "json"),
    ]
    from escalate_cli.cli import cli
    if "search" in cli.commands:            # the insight branch's search and reports
        reads += [("search", SECRET, "--format", "json"), ("search", SECRET),
                  ("report", "--since", "2024-11-01", "--format", "json")]
    out = {}
    for args in reads:
        r = run(*args, user=login, now="2024-12-03T12:00:00-05:00")
        assert r.exit_code in (0, 3), (role, args, r.stderr)
        out[" ".join(args)] = r.stdout + r.stderr
    rows = json.loads(out["outbox --all --format json"]) if login != "nobody" else []
    for row in rows:
        r = run("outbox", "show", row["id"], "--format", "json", user=login)
        out[f"outbox show {row['id']}"] = r.stdout + r.stderr
    return out


def test_internal_notes_only_for_managers_and_leaders(run, world, base_env, smtp, config_file):
    """show in every format, timeline, events, list, inbox, tasks, outbox, sla explain, calls
    (and search and reports where the insight branch has them); digests, every email and SMS
    the flow sends, and resolution notes with the timeline."""
    config_file.write_text(config_file.read_text() + "[digest]\nsend_empty = true\n")
    code = "ESC-2024-11-28-001"
    sarah = "sarah.martinez"
    steps = [
        (sarah, "claim", code),
        (sarah, "note", code, f"Root cause: {SECRET} template applied to an existing placement"),
        ("olivia.park", "note", code, f"COO: {SECRET} is a known issue"),
        (sarah, "progress", code, "Investigating", "--note", "Reading the invoices"),
        (sarah, "email", code, "-t", "client-apology", "--var", "billed_rate=120", "--var",
         "hours=160", "--var", "credit=500", "--var", "call_time=9:00 AM"),
        (sarah, "task", code, "--title", "Issue corrected invoice", "--assign", "finance",
         "--due", "2024-12-04 17:00", "--description", "Bill $110/hr"),
        (sarah, "call", "schedule", code, "--at", "2024-12-04 09:00", "--agenda", "Apologise"),
        (sarah, "message", code, "Great job escalating this quickly.", "--one-on-one",
         "2024-12-05 10:00"),
        (sarah, "call", "log", code, "--duration", "15", "--outcome", "positive", "--summary",
         "Client accepted the apology"),
        ("maria.lopez", "task", "done", "1", "--note", "Corrected invoice sent"),
        (sarah, "resolve", code, "--notify", "ic,coo,ceo", "--with-timeline", "--notes", NOTES),
    ]
    for login, *args in steps:
        r = run(*args, user=login, now="2024-12-03T08:30:00-05:00")
        assert r.exit_code == 0, (args, r.stderr)
    for job in ("sla-sweep", "reminders", "digest", "deliver"):
        r = run("jobs", job, now="2024-12-03T09:00:00-05:00")
        assert r.exit_code == 0, (job, r.stderr)
    assert run("jobs", "deliver", now="2024-12-05T09:00:00-05:00").exit_code == 0
    # nothing that leaves the building carries it
    assert len(smtp.messages) >= 10
    subjects = " | ".join(m.subject for m in smtp.messages)
    assert "Daily digest" in subjects and "Leadership digest" in subjects
    for m in smtp.messages:
        assert SECRET.encode() not in m.raw, m.subject
    shown = json.loads(run("show", code, "--format", "json", user="john.smith").stdout)
    assert SECRET not in shown["resolution_notes"] and "TIMELINE:" in shown["resolution_notes"]
    # inside: managers and leaders read it; nobody else, in any output
    for role, login in ROLES.items():
        outputs = _outputs(run, role, login, code)
        leaked = [what for what, text in outputs.items() if SECRET in text]
        if role in ("manager of the pod", "COO", "CEO", "admin"):
            assert "timeline " + code in leaked and "show " + code in leaked, role
        else:
            assert leaked == [], (role, leaked)
        if role not in SEES:
            # nothing of it at all; Finance knows its own task, and the email its "done" sent
            mentions = {what for what, text in outputs.items() if code in text}
            if role == "finance member":
                mentions -= {"inbox --format json", "task list --all --format json"}
                mentions = {m for m in mentions if not m.startswith("outbox")}
            assert mentions == set(), (role, mentions)
