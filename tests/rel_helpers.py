"""Helpers of the reliability suite: the domain in-process (fast set-up), real processes,
PostgreSQL sessions of a test's own schema, and waiting for a condition."""
import os
import subprocess
import sys
import time
from urllib.parse import parse_qsl, urlsplit

MONDAY = "2024-12-02T10:00:00-05:00"


class Domain:
    """Call domain services in this process as a given user at a given time (set-up that
    would cost a process or a CliRunner invocation per step)."""

    def __init__(self, db_url, config_file):
        self.db_url = db_url
        self.env = {"ESCALATE_CONFIG": str(config_file)}

    def app(self, login=None, now=MONDAY):
        from escalate_cli.config import parse_now
        from escalate_cli.context import App
        return App(db_url=self.db_url, login=login, now_override=parse_now(now), env=self.env)

    def __call__(self, login, fn, *args, now=MONDAY, **kwargs):
        app = self.app(login, now)
        try:
            app.db
            return fn(app, *args, **kwargs)
        finally:
            app.close()


def proc_env(base_env, user=None, now=None, **extra):
    env = dict(os.environ)
    env.update({k: v for k, v in base_env.items() if v})
    for k in ("ESCALATE_USER", "ESCALATE_NOW"):
        env.pop(k, None)
    if user:
        env["ESCALATE_USER"] = user
    if now:
        env["ESCALATE_NOW"] = now
    env.update({k: str(v) for k, v in extra.items() if v is not None})
    return env


def spawn(env, *args, stdin=None):
    return subprocess.Popen([sys.executable, "-m", "escalate_cli", *map(str, args)], env=env,
                            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def finish(procs, timeout=180):
    """(exit code, stdout, stderr) of each process."""
    out = []
    for p in procs:
        stdout, stderr = p.communicate(timeout=timeout)
        out.append((p.returncode, stdout, stderr))
    return out


def wait_until(predicate, timeout=30, every=0.01, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"timed out waiting for {what}")


def is_postgres(db_url):
    return db_url.startswith("postgres")


def sqlite_path(db_url):
    return db_url[len("sqlite:///"):]


def with_app_name(db_url, name):
    """The URL with a PostgreSQL application_name, to find that process's session."""
    return f"{db_url}{'&' if '?' in db_url else '?'}application_name={name}"


def pg_session(db_url, autocommit=True):
    """A psycopg2 connection on the test's own schema (the search_path of its URL)."""
    import psycopg2
    p = urlsplit(db_url)
    params = dict(parse_qsl(p.query))
    conn = psycopg2.connect(dbname=p.path.lstrip("/"), user=p.username, host=p.hostname,
                            port=p.port or 5432, password=p.password,
                            options=params.get("options", ""))
    conn.autocommit = autocommit
    return conn


def pg_backends(admin, app_name, where="TRUE"):
    with admin.cursor() as cur:
        cur.execute(f"SELECT pid, state, wait_event_type, backend_xid IS NOT NULL "
                    f"FROM pg_stat_activity WHERE application_name = %s AND {where}", (app_name,))
        return cur.fetchall()


def sqlite_write_locked(path):
    """True while another connection holds the write lock of the SQLite file."""
    import sqlite3
    conn = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        conn.execute("BEGIN IMMEDIATE")
        conn.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        conn.close()


class Fingerprint:
    """Every row of every table, cheaply comparable: the snapshot itself on SQLite (a local
    file), one statement of per-table digests over one connection on PostgreSQL (a snapshot
    there costs a connection and a query per table, too slow for hundreds of examples)."""

    def __init__(self, db_url):
        self.db_url = db_url
        self.conn = None
        self.sql = None

    def __call__(self):
        if not is_postgres(self.db_url):
            from conftest import snapshot
            return snapshot(self.db_url)
        if self.conn is None:
            self.conn = pg_session(self.db_url)
            with self.conn.cursor() as cur:
                cur.execute("SELECT table_name FROM information_schema.tables "
                            "WHERE table_schema = current_schema() ORDER BY 1")
                tables = [r[0] for r in cur.fetchall()]
            self.sql = "SELECT " + ", ".join(
                f"(SELECT md5(COALESCE(string_agg(t::text, '|' ORDER BY t::text), '')) "
                f'FROM "{name}" t) AS "{name}"' for name in tables)
        with self.conn.cursor() as cur:
            cur.execute(self.sql)
            return dict(zip([d[0] for d in cur.description], cur.fetchone()))

    def close(self):
        if self.conn is not None:
            self.conn.close()
