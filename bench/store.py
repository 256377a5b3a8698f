"""Raw access to a benchmark store (sqlite3 / psycopg2) and a reset between timed runs.

A command that changes data (claim, create, the sweep, digest, delivery) must find the same
state at every timed run, or the second run of the sweep would have nothing to do. A
:class:`Snapshot` records, before a run, the highest id of every big table, the full content
of every small table and the rows the command may update (named by SQL); after the run it
deletes what was appended and writes the recorded rows back. Its cost follows the rows the
command touches, not the size of the store.
"""
import os
from urllib.parse import parse_qsl, unquote, urlsplit

SMALL_TABLE_ROWS = 2000      # smaller tables are copied whole; bigger ones by appended ids and touched rows
SKIP_TABLES = {"bench_manifest", "schema_migrations", "sqlite_sequence", "sqlite_stat1",
               "sqlite_stat4"}


def is_postgres(url):
    return url.startswith(("postgres://", "postgresql://"))


def sqlite_path(url):
    """The file of a sqlite:/// URL, read as escalate reads it (sqlite:///abs/path.db)."""
    parts = urlsplit(url)
    return os.path.normpath((parts.netloc or "") + unquote(parts.path))


def pg_connect_args(url):
    parts = urlsplit(url)
    kwargs = dict(parse_qsl(parts.query))
    kwargs.update(dbname=unquote(parts.path.lstrip("/")), user=unquote(parts.username or "postgres"),
                  host=parts.hostname or "127.0.0.1", port=parts.port or 5432)
    if parts.password:
        kwargs["password"] = unquote(parts.password)
    return kwargs


class Store:
    def __init__(self, url):
        self.url = url
        self.pg = is_postgres(url)
        if self.pg:
            import psycopg2
            self.conn = psycopg2.connect(**pg_connect_args(url))
        else:
            import sqlite3
            self.conn = sqlite3.connect(sqlite_path(url), isolation_level=None, timeout=30)
        self.p = "%s" if self.pg else "?"

    def close(self):
        self.conn.close()

    def query(self, sql, params=()):
        cur = self.conn.cursor()
        cur.execute(sql.replace("?", self.p) if self.pg else sql, params)
        rows = cur.fetchall()
        if self.pg:
            self.conn.commit()
        return rows

    def value(self, sql, params=()):
        rows = self.query(sql, params)
        return rows[0][0] if rows else None

    def tables(self):
        if self.pg:
            rows = self.query("SELECT table_name FROM information_schema.tables "
                              "WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'")
        else:   # not the full-text index (virtual tables and their shadows): triggers keep it
            rows = self.query("SELECT name FROM sqlite_master WHERE type = 'table' "
                              "AND sql NOT LIKE 'CREATE VIRTUAL TABLE%'")
            rows = [r for r in rows if "_fts" not in r[0]]
        return sorted(r[0] for r in rows if r[0] not in SKIP_TABLES and not r[0].startswith("sqlite_"))

    def columns(self, table):
        if self.pg:
            rows = self.query("SELECT column_name FROM information_schema.columns WHERE "
                              "table_schema = current_schema() AND table_name = ? "
                              "AND is_generated = 'NEVER' ORDER BY ordinal_position", (table,))
            return [r[0] for r in rows]
        return [r[1] for r in self.query(f'PRAGMA table_info("{table}")')]

    def write(self, statements):
        """Run (sql, params or list of params) pairs in one transaction with FK checks off."""
        cur = self.conn.cursor()
        if self.pg:
            cur.execute("SET session_replication_role = replica")
        else:
            cur.execute("BEGIN IMMEDIATE")
        try:
            for sql, params in statements:
                sql = sql.replace("?", self.p) if self.pg else sql
                if isinstance(params, list):
                    if params:
                        cur.executemany(sql, params)
                else:
                    cur.execute(sql, params)
            if self.pg:
                cur.execute("SET session_replication_role = DEFAULT")
                self.conn.commit()
            else:
                cur.execute("COMMIT")
        except BaseException:
            if self.pg:
                self.conn.rollback()
            else:
                cur.execute("ROLLBACK")
            raise


def _names(cols):
    """Written columns only: generated ones (the search vectors) cannot be written back."""
    return ", ".join(f'"{c}"' for c in cols)


class Snapshot:
    """What a mutating command may change, recorded before and written back after a run."""

    def __init__(self, store, touched=()):
        """``touched``: (table, SQL selecting the ids of rows the command may update)."""
        self.store = store
        self.touched = list(touched)
        self.layout = {}
        for table in store.tables():
            cols = store.columns(table)
            count = store.value(f'SELECT count(*) FROM "{table}"')
            self.layout[table] = (cols, "id" in cols and count > SMALL_TABLE_ROWS)

    def take(self):
        s = self.store
        self.max_ids, self.full, self.rows = {}, {}, {}
        for table, (cols, big) in self.layout.items():
            if big:
                self.max_ids[table] = s.value(f'SELECT max("id") FROM "{table}"') or 0
            else:
                self.full[table] = s.query(f'SELECT {_names(cols)} FROM "{table}"')
        for table, id_sql in self.touched:
            if table in self.max_ids:
                cols = self.layout[table][0]
                self.rows.setdefault(table, []).extend(
                    s.query(f'SELECT {_names(cols)} FROM "{table}" WHERE "id" IN ({id_sql})'))
        return self

    def restore(self):
        statements = []
        for table, top in self.max_ids.items():
            statements.append((f'DELETE FROM "{table}" WHERE "id" > ?', (top,)))
        for table, rows in self.full.items():
            cols = self.layout[table][0]
            names = ", ".join(f'"{c}"' for c in cols)
            marks = ", ".join("?" * len(cols))
            statements.append((f'DELETE FROM "{table}"', ()))
            statements.append((f'INSERT INTO "{table}" ({names}) VALUES ({marks})', list(rows)))
        for table, rows in self.rows.items():
            cols = self.layout[table][0]
            sets = ", ".join(f'"{c}" = ?' for c in cols if c != "id")
            idx = cols.index("id")
            params = [tuple(v for i, v in enumerate(r) if i != idx) + (r[idx],) for r in rows]
            statements.append((f'UPDATE "{table}" SET {sets} WHERE "id" = ?', params))
        self.store.write(statements)
