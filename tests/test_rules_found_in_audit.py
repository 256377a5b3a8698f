"""Rules a first-day user ran into: who may take an escalation back from a leader, where an
escalation with no pod would go, retried creates, claims of resolved escalations, filters
that name nothing, and the directory commands an admin needs (user set, pod and team list)."""
import json

from test_lifecycle import CLAIMED, CODE, claim, refused


def test_a_consulted_manager_cannot_take_an_escalation_back_from_the_ceo(run, demo, snap):
    claim(run)
    r = run("escalate", CODE, "--to", "ceo", "--note", "Client demands the CEO",
            user="sarah.martinez", now=CLAIMED)
    assert r.exit_code == 0, r.stderr
    refused(run, snap, "escalate", CODE, "--to", "coo", "--note", "actually the COO",
            user="sarah.martinez", now=CLAIMED,
            message=f"{CODE} is with David Kim now: only they or another leader can "
                    f"escalate it further")
    # the CEO may hand it to the COO
    r = run("escalate", CODE, "--to", "coo", "--note", "Olivia knows them", user="david.kim",
            now=CLAIMED)
    assert r.exit_code == 0, r.stderr
    shown = json.loads(run("show", CODE, "--format", "json", user="olivia.park").stdout)
    assert shown["owner"] == "olivia.park" and shown["status"] == "escalated"


def test_claiming_a_resolved_escalation_is_an_illegal_transition(run, demo, snap):
    claim(run)
    notes = "Resolved: corrected invoice issued, credit applied and the client is satisfied."
    assert run("resolve", CODE, "--notes", notes, user="sarah.martinez", now=CLAIMED).exit_code == 0
    for who in ("sarah.martinez", "olivia.park"):
        refused(run, snap, "claim", CODE, user=who, now=CLAIMED,
                message=f"Cannot claim {CODE}: it is already RESOLVED")


def test_an_ic_in_no_pod_is_told_instead_of_raising_an_escalation_nobody_sees(run, demo, snap):
    r = run("user", "add", "ivy.ic", "--name", "Ivy Ng", "--email", "ivy@intime.com",
            "--role", "ic", user="admin")
    assert r.exit_code == 0, r.stderr
    args = ("create", "--title", "Client unhappy", "--category", "Client Complaint",
            "--priority", "high", "--description", "Client unhappy with the shortlist.")
    refused(run, snap, *args, user="ivy.ic", now=CLAIMED,
            message="You are in no pod, so no manager would see this escalation: pass --pod "
                    "NAME, or ask an admin to put you in a pod (escalate user set LOGIN --pod)")
    r = run("user", "set", "ivy.ic", "--pod", "Recruiting Pod A", user="admin")
    assert (r.exit_code, r.stdout) == (0, "ivy.ic\n")
    r = run(*args, user="ivy.ic", now=CLAIMED)
    assert r.exit_code == 0, r.stderr
    code = r.stdout.strip()
    assert any(code == item["code"] for item in json.loads(
        run("list", "--format", "json", user="sarah.martinez", now=CLAIMED).stdout))
    assert any("New escalation from Ivy Ng" in line
               for line in run("inbox", user="sarah.martinez").stdout.splitlines())


def test_an_idempotency_key_reused_for_a_different_escalation_is_a_conflict(run, demo, snap):
    args = ["create", "--title", "Ghosted", "--category", "Candidate Issue", "--priority",
            "medium", "--description", "Candidate stopped answering.", "--idempotency-key", "k1"]
    first = run(*args, user="john.smith", now=CLAIMED)
    assert first.exit_code == 0, first.stderr
    again = run(*args, user="john.smith", now=CLAIMED)
    assert (again.exit_code, again.stdout) == (0, first.stdout)
    args[args.index("medium")] = "low"
    refused(run, snap, *args, user="john.smith", now=CLAIMED, code=4,
            message=f"That idempotency key was used for {first.stdout.strip()}, a different "
                    f"escalation; use a new key")


def test_list_filters_that_name_nothing_say_so(run, demo, snap):
    refused(run, snap, "list", "--owner", "ghost", user="sarah.martinez", code=3,
            message="Unknown user 'ghost'")
    refused(run, snap, "list", "--pod", "Pod Z", user="sarah.martinez", code=3,
            message="Unknown pod 'Pod Z'")
    refused(run, snap, "list", "--account", "Nope", user="sarah.martinez", code=3,
            message="Unknown account 'Nope'")
    r = run("list", "--account", "google inc.", "--format", "json", user="sarah.martinez")
    assert [e["code"] for e in json.loads(r.stdout)] == [CODE]


def test_user_set_pod_list_and_team_list(run, demo, snap):
    r = run("pod", "list", "--format", "json", user="john.smith")
    assert json.loads(r.stdout) == [{"name": "Recruiting Pod A", "manager": "sarah.martinez",
                                     "manager_name": "Sarah Martinez", "members": 2}]
    r = run("team", "list", "--format", "json", user="john.smith")
    assert json.loads(r.stdout) == [{"key": "finance", "name": "Finance Team",
                                     "email": "finance@intime.com", "active": True,
                                     "members": "maria.lopez"}]
    refused(run, snap, "user", "set", "john.smith", "--phone", "call me", user="admin",
            message="Invalid phone number 'call me': use international format, e.g. +15550100")
    refused(run, snap, "user", "set", "john.smith", "--pod", "Pod Z", user="admin",
            message="Unknown pod 'Pod Z': add it first (escalate pod add)")
    refused(run, snap, "user", "set", "john.smith", "--title", "Lead", user="sarah.martinez",
            message="Only admins can change users")
    refused(run, snap, "user", "set", "nobody", "--title", "Lead", user="admin", code=3,
            message="Unknown user 'nobody'")
    r = run("user", "set", "john.smith", "--inactive", user="admin")
    assert r.exit_code == 0, r.stderr
    r = run("list", user="john.smith")
    assert r.exit_code == 3 and "john.smith" in r.stderr
    users = {u["login"]: u for u in json.loads(run("user", "list", "--format", "json",
                                                   user="admin").stdout)}
    assert users["john.smith"]["active"] is False
    assert users["sarah.martinez"]["pod"] == "Recruiting Pod A"


def test_an_idempotency_key_compares_the_whole_escalation(run, demo, snap):
    args = ["create", "--title", "Late start", "--category", "Candidate Issue", "--priority",
            "low", "--description", "A", "--idempotency-key", "k2"]
    first = run(*args, user="john.smith", now=CLAIMED)
    assert first.exit_code == 0, first.stderr
    for changed in (["--description", "totally different"], ["--account", "Google Inc."]):
        other = list(args)
        if changed[0] in other:
            other[other.index(changed[0]) + 1] = changed[1]
        else:
            other += changed
        refused(run, snap, *other, user="john.smith", now=CLAIMED, code=4)


def test_the_last_admin_stays_an_admin(run, demo, snap):
    refused(run, snap, "user", "set", "admin", "--role", "ic", user="admin",
            message="You cannot take away your own admin role: ask another admin")
    assert run("user", "add", "ops", "--name", "Ops", "--email", "ops@intime.com", "--role",
               "admin", user="admin").exit_code == 0
    assert run("user", "set", "admin", "--inactive", user="ops").exit_code == 0
    refused(run, snap, "user", "set", "ops", "--role", "manager", user="ops",
            message="You cannot take away your own admin role: ask another admin")


def test_someone_who_left_is_told_nothing(run, demo, db_url):
    from test_lifecycle import rows
    assert run("user", "set", "sarah.martinez", "--inactive", user="admin").exit_code == 0
    before_notes, before_mail = len(rows(db_url, "notification")), len(rows(db_url, "outbox"))
    r = run("create", "--title", "Urgent", "--category", "Client Complaint", "--priority",
            "critical", "--description", "d", user="john.smith", now=CLAIMED)
    assert r.exit_code == 0, r.stderr
    assert len(rows(db_url, "notification")) == before_notes
    assert len(rows(db_url, "outbox")) == before_mail


def test_rate_approvals_and_invoice_periods_keep_to_real_years(run, demo, snap, tmp_path):
    refused(run, snap, "contract", "approve-rate", "C-2024-08-15-GOOG-001", "--bill-rate", "120",
            "--effective", "0001-01-01", user="admin",
            message="--effective must be a date like 2024-11-01")
    f = tmp_path / "inv.csv"
    f.write_text("number,contract,period,hours,bill_rate\nINV-9,C-2024-08-15-GOOG-001,0000-01,1,1\n")
    r = run("import", "invoices", str(f), user="admin")
    assert r.exit_code == 1 and "period '0000-01' is not a month like 2024-11" in r.stderr
