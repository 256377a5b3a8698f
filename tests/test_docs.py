"""Documentation that cannot drift: the settings reference and the JSON Schemas."""
import csv
import datetime as dt
import io
import json
import pathlib

import jsonschema

from escalate_cli.config import reference_markdown

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"


def test_settings_reference_is_generated_from_the_code():
    assert (DOCS / "settings.md").read_text() == reference_markdown(), \
        "run: escalate config reference > docs/settings.md"


class _Validator:
    """The schema's validator, plus a strict check of every ``date-time`` (jsonschema checks
    that format only when an optional package is installed): ISO 8601 with an offset."""

    def __init__(self, schema):
        self.schema = schema
        self.inner = jsonschema.Draft202012Validator(schema,
                                                     format_checker=jsonschema.FormatChecker())

    def validate(self, obj):
        self.inner.validate(obj)
        for key, spec in self.schema["properties"].items():
            if spec.get("format") == "date-time" and obj.get(key) is not None:
                parsed = dt.datetime.fromisoformat(obj[key])
                assert parsed.utcoffset() is not None, (key, obj[key])


def _schema(name):
    schema = json.loads((DOCS / "schema" / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return _Validator(schema)


def test_escalation_json_matches_its_schema(run, demo):
    validator = _schema("escalation")
    run("claim", "ESC-2024-11-28-001", user="sarah.martinez", now="2024-11-29T08:02:00-05:00")
    run("note", "ESC-2024-11-28-001", "found it", user="sarah.martinez")
    items = json.loads(run("list", "--status", "all", "--format", "json", user="sarah.martinez").stdout)
    assert items
    for item in items:
        validator.validate(item)
    detail = json.loads(run("show", "ESC-2024-11-28-001", "--format", "json", user="sarah.martinez").stdout)
    validator.validate(detail)
    assert detail["timeline"] and detail["attachments"]


def test_event_json_lines_match_their_schema(run, demo):
    validator = _schema("event")
    run("claim", "ESC-2024-11-28-001", user="sarah.martinez")
    run("note", "ESC-2024-11-28-001", "internal finding", user="sarah.martinez")
    lines = run("events", user="sarah.martinez").stdout.splitlines()
    names = set()
    for line in lines:
        event = json.loads(line)
        validator.validate(event)
        names.add(event["name"])
    assert {"escalation.created", "escalation.assigned", "escalation.investigated"} <= names


def test_task_json_matches_its_schema(run, demo):
    validator = _schema("task")
    code = "ESC-2024-11-28-001"
    sarah = dict(user="sarah.martinez", now="2024-11-29T08:20:00-05:00")
    assert run("claim", code, **sarah).exit_code == 0
    r = run("task", code, "--title", "Issue corrected invoice", "--assign", "finance",
            "--due", "today 17:00", "--priority", "high", **sarah)
    assert r.exit_code == 0, r.stderr
    r = run("task", code, "--title", "1:1 on contract checks", "--assign", "john.smith",
            "--due", "2024-11-29T08:30:00-05:00", "--description", "Bring the template", **sarah)
    assert r.exit_code == 0, r.stderr
    done = run("task", "done", "1", "--note", "Corrected invoice sent", user="maria.lopez",
               now="2024-11-29T16:00:00-05:00")
    assert done.exit_code == 0, done.stderr
    later = dict(user="sarah.martinez", now="2024-11-29T17:00:00-05:00")
    items = json.loads(run("task", "list", "--all", "--format", "json", **later).stdout)
    assert [t["id"] for t in items] == [2, 1]
    for item in items:
        validator.validate(item)
    open_task, done_task = items
    assert open_task["overdue"] is True and open_task["assignee_kind"] == "user"
    assert done_task["status"] == "done" and done_task["done_by"] == "maria.lopez"
    assert done_task["assignee"] == "finance" and done_task["assignee_kind"] == "team"
    assert done_task["done_at"] == "2024-11-29T16:00:00-05:00"
    # CSV for spreadsheets: a header row, then one row per task, commas and quotes intact
    table = list(csv.reader(io.StringIO(run("task", "list", "--all", "--format", "csv",
                                            **later).stdout)))
    assert table[0] == ["id", "title", "assignee", "due", "priority", "status", "overdue",
                        "escalation"]
    assert [row[1] for row in table[1:]] == ["1:1 on contract checks", "Issue corrected invoice"]


def test_queue_csv_is_a_spreadsheet(run, demo):
    run("create", "--title", 'Rate "exception", urgent', "--category", "Rate Exception",
        "--priority", "low", "--description", "d", user="john.smith",
        now="2024-11-29T09:00:00-05:00")
    out = run("list", "--status", "all", "--format", "csv", user="sarah.martinez",
              now="2024-11-29T10:00:00-05:00").stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    assert {r["title"] for r in rows} == {"Unauthorized Rate Increase", 'Rate "exception", urgent'}
    assert all(r["code"].startswith("ESC-") for r in rows)
