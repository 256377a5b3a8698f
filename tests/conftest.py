"""Fixtures: every store test runs on SQLite and on PostgreSQL.

PostgreSQL is ESCALATE_TEST_DB (default postgresql://postgres@127.0.0.1:5432/test); each
test gets a schema of its own (search_path in the URL), dropped afterwards.
"""
import os
import uuid

import pytest
from click.testing import CliRunner

PG_URL = os.environ.get("ESCALATE_TEST_DB", "postgresql://postgres@127.0.0.1:5432/test")
STORES = os.environ.get("ESCALATE_TEST_STORES", "sqlite,postgres").split(",")

USE_CASE_NOW = "2024-11-29T08:00:00-05:00"


def _pg_connect():
    import psycopg2
    from urllib.parse import urlsplit
    p = urlsplit(PG_URL)
    return psycopg2.connect(dbname=p.path.lstrip("/"), user=p.username, host=p.hostname,
                            port=p.port or 5432, password=p.password)


@pytest.fixture(params=STORES)
def db_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/escalate.db"
        return
    schema = "t_" + uuid.uuid4().hex[:12]
    conn = _pg_connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE SCHEMA "{schema}"')
    try:
        yield f"{PG_URL}?options=-csearch_path%3D{schema}"
    finally:
        with conn.cursor() as cur:
            cur.execute(f'DROP SCHEMA "{schema}" CASCADE')
        conn.close()


@pytest.fixture
def config_file(tmp_path):
    """An empty settings file, so the developer's own settings never leak into tests."""
    path = tmp_path / "config.toml"
    path.write_text('company = "InTime"\ntimezone = "America/New_York"\n')
    return path


@pytest.fixture
def base_env(db_url, config_file, tmp_path):
    return {"ESCALATE_DB": db_url, "ESCALATE_CONFIG": str(config_file), "NO_COLOR": "1",
            "ESCALATE_USER": "", "ESCALATE_NOW": "", "EDITOR": "false",
            "HOME": str(tmp_path), "XDG_DATA_HOME": str(tmp_path / "data")}


class Runner:
    """Drive the real command as a user would, through click's CliRunner."""

    def __init__(self, env):
        self.env = env

    def __call__(self, *args, user=None, now=None, input=None, env=None):
        from escalate_cli.cli import cli
        e = dict(self.env)
        if user:
            e["ESCALATE_USER"] = user
        if now:
            e["ESCALATE_NOW"] = now
        e.update(env or {})
        e = {k: v for k, v in e.items() if v != ""}
        for k in ("ESCALATE_USER", "ESCALATE_NOW"):
            e.setdefault(k, None)
        runner = CliRunner()
        result = runner.invoke(cli, [str(a) for a in args], env=e, input=input,
                               catch_exceptions=False, prog_name="escalate")
        return result


@pytest.fixture
def run(base_env):
    return Runner(base_env)


@pytest.fixture
def demo(run):
    result = run("init", "--demo")
    assert result.exit_code == 0, result.stderr
    return "ESC-2024-11-28-001"


def snapshot(db_url):
    """Every row of every table, to prove a refused command wrote nothing."""
    from escalate_cli.db import make_database
    db = make_database(db_url)
    db.connect()
    try:
        out = {}
        for table in sorted(db.get_tables()):
            cur = db.execute_sql(f'SELECT * FROM "{table}" ORDER BY 1')
            out[table] = [tuple(bytes(v) if isinstance(v, memoryview) else v for v in row)
                          for row in cur.fetchall()]
        return out
    finally:
        db.close()


@pytest.fixture
def snap(db_url):
    return lambda: snapshot(db_url)


# -- delivery: a real SMTP server and a stand-in SMS gateway (comms) ----------------------

@pytest.fixture
def smtp(base_env):
    """aiosmtpd on a free localhost port, collecting what arrives (parsed with ``email``);
    escalate is pointed at it through ESCALATE_SMTP_HOST/PORT."""
    from smtp_server import SmtpServer
    server = SmtpServer().start()
    base_env["ESCALATE_SMTP_HOST"] = "127.0.0.1"
    base_env["ESCALATE_SMTP_PORT"] = str(server.port)
    yield server
    server.stop()


@pytest.fixture
def sms_gateway(base_env):
    """A local HTTP endpoint standing in for the SMS gateway (Apprise json:// URL)."""
    from smtp_server import SmsGateway
    gateway = SmsGateway().start()
    base_env["ESCALATE_SMS_URL"] = gateway.url
    yield gateway
    gateway.stop()
