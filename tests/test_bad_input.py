"""Whatever a user types: success, or one clear stderr line with a contract exit code, and
a refused command leaves every row as it was. Driven by hypothesis through the real command."""
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

CODE = "ESC-2024-11-28-001"
CONTRACT_CODES = {0, 1, 2, 3, 4}
SETTINGS = settings(max_examples=40, deadline=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])

nasty_text = st.one_of(
    st.text(min_size=0, max_size=200),
    st.sampled_from(["", " ", "\x00", "a\x00b", "‮evil‭", "🔥" * 50, "<script>alert(1)</script>",
                     "Robert'); DROP TABLE escalation;--", "\r\nBcc: x@y.z", "x" * 1_000_000,
                     "ESC-2024-11-28-001", "-", "--help", "ｆｕｌｌｗｉｄｔｈ", "\u200b"]),
)


@pytest.fixture
def fast_snap(db_url):
    """Every row of every table, cheaply (see rel_helpers.Fingerprint)."""
    from rel_helpers import Fingerprint
    fingerprint = Fingerprint(db_url)
    yield fingerprint
    fingerprint.close()


def check(result, snap_before, snap, row_reports_from=None):
    out = result.stdout + result.stderr
    assert "Traceback" not in out
    assert "internal error" not in result.stderr, result.stderr[:500]     # the last defence
    assert result.exit_code in CONTRACT_CODES, (result.exit_code, out[:500])
    if result.exit_code in (1, 3, 4):
        # warnings about the settings file (an unknown key) may come first, each one line
        lines = [line for line in result.stderr.splitlines()
                 if not line.startswith("escalate: warning: ")]
        assert lines[-1].startswith("Error: "), result.stderr[:500]
        for line in lines[:-1]:     # an import reports each bad row as FILE:LINE: reason
            assert row_reports_from and line.startswith(f"{row_reports_from}:"), line
    if result.exit_code != 0:
        assert snap() == snap_before


@SETTINGS
@given(title=nasty_text, description=nasty_text, category=nasty_text)
def test_create_with_arbitrary_text(run, demo, fast_snap, title, description, category):
    before = fast_snap()
    r = run("create", "--title", title, "--category", category or "Rate Exception",
            "--priority", "low", "--description", description, user="john.smith")
    check(r, before, fast_snap)


@SETTINGS
@given(text=nasty_text)
def test_note_and_request_info_with_arbitrary_text(run, demo, fast_snap, text):
    before = fast_snap()
    check(run("note", CODE, text, user="sarah.martinez"), before, fast_snap)
    before = fast_snap()
    check(run("request-info", CODE, "--message", text, user="sarah.martinez"), before, fast_snap)


@SETTINGS
@given(code=nasty_text, login=st.sampled_from(["sarah.martinez", "john.smith", "maria.lopez",
                                               "olivia.park", "nobody", ""]))
def test_unknown_codes_and_wrong_roles(run, demo, fast_snap, code, login):
    before = fast_snap()
    for args in (("show", code), ("claim", code), ("timeline", code), ("attachment", "list", code)):
        r = run(*args, user=login or None)
        check(r, before, fast_snap)
        if code.strip().upper() != CODE and r.exit_code not in (0, 2) and login not in ("nobody", ""):
            assert r.stderr.strip() == "Error: Escalation not found or you don't have access"


@SETTINGS
@given(when=nasty_text)
def test_malformed_times(run, demo, fast_snap, when):
    before = fast_snap()
    run("claim", CODE, user="sarah.martinez")
    before = fast_snap()
    r = run("hold", CODE, "--reason", "Waiting on Finance", "--until", when, user="sarah.martinez")
    check(r, before, fast_snap)
    if r.exit_code == 0:
        run("resume", CODE, user="sarah.martinez")
    r = run("list", user="sarah.martinez", now=when.replace("\x00", "") or "x")  # env has no NULs
    assert r.exit_code in (0, 1) and "Traceback" not in r.stderr


@SETTINGS
@given(body=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(lambda t: t.encode("utf-8"))),
       kind=st.sampled_from(["accounts", "contacts", "contracts", "invoices"]),
       header=st.sampled_from([b"", b"\xef\xbb\xbf", b"name,strategic,annual_revenue\n",
                               b"account,name,email,phone,title\n",
                               b"code,account,candidate,title,bill_rate,pay_rate,start_date\n"]))
def test_malformed_csv_files(run, demo, fast_snap, tmp_path_factory, body, kind, header):
    path = tmp_path_factory.mktemp("csv") / "in.csv"
    path.write_bytes(header + body)
    before = fast_snap()
    r = run("import", kind, str(path), user="admin")
    check(r, before, fast_snap, row_reports_from=str(path))


# -- the free text of the newer commands ------------------------------------------------------

MONDAY = "2024-12-02T10:00:00-05:00"
NO_SMTP = {"ESCALATE_SMTP_PORT": "9"}         # mail waits in the outbox: no server here
MANY = settings(max_examples=60, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _fresh(db_url, config_file):
    """A new escalation of John's, claimed by Sarah: each example starts from the same state."""
    from escalate_cli import domain

    from rel_helpers import Domain
    dom = Domain(db_url, config_file)
    esc = dom("john.smith", domain.create_escalation, title="Invoice", category="Client Complaint",
              priority="high", description="Billed $120/hr", contact="jane@google.com",
              contract="C-2024-08-15-GOOG-001", now=MONDAY)
    dom("sarah.martinez", domain.claim, esc.code, now=MONDAY)
    return esc.code


# (arguments with {c} for the code, {t} and {o} for two generated texts; stdin or None)
LIFECYCLE = [
    (("hold", "{c}", "--reason", "{t}"), None),
    (("hold", "{c}", "--reason", "Waiting", "--until", "{t}"), None),
    (("escalate", "{c}", "--to", "coo", "--note", "{t}"), None),
    (("escalate", "{c}", "--to", "ceo", "--note", "-"), "{t}"),
    (("resolve", "{c}", "--notes", "{t}"), None),
    (("resolve", "{c}", "--notes", "Corrected invoice issued at the agreed rate. {t}"), None),
    (("resolve", "{c}", "--notes", "-", "--with-timeline"), "Corrected invoice, agreed rate. {t}"),
    (("progress", "{c}", "{t}", "--note", "{o}"), None),
    (("progress", "{c}", "Investigating", "--note", "-"), "{t}"),
    (("priority", "{c}", "critical", "--reason", "{t}"), None),
]
COMMS = [
    (("email", "{c}", "-t", "client-followup", "--draft", "--subject", "{t}"), None),
    (("email", "{c}", "-t", "client-followup", "--draft", "--var", "subject_line={t}",
      "--var", "candidate={o}"), None),
    (("email", "{c}", "-t", "client-apology", "--preview", "--var", "billed_rate={t}",
      "--var", "hours={o}", "--var", "credit=5", "--var", "call_time=9"), None),
    (("email", "{c}", "-t", "{t}", "--draft"), None),
    (("task", "{c}", "--title", "{t}", "--assign", "finance", "--due", "2024-12-03 17:00",
      "--description", "{o}"), None),
    (("task", "{c}", "--title", "Check", "--assign", "{t}", "--due", "2024-12-03 17:00"), None),
    (("task", "{c}", "--title", "Check", "--assign", "finance", "--due", "{t}"), None),
    (("task", "{c}", "--title", "Check", "--assign", "finance", "--due", "2024-12-03 17:00",
      "--description", "-"), "{t}"),
    (("call", "schedule", "{c}", "--at", "2024-12-03 09:00", "--agenda", "{t}", "--location",
      "{o}"), None),
    (("call", "schedule", "{c}", "--at", "2024-12-03 10:00", "--agenda", "-"), "{t}"),
    (("call", "log", "{c}", "--duration", "5", "--outcome", "neutral", "--summary", "{t}"), None),
    (("call", "log", "{c}", "--duration", "5", "--outcome", "neutral", "--summary", "-"), "{t}"),
    (("message", "{c}", "{t}", "--topic", "{o}", "--one-on-one", "2024-12-04 10:00"), None),
    (("message", "{c}", "-"), "{t}"),
]


def _fill(args, stdin, code, text, other):
    def sub(a):
        return a.replace("{c}", code).replace("{t}", text).replace("{o}", other)
    return [sub(a) for a in args], (sub(stdin) if stdin is not None else None)


@MANY
@given(command=st.sampled_from(LIFECYCLE), text=nasty_text, other=nasty_text)
def test_lifecycle_free_text(run, demo, fast_snap, db_url, config_file, command, text, other):
    """hold --reason/--until, escalate --note, resolve --notes, progress STATE --note,
    priority --reason (arguments and stdin), each on an escalation in the state it needs."""
    args, stdin = _fill(*command, _fresh(db_url, config_file), text, other)
    before = fast_snap()
    check(run(*args, user="sarah.martinez", now=MONDAY, input=stdin, env=NO_SMTP), before,
          fast_snap)


@MANY
@given(command=st.sampled_from(COMMS), text=nasty_text, other=nasty_text)
def test_comms_free_text(run, demo, fast_snap, command, text, other):
    """email --subject/--var/--template, task --title/--assign/--due/--description, call
    --agenda/--location/--summary, message text and --topic (arguments and stdin)."""
    if run("claim", CODE, user="sarah.martinez", now=MONDAY).exit_code not in (0, 1):
        raise AssertionError("claim")
    args, stdin = _fill(*command, CODE, text, other)
    before = fast_snap()
    check(run(*args, user="sarah.martinez", now=MONDAY, input=stdin, env=NO_SMTP), before,
          fast_snap)


# -- settings: malformed dates, zones and everything else -------------------------------------

SETTING_KEYS = [
    ("", "timezone"), ("", "company"), ("", "base_url"), ("business_hours", "days"),
    ("business_hours", "start"), ("business_hours", "end"), ("business_hours", "holidays"),
    ("sla", "warn_share"), ("sla", "version"), ("sla.critical", "response_hours"),
    ("sla.high", "resolution_hours"), ("sla.low", "resolution_business_days"),
    ("sla.medium", "calendar"), ("sla.critical", "escalate_to"), ("smtp", "port"),
    ("smtp", "timeout"), ("smtp", "from"), ("outbox", "max_attempts"),
    ("attachments", "max_bytes"), ("jobs", "catch_up_after"), ("jobs", "after_hours"),
    ("jobs", "disabled"), ("jobs", "batch"), ("jobs.schedule", "digest"),
    ("jobs.schedule", "sla-sweep"), ("jobs.stale_after", "deliver"), ("digest", "send_empty"),
    ("templates", "folder"), ("", "business_hours"), ("", "sla"), ("sla", "critical"),
    ("", "smtp"), ("", "jobs"), ("jobs", "schedule"),
]
odd_values = st.one_of(
    nasty_text.filter(lambda t: len(t) < 5000),
    st.sampled_from(["Mars/Olympus", "America/New_York ", "UTC", "+05:00", "EST5EDT", "Etc/GMT+14",
                     "../../../etc/localtime", "25:00", "8am", "18:00:60", "2024-02-30",
                     "2024-13-01", "0000-00-00", "99999-01-01", "mon", "funday", "-1", "0",
                     "1e309", "5x", "24x7", "business", "none", "coo", "defer", "1m", "0s",
                     "99999999999d", "07:00 mon-fri", "07:00 someday"]),
    st.integers(min_value=-2**63, max_value=2**63 - 1), st.booleans(),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.sampled_from(["mon", "xyz", "2024-12-25", "", "sla-sweep", "nope"]), max_size=4),
    st.dictionaries(st.sampled_from(["a", "days", "start", "critical"]),
                    st.sampled_from(["x", "08:00", "1"]), max_size=2),
)


def _toml_value(value):
    import json
    import math
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else ("inf" if value > 0 else "-inf") \
            if math.isinf(value) else repr(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        items = (f"{json.dumps(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{" + ", ".join(items) + "}"
    return json.dumps(value, ensure_ascii=False)


@settings(max_examples=40, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(entries=st.lists(st.tuples(st.sampled_from(SETTING_KEYS), odd_values), min_size=1,
                        max_size=3),
       raw=st.one_of(st.none(), st.binary(max_size=80)))
def test_malformed_settings(run, demo, fast_snap, config_file, entries, raw):
    """Malformed dates, zones, hours, durations, schedules, numbers and tables (and files that
    are not TOML at all): every command gives success or one line and a contract exit code,
    and writes nothing when it fails."""
    if raw is not None:
        config_file.write_bytes(raw)
    else:
        tables = {}
        for (table, key), value in entries:
            tables.setdefault(table, {})[key] = value
        lines = [f'"{k}" = {_toml_value(v)}' for k, v in tables.pop("", {}).items()]
        for table, items in tables.items():
            lines.append(f"[{table}]")
            lines += [f'"{k}" = {_toml_value(v)}' for k, v in items.items()]
        config_file.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for args, user in ((("list",), "sarah.martinez"), (("sla", "policy"), "sarah.martinez"),
                       (("show", CODE), "sarah.martinez"), (("sla", "explain", CODE), "admin"),
                       (("create", "--title", "T", "--category", "Candidate Issue", "--priority",
                         "low", "--description", "d"), "john.smith"),
                       (("hold", CODE, "--reason", "r", "--until", "tomorrow 9am"), "admin"),
                       (("jobs", "status"), None),
                       (("jobs", "sla-sweep", "--now", "2024-12-02T10:00:00-05:00"), None),
                       (("jobs", "digest", "--now", "2024-12-02T07:00:00-05:00"), None)):
        before = fast_snap()
        r = run(*args, user=user, now=MONDAY)
        if args[0] == "jobs" and r.exit_code == 1:
            # a job that fails records it (its heartbeat), and logs one timestamped line
            logged = [line for line in r.stderr.splitlines()
                      if not line.startswith("escalate: warning: ")]
            assert "Traceback" not in r.stderr and len(logged) == 1, r.stderr
            after = fast_snap()
            for table in ("job_run", "job_lock"):
                before.pop(table), after.pop(table)
            assert after == before
            continue
        check(r, before, fast_snap)
