"""Documentation that cannot drift: the settings reference and the JSON Schemas."""
import csv
import datetime as dt
import io
import json
import pathlib
import re
import shlex

import click
import jsonschema
import pytest

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


# One sample value per documented key: a new key in the reference needs one here too.
SAMPLES = {
    "company": "InTime", "timezone": "America/New_York", "base_url": "https://esc.intime.com",
    "business_hours.days": ["mon", "tue", "wed", "thu", "fri"], "business_hours.start": "08:00",
    "business_hours.end": "18:00", "business_hours.holidays": ["2024-12-25"],
    "holidays": ["2024-12-26"], "sla.warn_share": 0.8, "sla.version": "2025-01",
    "sla.PRIORITY.response_hours": 2, "sla.PRIORITY.resolution_hours": 30,
    "sla.PRIORITY.resolution_business_days": 4, "sla.PRIORITY.calendar": "business",
    "sla.PRIORITY.escalate_to": "coo", "smtp.host": "smtp.intime.com", "smtp.port": 587,
    "smtp.user": "escalations", "smtp.password": "pw", "smtp.starttls": True, "smtp.ssl": False,
    "smtp.timeout": 20, "smtp.from": "escalations@intime.com",
    "sms.url": "json://127.0.0.1:9/sms?:to={to}", "outbox.max_attempts": 5,
    "outbox.backoff_seconds": 30, "outbox.backoff_max_seconds": 3600,
    "outbox.lease_seconds": 120, "templates.folder": "/etc/escalate/templates",
    "attachments.max_bytes": 1000000, "digest.send_empty": True, "jobs.after_hours": "send",
    "jobs.catch_up_after": "1h", "jobs.call_reminder": "10m", "jobs.task_due_soon": "12h",
    "jobs.follow_up_after": "72h", "jobs.disabled": ["rate-watch"], "jobs.batch": 200,
    "jobs.schedule.JOB": "10m", "jobs.stale_after.JOB": "30m", "jobs.rate_watch.pod": "Pod A",
    "guide.KEY": {"steps": ["Review the invoice", "Call the client"]},
    "insight.guide_file": "",
}


def _toml(samples):
    from escalate_cli.config import PLACEHOLDERS
    tables = {}
    for key, value in samples.items():
        for name, choices in PLACEHOLDERS.items():
            key = key.replace(name, "billing" if name == "KEY" else choices[1])
        if isinstance(value, dict):                 # a table of its own: [guide.billing]
            tables.setdefault(key, {}).update(value)
            continue
        *table, leaf = key.split(".")
        tables.setdefault(".".join(table), {})[leaf] = value
    out = []
    for table, values in sorted(tables.items()):
        if table:
            out.append(f"[{table}]")
        out.extend(f"{k if k.isidentifier() else json.dumps(k)} = {json.dumps(v)}"
                   for k, v in values.items())
    return "\n".join(out) + "\n"


def test_every_documented_setting_is_read_and_nothing_else(tmp_path, capsys):
    """The reference, the loader and the warning about unknown keys agree: a file with every
    documented key loads without a warning and takes effect; a typo is named."""
    from escalate_cli.config import REFERENCE, load_settings
    from jobs.conf import job_settings
    keys = {key for key, *_ in REFERENCE if key}
    assert keys == set(SAMPLES), "give each new key of the reference a sample value here"
    path = tmp_path / "config.toml"
    path.write_text(_toml(SAMPLES))
    path.chmod(0o600)
    settings = load_settings({"ESCALATE_CONFIG": str(path)})
    assert capsys.readouterr().err == ""
    assert (settings.smtp_port, settings.outbox_max_attempts, settings.warn_share) == (587, 5, 0.8)
    assert settings.sla["high"]["calendar"] == "business" and settings.digest_send_empty is True

    class _App:
        def get_settings(self):
            return settings
    js = job_settings(_App())
    assert js.after_hours == "send" and js.batch == 200 and js.rate_watch_pod == "Pod A"
    from jobs.timing import parse_schedule
    assert str(js.schedule["deliver"]) == str(parse_schedule("10m"))         # not the 1m default
    assert js.stale_after["deliver"].total_seconds() == 1800
    path.write_text('company = "InTime"\n[smtp]\nhots = "smtp.intime.com"\n[sla.urgent]\n'
                    'response_hours = 1\n[sla.high]\nresponse_hours = 2\n')
    load_settings({"ESCALATE_CONFIG": str(path)})
    err = capsys.readouterr().err.splitlines()
    assert [line.split("'")[1] for line in err] == ["smtp.hots", "sla.urgent.response_hours"]
    assert all("is ignored (see docs/settings.md" in line for line in err)


def test_placeholders_name_the_real_priorities_and_jobs():
    from escalate_cli.config import JOB_NAMES, PRIORITY_NAMES
    from escalate_cli.models import PRIORITIES
    from jobs.conf import JOB_NAMES as JOBS
    assert tuple(PRIORITY_NAMES) == tuple(PRIORITIES) and tuple(JOB_NAMES) == tuple(JOBS)


def test_an_unknown_setting_is_one_warning_not_a_failure(run, demo, config_file):
    config_file.write_text(config_file.read_text() + '[smtp]\nhots = "smtp.intime.com"\n')
    r = run("list", user="sarah.martinez")
    assert r.exit_code == 0 and "ESC-2024-11-28-001" in r.stdout
    assert r.stderr.startswith("escalate: warning: unknown setting 'smtp.hots' in ")


# -- every command the documentation shows exists, with the options it shows ----------------

ROOT = DOCS.parent
STOPS = {"|", "||", "&&", ";", ">", ">>", "<", "2>", "&", "2>&1", ")"}


def _blocks(text):
    """The lines of every fenced code block (continuation lines joined), and every inline
    code span that starts with `escalate `."""
    for block in re.findall(r"^[ \t]*```[a-z]*\n(.*?)^[ \t]*```", text, re.S | re.M):
        block = re.sub(r"\\\n\s*(> )?", " ", block)
        yield from (line.strip() for line in block.splitlines())
    outside = re.sub(r"^[ \t]*```.*?^[ \t]*```", "", text, flags=re.S | re.M)
    yield from re.findall(r"`(escalate [^`]+)`", outside.replace("\n", " "))


def invocations(text):
    """(line, args) of each `escalate ...` in the code blocks of ``text``."""
    for line in _blocks(text):
        line = line[2:] if line.startswith("$ ") else line
        line = line.split("=", 1)[1] if re.match(r"^[A-Z][A-Za-z]*=/", line) else line  # ini
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError:
            continue
        for i, token in enumerate(tokens):
            before = tokens[i - 1] if i else ""
            if token.rsplit("/", 1)[-1] != "escalate" or before.startswith("-") \
                    or before.rsplit("/", 1)[-1] == "escalate":        # `escalate escalate CODE`
                continue
            args = []
            for t in tokens[i + 1:]:
                if t in STOPS or t.startswith((">", "2>")):
                    break
                args.append(t.strip("[]"))
            yield line, args


def _problem(args):
    """Why ``escalate ARGS`` would not parse, or None."""
    from escalate_cli.cli import cli
    from escalate_cli.commands.common import DefaultGroup
    command, chain, i = cli, [cli], 0

    def where():
        return " ".join(["escalate"] + [c.name for c in chain[1:]])
    while i < len(args):
        arg = args[i]
        if arg.startswith("-") and arg != "-":
            name = arg.split("=", 1)[0]
            options = [p for c in chain for p in c.params if isinstance(p, click.Option)]
            options.append(click.Option(["-h", "--help"], is_flag=True))
            match = [o for o in options if name in o.opts + o.secondary_opts]
            if not match:
                return f"no option {name} for '{where()}'"
            i += 1 if (match[0].is_flag or "=" in arg or match[0].count) else 2
            continue
        if isinstance(command, click.Group):
            sub = command.commands.get(arg)
            if sub is None and isinstance(command, DefaultGroup):
                sub = command.commands[command.default_command]
            elif sub is None and "%" not in arg:                  # systemd's %i
                return f"no command '{arg}' in '{where()}'"
            else:
                i += 1
            if sub is None:
                break
            command = sub
            chain.append(command)
            continue
        i += 1
    return None


@pytest.mark.parametrize("doc", ["README.md", "docs/operations.md", "crontab.example"])
def test_every_command_in_the_docs_exists(doc):
    text = (ROOT / doc).read_text()
    if doc == "crontab.example":
        text = "```\n" + text + "```\n"
    found = list(invocations(text))
    assert len(found) > 5
    problems = [f"{line}: {why}" for line, args in found if (why := _problem(args))]
    assert not problems, "\n".join(problems)
