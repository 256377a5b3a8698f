"""Binding the models to a store chosen at run time.

``sqlite:///path/to/file.db`` (the embedded default: WAL, foreign keys, a busy timeout) or
``postgresql://user[:password]@host:port/dbname[?options=...]``. Nothing connects at import
time; :func:`open_store` is called when a command runs and :func:`close_store` on exit.
"""
import os
import sys
from urllib.parse import parse_qsl, unquote, urlsplit

from .errors import ConfigError

BUSY_TIMEOUT_MS = 5000


def busy_timeout_ms():
    try:
        return int(os.environ.get("ESCALATE_BUSY_TIMEOUT_MS", BUSY_TIMEOUT_MS))
    except ValueError:
        return BUSY_TIMEOUT_MS


def _import_peewee(without_postgres):
    """Import peewee; for a SQLite store, without paying for the PostgreSQL driver."""
    if "peewee" in sys.modules or not without_postgres:
        import peewee
        if not without_postgres and peewee.psycopg2 is None:
            _late_psycopg2(peewee)
        return peewee
    hidden = [m for m in ("psycopg2", "psycopg") if m not in sys.modules]
    for m in hidden:
        sys.modules[m] = None          # peewee probes these eagerly at import
    try:
        import peewee
    finally:
        for m in hidden:
            sys.modules.pop(m, None)
    return peewee


def _late_psycopg2(peewee):
    """Give peewee the driver it was imported without (one process using both stores)."""
    try:
        import psycopg2
        from psycopg2 import extensions
        from psycopg2.extras import Json, register_uuid
    except ImportError:
        raise ConfigError("the PostgreSQL driver (psycopg2) is not installed")
    register_uuid()
    peewee.psycopg2, peewee.pg_extensions, peewee.Json_pg2 = psycopg2, extensions, Json


def is_sqlite_url(url):
    return url.startswith("sqlite:")


def make_database(url):
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme == "sqlite":
        path = unquote(parts.path)
        if parts.netloc:                                   # sqlite://relative/path.db
            path = parts.netloc + path
        if path.startswith("/") and url.startswith("sqlite:///") and not url.startswith("sqlite:////"):
            path = path                                    # sqlite:///abs/path.db
        if not path or path == "/":
            raise ConfigError(f"database URL {url!r} names no file")
        if path != ":memory:":
            folder = os.path.dirname(os.path.abspath(path))
            try:
                os.makedirs(folder, mode=0o700, exist_ok=True)
            except OSError as exc:
                raise ConfigError(f"cannot create the database folder {folder}: {exc.strerror}")
            if not os.path.exists(path):
                try:
                    fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
                    os.close(fd)
                except OSError as exc:
                    raise ConfigError(f"cannot create the database file {path}: {exc.strerror}")
        peewee = _import_peewee(without_postgres=True)
        return peewee.SqliteDatabase(
            path,
            lock_type="IMMEDIATE",        # writers queue up front instead of dead-locking on upgrade
            timeout=busy_timeout_ms() / 1000,
            pragmas={
                "journal_mode": "wal",
                "foreign_keys": 1,
                "busy_timeout": busy_timeout_ms(),
                "synchronous": "normal",
            },
        )
    if scheme in ("postgres", "postgresql", "postgresql+psycopg2"):
        peewee = _import_peewee(without_postgres=False)
        kwargs = dict(parse_qsl(parts.query))
        if parts.hostname:
            kwargs["host"] = parts.hostname
        if parts.port:
            kwargs["port"] = parts.port
        if parts.username:
            kwargs["user"] = unquote(parts.username)
        if parts.password:
            kwargs["password"] = unquote(parts.password)
        kwargs.setdefault("connect_timeout", 10)
        dbname = unquote(parts.path.lstrip("/"))
        if not dbname:
            raise ConfigError(f"database URL {redact_url(url)!r} names no database")
        return peewee.PostgresqlDatabase(dbname, **kwargs)
    raise ConfigError(f"unsupported database URL {redact_url(url)!r}: use sqlite:///FILE or postgresql://...")


def redact_url(url):
    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(":" + parts.password + "@", ":****@")
        return parts._replace(netloc=netloc).geturl()
    return url


def open_store(url):
    """Bind the models to the database at ``url`` and return it (not yet connected)."""
    from . import models
    database = make_database(url)
    models.database_proxy.initialize(database)
    return database


def close_store():
    from . import models
    database = models.database_proxy.obj
    if database is not None and not database.is_closed():
        database.close()


def is_postgres(database):
    return type(database).__name__.startswith("Postgres")
