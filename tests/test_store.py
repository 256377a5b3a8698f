"""Migrations and CSV import, on both stores."""
import json

from escalate_cli import migrations
from escalate_cli.db import make_database


def test_upgrade_from_schema_0001_keeps_every_row(run, db_url):
    db = make_database(db_url)
    db.connect()
    assert migrations.migrate(db, upto="0001_initial") == ["0001_initial"]
    p = "%s" if db_url.startswith("postgres") else "?"
    db.execute_sql(f'INSERT INTO "pod" ("id", "name") VALUES ({p}, {p})', (1, "Pod A"))
    db.execute_sql('INSERT INTO "user" ("id", "login", "name", "email", "role", "pod_id", "active", '
                   f'"created_at") VALUES ({p}, {p}, {p}, {p}, {p}, {p}, {p}, {p})',
                   (1, "old.manager", "Old Manager", "old@intime.com", "manager", 1, True,
                    "2024-01-01 10:00:00"))
    db.execute_sql('UPDATE "pod" SET "manager_id" = 1')
    db.execute_sql('INSERT INTO "escalation" ("code", "day", "seq", "title", "category", "priority", '
                   '"priority_rank", "impact", "status", "reporter_id", "pod_id", "description", '
                   '"created_at", "policy_version", "paused_seconds", "paused_wall_seconds", '
                   '"resolved_by_ic", "source", "version", "updated_at", "response_due") '
                   f'VALUES ({", ".join([p] * 21)})',
                   ("ESC-2024-01-01-001", "2024-01-01", 1, "Old one", "Rate Exception", "low", 3,
                    "low", "pending", 1, 1, "From the old version", "2024-01-01 15:00:00",
                    "default-1", 0, 0, False, "manual", 1, "2024-01-01 15:00:00",
                    "2024-01-03 15:00:00"))
    db.close()
    r = run("init")
    assert r.exit_code == 0, r.stderr
    assert f"{len(migrations.MIGRATIONS) - 1} applied now" in r.stderr
    shown = json.loads(run("show", "ESC-2024-01-01-001", "--format", "json",
                           user="old.manager").stdout)
    assert shown["title"] == "Old one" and shown["description"] == "From the old version"
    assert shown["reporter"] == "old.manager" and shown["status"] == "pending"
    # the new version's tables exist on the upgraded database, and work
    from conftest import snapshot
    tables = snapshot(db_url)
    assert {"outbox", "task", "meeting", "invoice", "job_run", "job_lock"} <= set(tables)
    assert run("claim", "ESC-2024-01-01-001", user="old.manager").exit_code == 0
    assert len(snapshot(db_url)["notification"]) == 0      # reporter is the claimer: no notice
    again = run("init")
    assert again.exit_code == 0 and "0 applied now" in again.stderr


def test_import_accounts_contacts_contracts(run, demo, tmp_path):
    acc = tmp_path / "accounts.csv"
    acc.write_text("name,strategic,annual_revenue\nAcme Corp,no,\"250,000\"\nGoogle Inc.,yes,2500000\n",
                   encoding="utf-8-sig")
    r = run("import", "accounts", str(acc), user="admin")
    assert r.exit_code == 0, r.stderr
    assert "1 created, 1 updated" in r.stderr
    con = tmp_path / "contacts.csv"
    con.write_text("account,name,email,phone,title\nAcme Corp,Bo Li,BO@acme.com,,Buyer\n")
    assert run("import", "contacts", str(con), user="admin").exit_code == 0
    ctr = tmp_path / "contracts.csv"
    ctr.write_text("code,account,candidate,title,bill_rate,pay_rate,start_date\n"
                   "C-1,Acme Corp,Ann Bee,Dev,$50.50,40,2024-02-01\n")
    assert run("import", "contracts", str(ctr), user="admin").exit_code == 0
    r = run("create", "--title", "Rate", "--category", "Rate Exception", "--priority", "low",
            "--description", "d", "--contact", "bo@acme.com", "--contract", "C-1", user="sarah.martinez")
    assert r.exit_code == 0, r.stderr
    shown = json.loads(run("show", r.stdout.strip(), "--format", "json", user="sarah.martinez").stdout)
    assert shown["account"] == "Acme Corp" and shown["contract"] == "C-1"
    assert shown["impact"] == "medium"


def test_import_bad_rows_reject_the_whole_file(run, demo, tmp_path, snap):
    f = tmp_path / "contracts.csv"
    f.write_text("code,account,candidate,title,bill_rate,pay_rate,start_date\n"
                 "C-9,Google Inc.,Ann,Dev,100,80,2024-01-01\n"
                 "C-10,Nobody,Ann,Dev,100,80,2024-01-01\n"
                 "C-11,Google Inc.,Ann,Dev,abc,80,2024-01-01\n"
                 "C-12,Google Inc.,Ann,Dev,100,80,01/02/2024\n"
                 "C-9,Google Inc.,Ann,Dev,100,80,2024-01-01\n")
    before = snap()
    r = run("import", "contracts", str(f), user="admin")
    assert r.exit_code == 1
    lines = r.stderr.strip().splitlines()
    assert lines[:4] == [f"{f}:3: unknown account 'Nobody'",
                         f"{f}:4: bill_rate 'abc' is not an amount",
                         f"{f}:5: start_date '01/02/2024' is not a date like 2024-08-15",
                         f"{f}:6: duplicate code 'C-9' (first on line 2)"]
    assert "nothing imported" in lines[-1]
    assert snap() == before
    r = run("import", "contracts", str(f), "--skip-invalid", user="admin")
    assert r.exit_code == 0 and "1 created, 0 updated, 4 skipped" in r.stderr


def test_import_refuses_malformed_rows_rounding_and_bad_periods(run, demo, tmp_path, snap):
    before = snap()
    cases = [
        ("accounts", 'name,strategic,annual_revenue\nA,no,1\n"Unterminated,no,1\n',
         ["{f}:3: unexpected end of data (a quote that is never closed?)"]),
        ("accounts", "name,strategic,annual_revenue\nShort Co,no\n",
         ["{f}:2: too few fields (expected 3)"]),
        ("accounts", "name,strategic,annual_revenue\nCents Co,no,1500000.105\n",
         ["{f}:2: annual_revenue '1500000.105' has more than two decimals"]),
        ("contracts", "code,account,candidate,title,bill_rate,pay_rate,start_date\n"
                      'C-1,Google Inc.,Ann,"Dev\nOps",110,90,2024-10-01\n\n'
                      "C-2,Google Inc.,Ann,Dev,110.005,90,2024-10-01\n",
         ["{f}:2: title must be one line (no line breaks or control characters)",
          "{f}:5: bill_rate '110.005' has more than two decimals"]),
        ("invoices", "number,contract,period,hours,bill_rate\n"
                     "INV-2,C-2024-08-15-GOOG-001,2024-99,160,120\n"
                     "INV-3,C-2024-08-15-GOOG-001,garbage,160,120\n",
         ["{f}:2: period '2024-99' is not a month like 2024-11",
          "{f}:3: period 'garbage' is not a month like 2024-11"]),
    ]
    for i, (kind, body, expected) in enumerate(cases):
        f = tmp_path / f"bad{i}.csv"
        f.write_text(body)
        r = run("import", kind, str(f), user="admin")
        assert r.exit_code == 1, r.stderr
        assert r.stderr.strip().splitlines()[:-1] == [e.format(f=f) for e in expected]
    assert snap() == before


def test_import_wrong_header_and_encoding(run, demo, tmp_path, snap):
    before = snap()
    f = tmp_path / "a.csv"
    f.write_text("nom,strategique\nX,1\n")
    r = run("import", "accounts", str(f), user="admin")
    assert r.exit_code == 1 and "missing column(s) name, strategic, annual_revenue" in r.stderr
    f.write_bytes("name,strategic,annual_revenue\nCaf\xe9,no,1\n".encode("latin-1"))
    r = run("import", "accounts", str(f), user="admin")
    assert r.exit_code == 1 and "not UTF-8" in r.stderr
    r = run("import", "accounts", str(tmp_path / "missing.csv"), user="admin")
    assert r.exit_code == 1 and "no such file" in r.stderr
    assert snap() == before


def test_import_is_refused_for_ics(run, demo, tmp_path):
    f = tmp_path / "a.csv"
    f.write_text("name,strategic,annual_revenue\nX,no,1\n")
    r = run("import", "accounts", str(f), user="john.smith")
    assert r.exit_code == 1 and "can import records" in r.stderr


def test_user_pod_team_directory(run, demo, snap):
    r = run("pod", "add", "Recruiting Pod B", "--manager", "sarah.martinez", user="admin")
    assert r.exit_code == 0, r.stderr
    r = run("user", "add", "lee.ng", "--name", "Lee Ng", "--email", "lee@intime.com", "--role", "ic",
            "--pod", "Recruiting Pod B", user="admin")
    assert r.exit_code == 0, r.stderr
    users = json.loads(run("user", "list", "--format", "json", user="admin").stdout)
    assert {"login": "lee.ng", "name": "Lee Ng", "email": "lee@intime.com", "role": "ic",
            "pod": "Recruiting Pod B", "title": None, "active": True} in users
    before = snap()
    assert run("user", "add", "lee.ng", "--name", "L", "--email", "l@x.com", "--role", "ic",
               user="admin").exit_code == 4
    assert run("user", "add", "bad login", "--name", "L", "--email", "l@x.com", "--role", "ic",
               user="admin").exit_code == 1
    assert run("user", "add", "ok", "--name", "L", "--email", "not-an-email", "--role", "ic",
               user="admin").exit_code == 1
    assert run("user", "add", "x.y", "--name", "L", "--email", "l@x.com", "--role", "ic",
               user="sarah.martinez").exit_code == 1
    assert run("team", "add", "legal", "--name", "Legal", "--member", "ghost",
               user="admin").exit_code == 1
    assert snap() == before
    assert run("team", "add", "legal", "--name", "Legal Team", "--email", "legal@intime.com",
               "--member", "sarah.martinez", user="admin").exit_code == 0


def test_init_admin_bootstrap(run):
    r = run("init", "--admin", "ops", "--email", "ops@intime.com", "--name", "Ops")
    assert r.exit_code == 0, r.stderr
    r = run("user", "add", "sam", "--name", "Sam", "--email", "sam@intime.com", "--role",
            "manager", user="ops")
    assert r.exit_code == 0, r.stderr
    r = run("init", "--admin", "other", "--email", "o@intime.com")
    assert r.exit_code == 1 and "already an admin" in r.stderr
