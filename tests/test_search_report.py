"""`escalate search` and `escalate report` against hand-computed answers, on both stores."""
import csv
import io
import json

import pytest

NOW = "2024-11-20T12:00:00-05:00"


def create(run, title, description, category="Client Complaint", priority="high",
           user="john.smith", now=NOW, **extra):
    args = ["create", "--title", title, "--category", category, "--priority", priority,
            "--description", description]
    for key, value in extra.items():
        args += [f"--{key}", value]
    r = run(*args, user=user, now=now)
    assert r.exit_code == 0, r.stderr
    return r.stdout.strip()


def search(run, *args, user="sarah.martinez"):
    r = run("search", *args, "--format", "json", user=user, now=NOW)
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


def codes(hits):
    return [h["code"] for h in hits]


# -- search ---------------------------------------------------------------------------------

@pytest.fixture
def corpus(run, demo):
    """Seven escalations besides the demo's; 'chargeback' is in two of them and one note."""
    c = {}
    c["title"] = create(run, "Chargeback on the March invoice",
                        "Client's bank reversed the payment for March.")
    c["body"] = create(run, "Payment reversed",
                       "Finance saw the client file a chargeback with their bank.")
    c["ghost"] = create(run, "Candidate ghosted", "Candidate stopped answering calls.",
                        category="Candidate Issue", subcategory="Ghosting")
    c["noted"] = create(run, "Timesheet mismatch", "Hours on the timesheet do not match.")
    c["raise"] = create(run, "Raise request", "Candidate wants to increase the rate they are paid.",
                        category="Candidate Issue", subcategory="Compensation")
    c["portal"] = create(run, "Portal down", "The timesheet portal was down all morning.",
                         category="System/Process Failure")
    c["resolved"] = create(run, "Duplicate invoice", "The client received the invoice twice.")
    assert run("claim", c["resolved"], user="sarah.martinez").exit_code == 0
    r = run("resolve", c["resolved"], "--notes",
            "Finance voided the duplicate invoice and confirmed with the client by phone.",
            user="sarah.martinez", now=NOW)
    assert r.exit_code == 0, r.stderr
    r = run("note", c["noted"], "The client hinted at a chargeback if this drags on.",
            user="sarah.martinez", now=NOW)
    assert r.exit_code == 0, r.stderr
    r = run("request-info", c["ghost"], "--message", "Did the candidate sign the offer letter?",
            user="sarah.martinez", now=NOW)
    assert r.exit_code == 0, r.stderr
    return c


def test_search_ranks_title_above_description_and_finds_notes(run, corpus):
    hits = search(run, "chargeback")
    assert set(codes(hits)) == {corpus["title"], corpus["body"], corpus["noted"]}
    ranked = [c for c in codes(hits) if c in (corpus["title"], corpus["body"])]
    assert ranked == [corpus["title"], corpus["body"]]       # title weighs more than description
    by_code = {h["code"]: h for h in hits}
    assert by_code[corpus["title"]]["matched"] == ["title"]
    assert by_code[corpus["title"]]["snippet"] == "[Chargeback] on the March invoice"
    assert by_code[corpus["body"]]["matched"] == ["description"]
    assert by_code[corpus["body"]]["snippet"] == ("Finance saw the client file a [chargeback] "
                                                  "with their bank.")
    note = by_code[corpus["noted"]]
    assert note["matched"] == ["note"]
    assert note["snippet"] == "The client hinted at a [chargeback] if this drags on."
    assert note["matches"][0]["activity_id"] is not None
    assert [h["rank"] for h in hits] == [1, 2, 3]


def test_search_stems_prefixes_and_phrases(run, corpus, demo):
    assert set(codes(search(run, "chargebacks"))) == {corpus["title"], corpus["body"],
                                                      corpus["noted"]}
    assert set(codes(search(run, "chargeb*"))) == {corpus["title"], corpus["body"],
                                                   corpus["noted"]}
    assert codes(search(run, '"rate increase"')) == [demo]    # not "increase the rate"
    assert set(codes(search(run, "increase", "rate"))) == {demo, corpus["raise"]}
    assert codes(search(run, "timesheet", "portal")) == [corpus["portal"]]    # every word


def test_search_status_filter_and_resolution_notes(run, corpus):
    assert codes(search(run, "voided")) == [corpus["resolved"]]
    hit = search(run, "voided")[0]
    assert hit["matched"] == ["resolution"] and hit["status"] == "resolved"
    assert codes(search(run, "invoice", "--status", "resolved")) == [corpus["resolved"]]
    assert corpus["resolved"] not in codes(search(run, "invoice", "--status", "open"))
    assert corpus["title"] in codes(search(run, "invoice", "--status", "open"))


def test_search_finds_activities(run, corpus):
    hit = search(run, "offer letter")
    assert codes(hit) == [corpus["ghost"]] and hit[0]["matched"] == ["message"]


def test_search_never_shows_internal_notes_to_an_ic(run, corpus):
    hits = search(run, "chargeback", user="john.smith")
    assert set(codes(hits)) == {corpus["title"], corpus["body"]}
    assert "hinted" not in json.dumps(hits)
    assert search(run, "hinted", user="john.smith") == []
    assert codes(search(run, "hinted")) == [corpus["noted"]]


def test_search_only_what_you_may_see(run, corpus):
    run("user", "add", "amy.wu", "--name", "Amy Wu", "--email", "amy@intime.com", "--role", "ic",
        "--pod", "Recruiting Pod A", user="admin")
    assert search(run, "chargeback", user="amy.wu") == []
    mine = create(run, "Chargeback question", "Amy asks about chargebacks.", user="amy.wu")
    assert codes(search(run, "chargeback", user="amy.wu")) == [mine]
    assert set(codes(search(run, "chargeback", user="olivia.park"))) == {
        corpus["title"], corpus["body"], corpus["noted"], mine}


def test_search_table_csv_and_errors(run, corpus):
    r = run("search", "chargeback", user="sarah.martinez", now=NOW)
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["rank", "code", "status", "title", "matched", "snippet"]
    first = search(run, "chargeback")[0]["code"]
    assert lines[2].split()[:3] == ["1", first, "PENDING"]
    r = run("search", "chargeback", "--format", "csv", user="sarah.martinez", now=NOW)
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [row["code"] for row in rows] == codes(search(run, "chargeback"))
    assert run("search", "zebra", user="sarah.martinez").stdout == "No matches.\n"
    r = run("search", "the", "of", user="sarah.martinez")
    assert r.exit_code == 2
    assert r.stderr == ("Error: Nothing to search for: give at least one word (common words "
                        "such as 'the' are ignored)\n")
    r = run("search", 'AND OR "unclosed (', "NEAR*", user="sarah.martinez")
    assert r.exit_code == 0, r.stderr         # query syntax is never passed through raw


def test_search_indexes_rows_written_before_the_migration(run, db_url, config_file):
    from escalate_cli import migrations
    from escalate_cli.context import App
    from escalate_cli.demo import load_demo
    app = App(db_url=db_url, env={"ESCALATE_CONFIG": str(config_file)})
    migrations.migrate(app.db, upto="0003_sla_policy_snapshot")
    load_demo(app)           # written by the 0003 schema: no search index yet
    app.close()
    assert run("init").exit_code == 0
    hits = search(run, "unauthorized")
    assert codes(hits) == ["ESC-2024-11-28-001"] and hits[0]["matched"] == ["title"]
    assert codes(search(run, "discovers")) == ["ESC-2024-11-28-001"]     # a timeline entry


# -- report ---------------------------------------------------------------------------------

SLA_24X7 = '\n[sla.critical]\ncalendar = "24x7"\n[sla.high]\ncalendar = "24x7"\n'


@pytest.fixture
def period(run, demo, config_file):
    """Five escalations in November, one in October; clocks in wall time (24x7).

    E1 high   Client Complaint  Nov 4 09:00  claimed +1h (met)   resolved +24h (met)
    E2 high   Client Complaint  Nov 5 09:00  claimed +6h (late)  resolved +72h (late)
    E3 crit   Candidate Issue   Nov 6 09:00  claimed +30m (met)  in progress, due Nov 7: late
    E4 crit   Candidate Issue   Nov 18 09:00 never claimed: response and resolution late
    E5 high   Candidate Issue   Nov 20 11:00 pending, nothing due yet
    E0 high   Client Complaint  Oct 20       outside the period
    """
    config_file.write_text(config_file.read_text() + SLA_24X7)
    e = {}

    def make(key, category, priority, day, time="09:00:00"):
        e[key] = create(run, f"Escalation {key}", f"Report test {key}.", category=category,
                        priority=priority, now=f"2024-{day}T{time}-05:00" if day[:2] == "11"
                        else f"2024-{day}T{time}-04:00")

    def claim(key, when):
        assert run("claim", e[key], user="sarah.martinez", now=when).exit_code == 0

    def resolve(key, when):
        r = run("resolve", e[key], "--notes", "Resolved for the report test, with notes long "
                "enough to pass.", user="sarah.martinez", now=when)
        assert r.exit_code == 0, r.stderr

    make("E0", "Client Complaint", "high", "10-20")
    make("E1", "Client Complaint", "high", "11-04")
    claim("E1", "2024-11-04T10:00:00-05:00")
    resolve("E1", "2024-11-05T09:00:00-05:00")
    make("E2", "Client Complaint", "high", "11-05")
    claim("E2", "2024-11-05T15:00:00-05:00")
    resolve("E2", "2024-11-08T09:00:00-05:00")
    make("E3", "Candidate Issue", "critical", "11-06")
    claim("E3", "2024-11-06T09:30:00-05:00")
    make("E4", "Candidate Issue", "critical", "11-18")
    make("E5", "Candidate Issue", "high", "11-20", "11:00:00")
    return e


def report(run, *args, user="sarah.martinez"):
    r = run("report", "--since", "2024-11-01", "--until", "2024-11-27", *args, "--format",
            "json", user=user, now=NOW)
    assert r.exit_code == 0, r.stderr
    return json.loads(r.stdout)


def test_report_totals(run, period):
    data = report(run)
    assert data["since"] == "2024-11-01T00:00:00-04:00"
    assert data["until"] == "2024-11-28T00:00:00-05:00"       # --until includes Nov 27
    assert data["groups"] == [] and data["by"] is None
    assert data["total"] == {
        "group": "all", "escalations": 5, "open": 3, "breached_now": 2,
        "response_decided": 4, "response_met": 2, "response_within_sla": 0.5,
        "resolved": 2, "resolution_decided": 4, "resolution_met": 1,
        "resolution_within_sla": 0.25,
        "median_response_seconds": 3600, "p90_response_seconds": 18000,      # 1800, 3600, 21600
        "median_resolution_seconds": 172800, "p90_resolution_seconds": 241920,  # 1d, 3d
    }


def test_report_by_category(run, period):
    data = report(run, "--by", "category")
    assert data["groups"] == [
        {"group": "Candidate Issue", "escalations": 3, "open": 3, "breached_now": 2,
         "response_decided": 2, "response_met": 1, "response_within_sla": 0.5,
         "resolved": 0, "resolution_decided": 2, "resolution_met": 0,
         "resolution_within_sla": 0.0,
         "median_response_seconds": 1800, "p90_response_seconds": 1800,
         "median_resolution_seconds": None, "p90_resolution_seconds": None},
        {"group": "Client Complaint", "escalations": 2, "open": 0, "breached_now": 0,
         "response_decided": 2, "response_met": 1, "response_within_sla": 0.5,
         "resolved": 2, "resolution_decided": 2, "resolution_met": 1,
         "resolution_within_sla": 0.5,
         "median_response_seconds": 12600, "p90_response_seconds": 19800,
         "median_resolution_seconds": 172800, "p90_resolution_seconds": 241920},
    ]
    assert data["total"]["group"] == "TOTAL" and data["total"]["escalations"] == 5


def test_report_by_priority_owner_and_pod(run, period):
    by_priority = report(run, "--by", "priority")["groups"]
    assert [(g["group"], g["escalations"], g["breached_now"]) for g in by_priority] == [
        ("critical", 2, 2), ("high", 3, 0)]
    by_owner = report(run, "--by", "owner")["groups"]
    assert [(g["group"], g["escalations"]) for g in by_owner] == [
        ("sarah.martinez", 3), ("(unowned)", 2)]
    by_pod = report(run, "--by", "pod")["groups"]
    assert [(g["group"], g["escalations"]) for g in by_pod] == [("Recruiting Pod A", 5)]


def test_report_weekly_trend(run, period):
    weekly = report(run, "--chart")["weekly"]
    assert weekly == [
        {"week": "2024-10-28", "escalations": 0, "response_within_sla": None,
         "resolution_within_sla": None},
        {"week": "2024-11-04", "escalations": 3, "response_within_sla": 0.6667,
         "resolution_within_sla": 0.3333},
        {"week": "2024-11-11", "escalations": 0, "response_within_sla": None,
         "resolution_within_sla": None},
        {"week": "2024-11-18", "escalations": 2, "response_within_sla": 0.0,
         "resolution_within_sla": 0.0},
        {"week": "2024-11-25", "escalations": 0, "response_within_sla": None,
         "resolution_within_sla": None},
    ]
    r = run("report", "--since", "2024-11-01", "--until", "2024-11-27", "--chart",
            user="sarah.martinez", now=NOW)
    assert "2024-11-04     3  █████████████░░░░░░░  67%  " \
           "███████░░░░░░░░░░░░░  33%" in r.stdout


def test_report_table_csv_and_html(run, period, tmp_path):
    r = run("report", "--since", "2024-11-01", "--until", "2024-11-27", "--by", "category",
            user="sarah.martinez", now=NOW)
    assert r.exit_code == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].split() == ["category", "escalations", "open", "breached", "resp", "SLA",
                                "resol", "SLA", "med", "respond", "p90", "respond", "med",
                                "resolve", "p90", "resolve"]
    assert lines[3].split() == ["Client", "Complaint", "2", "0", "0", "50%", "50%", "3h", "30m",
                                "5h", "30m", "2d", "0h", "2d", "19h", "12m"]
    assert lines[-1].split()[:6] == ["TOTAL", "5", "3", "2", "50%", "25%"]
    r = run("report", "--since", "2024-11-01", "--until", "2024-11-27", "--by", "category",
            "--format", "csv", user="sarah.martinez", now=NOW)
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [(x["group"], x["escalations"], x["response_within_sla"]) for x in rows] == [
        ("Candidate Issue", "3", "0.5"), ("Client Complaint", "2", "0.5"), ("TOTAL", "5", "0.5")]
    page = tmp_path / "sla.html"
    r = run("report", "--since", "2024-11-01", "--until", "2024-11-27", "--html", str(page),
            user="sarah.martinez", now=NOW)
    assert r.exit_code == 0, r.stderr
    html = page.read_text()
    assert "<svg" in html and "SLA compliance by week" in html and "<td>67%</td>" in html


def test_report_counts_only_what_you_may_see_and_checks_dates(run, period):
    run("user", "add", "amy.wu", "--name", "Amy Wu", "--email", "amy@intime.com", "--role", "ic",
        user="admin")
    assert report(run, user="amy.wu")["total"]["escalations"] == 0
    assert report(run, user="olivia.park")["total"]["escalations"] == 5
    r = run("report", "--since", "2024-12-01", "--until", "2024-11-01", user="sarah.martinez")
    assert r.exit_code == 2 and "--since must be before --until" in r.stderr
    r = run("report", "--since", "someday soonish", user="sarah.martinez")
    assert r.exit_code == 2


def test_every_matching_plan_gives_the_same_answers(run, corpus, monkeypatch):
    """Few visible / many visible, rare / common words: the store takes different paths."""
    from escalate_cli import fulltext
    queries = [("chargeback",), ("invoice",), ("timesheet",), ('"rate increase"',),
               ("chargeb*",), ("invoice", "--status", "resolved")]
    users = ("sarah.martinez", "john.smith", "olivia.park")

    def answers():
        return {(u, q): [(h["code"], h["matched"]) for h in search(run, *q, user=u)]
                for u in users for q in queries}

    narrow = answers()                               # tests see little; words are rare
    monkeypatch.setattr(fulltext, "RESTRICTED", 0)   # as if everyone saw a lot
    monkeypatch.setattr(fulltext, "RARE", 0)         # as if every word were common
    assert answers() == narrow
    assert narrow[("john.smith", ("chargeback",))] and not any(
        "note" in m for _, m in narrow[("john.smith", ("chargeback",))])
