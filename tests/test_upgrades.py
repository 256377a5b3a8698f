"""Upgrades: a database made by each earlier schema version, filled with data, upgrades with
every row intact, on both stores; then the tool works on it.

The data: a full database of the current version after a realistic day (every table has
rows: the use case's escalation claimed, noted, emailed, tasked, called, messaged, held,
escalated further and resolved; an IC resolution approved; invoices and a rate approval;
sweeps, reminders, digests and failed deliveries). For each version, a new database is made
by the migrations up to it, and every row of the tables that version has is copied in, with
the columns it has: exactly what a database of that version holds.
"""
import json
import uuid

import pytest

from escalate_cli import migrations
from escalate_cli.db import make_database

from rel_helpers import is_postgres

pytestmark = pytest.mark.slow
CODE = "ESC-2024-11-28-001"
SARAH, JOHN = "sarah.martinez", "john.smith"
NOTES = "Corrected invoice issued at the agreed $110/hr; the client accepted the apology."


def _fill(run, tmp_path):
    """A day of the use case, touching every table."""
    invoices = tmp_path / "invoices.csv"
    invoices.write_text("number,contract,period,hours,bill_rate\n"
                        "INV-2024-11-0042,C-2024-08-15-GOOG-001,2024-11,160,120\n")
    t = "2024-11-29T{}:00-05:00"
    steps = [
        ("admin", t.format("07:00"), ("import", "invoices", str(invoices))),
        (SARAH, t.format("07:05"), ("contract", "approve-rate", "C-2024-08-15-GOOG-001",
                                    "--bill-rate", "115", "--effective", "2024-12-01")),
        (SARAH, t.format("08:00"), ("claim", CODE)),
        (SARAH, t.format("08:05"), ("note", CODE, "Root cause: the new template")),
        (SARAH, t.format("08:10"), ("email", CODE, "-t", "client-apology", "--var", "credit=500",
                                    "--var", "call_time=9:00 AM")),
        (SARAH, t.format("08:20"), ("task", CODE, "--title", "Issue corrected invoice",
                                    "--assign", "finance", "--due", "today 17:00")),
        (SARAH, t.format("08:25"), ("call", "schedule", CODE, "--at", "2024-11-29 09:00",
                                    "--agenda", "Apologise")),
        (SARAH, t.format("08:30"), ("message", CODE, "Good catch, thank you",
                                    "--one-on-one", "tomorrow")),
        (SARAH, t.format("08:35"), ("hold", CODE, "--reason", "Waiting for Finance")),
        (SARAH, t.format("08:50"), ("resume", CODE)),
        (SARAH, t.format("09:20"), ("call", "log", CODE, "--duration", "15", "--outcome",
                                    "positive", "--summary", "Accepted")),
        ("maria.lopez", t.format("10:00"), ("task", "done", "1", "--note", "Sent")),
        (SARAH, t.format("10:30"), ("escalate", CODE, "--to", "coo", "--note", "FYI, strategic")),
        ("olivia.park", t.format("11:00"), ("resolve", CODE, "--notes", NOTES)),
        (JOHN, t.format("11:30"), ("create", "--title", "Timesheet mix-up", "--category",
                                   "Candidate Issue", "--priority", "low", "--description",
                                   "Two timesheets for one week", "--assessment", "Minor")),
        (JOHN, t.format("11:40"), ("resolve", "ESC-2024-11-29-001", "--notes", NOTES)),
        (SARAH, t.format("11:45"), ("approve", "ESC-2024-11-29-001")),
        (JOHN, t.format("11:50"), ("create", "--title", "Candidate ghosting", "--category",
                                   "Candidate Issue", "--priority", "high", "--description",
                                   "No answer since Monday")),
        (None, t.format("16:00"), ("jobs", "sla-sweep")),
        (None, t.format("16:05"), ("jobs", "reminders")),
        (None, t.format("16:10"), ("jobs", "digest")),
        (None, t.format("16:15"), ("jobs", "rate-watch")),
        (None, t.format("16:20"), ("jobs", "deliver")),
    ]
    for user, now, args in steps:
        r = run(*args, user=user, now=now)
        assert r.exit_code == 0, (args, r.stderr)


def _columns(db, table):
    """Stored columns; not PostgreSQL's generated search vector, which is derived from them."""
    return [c.name for c in db.get_columns(table) if c.name != "search_tsv"]


def _rows(db, table, columns):
    cols = ", ".join(f'"{c}"' for c in columns)
    cur = db.execute_sql(f'SELECT {cols} FROM "{table}" ORDER BY 1')
    return [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
            for row in cur.fetchall()]


def _tables(db):
    """The store's own tables: not SQLite's full-text index (virtual tables and their shadow
    tables), which the triggers fill from the rows copied in."""
    return [t for t in db.get_tables() if "_fts" not in t]


def _dump(db):
    out = {}
    for table in _tables(db):
        columns = _columns(db, table)
        out[table] = dict(columns=columns, rows=_rows(db, table, columns))
    return out


class Stores:
    """New empty stores of the test's kind: SQLite files, or PostgreSQL schemas."""

    def __init__(self, db_url, tmp_path):
        self.db_url, self.tmp_path, self.schemas = db_url, tmp_path, []

    def new(self, name):
        if not is_postgres(self.db_url):
            return f"sqlite:///{self.tmp_path}/{name}.db"
        from conftest import PG_URL, _pg_connect
        schema = "t_" + uuid.uuid4().hex[:12]
        conn = _pg_connect()
        conn.autocommit = True
        conn.cursor().execute(f'CREATE SCHEMA "{schema}"')
        conn.close()
        self.schemas.append(schema)
        return f"{PG_URL}?options=-csearch_path%3D{schema}"

    def drop(self):
        from conftest import _pg_connect
        if self.schemas:
            conn = _pg_connect()
            conn.autocommit = True
            for schema in self.schemas:
                conn.cursor().execute(f'DROP SCHEMA "{schema}" CASCADE')
            conn.close()


def _copy(source, target_url, version):
    """A database of schema ``version`` holding every row of ``source`` it has room for."""
    db = make_database(target_url)
    db.connect()
    try:
        assert migrations.migrate(db, upto=version)[-1] == version
        postgres = is_postgres(target_url)
        with db.atomic():
            if postgres:
                db.execute_sql("SET LOCAL session_replication_role = replica")   # FKs: any order
            else:
                db.execute_sql("PRAGMA defer_foreign_keys = ON")
            for table in _tables(db):
                if table == "schema_migrations":
                    continue
                columns = [c for c in _columns(db, table) if c in source[table]["columns"]]
                index = [source[table]["columns"].index(c) for c in columns]
                rows = source[table]["rows"]
                marks = "(" + ", ".join([db.param] * len(columns)) + ")"
                names = ", ".join(f'"{c}"' for c in columns)
                if rows:
                    db.execute_sql(f'INSERT INTO "{table}" ({names}) VALUES '
                                   + ", ".join([marks] * len(rows)),
                                   [row[i] for row in rows for i in index])
                if postgres and "id" in columns:       # as a real database of that version
                    db.execute_sql(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                                   f"COALESCE((SELECT MAX(\"id\") FROM \"{table}\"), 1))")
        return _dump(db)
    finally:
        db.close()


def test_every_earlier_schema_upgrades_with_every_row_intact(run, demo, db_url, smtp, tmp_path):
    _fill(run, tmp_path)
    full = make_database(db_url)
    full.connect()
    try:
        full.execute_sql('INSERT INTO "job_lock" ("name", "holder", "expires_at") VALUES '
                         f"({full.param}, {full.param}, {full.param})",
                         ("rate-watch", "old-host:4242:deadbeef", "2024-11-29 21:30:00"))
        source = _dump(full)
    finally:
        full.close()
    empty = sorted(t for t, d in source.items() if not d["rows"])
    assert empty == [], f"tables the fill left empty: {empty}"
    stores = Stores(db_url, tmp_path)
    names = [name for name, _ in migrations.MIGRATIONS]
    try:
        for version in names:
            url = stores.new(f"v{version}")
            before = _copy(source, url, version)
            r = run("--db", url, "init")
            assert r.exit_code == 0, (version, r.stderr)
            ran = len(names) - names.index(version) - 1
            assert f"({len(names)} migrations; {ran} applied now)" in r.stderr, r.stderr
            db = make_database(url)
            db.connect()
            try:
                after = _dump(db)
            finally:
                db.close()
            assert set(after) == set(source), version
            for table, old in before.items():
                if table == "schema_migrations":
                    continue
                new = after[table]
                assert set(old["columns"]) <= set(new["columns"]), (version, table)
                index = [new["columns"].index(c) for c in old["columns"]]
                kept = [tuple(row[i] for i in index) for row in new["rows"]]
                assert kept == old["rows"], (version, table)
                added = [c for c in new["columns"] if c not in old["columns"]]
                for c in added:             # new columns start empty on old rows
                    assert {row[new["columns"].index(c)] for row in new["rows"]} <= {None}, \
                        (version, table, c)
            _works(run, url, version)
    finally:
        stores.drop()


def _works(run, url, version):
    """The upgraded database serves the commands and the jobs."""
    def escalate(*args, user=SARAH, now="2024-12-02T10:00:00-05:00"):
        r = run("--db", url, *args, user=user, now=now, env={"ESCALATE_SMTP_PORT": "9"})
        assert r.exit_code == 0, (version, args, r.stderr)
        return r.stdout
    shown = json.loads(escalate("show", CODE, "--format", "json"))
    assert (shown["status"], shown["resolution_notes"]) == ("resolved", NOTES)
    assert [a["type"] for a in shown["timeline"]].count("note") == 1
    explained = json.loads(escalate("sla", "explain", "ESC-2024-11-29-002", "--format", "json"))
    assert explained
    code = escalate("create", "--title", "After the upgrade", "--category", "Rate Exception",
                    "--priority", "medium", "--description", "New", user=JOHN).strip()
    assert code == "ESC-2024-12-02-001"
    escalate("claim", code)
    escalate("jobs", "sla-sweep", user=None)
    escalate("jobs", "digest", user=None, now="2024-12-03T07:00:00-05:00")
    assert code in escalate("list")
