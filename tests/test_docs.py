"""Documentation that cannot drift: the settings reference and the JSON Schemas."""
import json
import pathlib

import jsonschema

from escalate_cli.config import reference_markdown

DOCS = pathlib.Path(__file__).resolve().parent.parent / "docs"


def test_settings_reference_is_generated_from_the_code():
    assert (DOCS / "settings.md").read_text() == reference_markdown(), \
        "run: escalate config reference > docs/settings.md"


def _schema(name):
    schema = json.loads((DOCS / "schema" / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema, format_checker=jsonschema.FormatChecker())


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
