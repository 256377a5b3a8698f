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


def busy_timeout_ms(env=None):
    """How long a command waits for a busy store (ESCALATE_BUSY_TIMEOUT_MS): SQLite's busy
    timeout, PostgreSQL's ``lock_timeout``. Past it, "the database is busy; try again"."""
    value = (os.environ if env is None else env).get("ESCALATE_BUSY_TIMEOUT_MS", "").strip()
    if not value:
        return BUSY_TIMEOUT_MS
    if not value.isdigit() or not 0 < int(value) <= 3_600_000:
        raise ConfigError(f"ESCALATE_BUSY_TIMEOUT_MS must be milliseconds (1-3600000), "
                          f"not {value!r}")
    return int(value)


POSTGRES_DRIVERS = ("psycopg2", "psycopg")


def _import_peewee(without_postgres):
    """Import peewee; for a SQLite store, without paying for the PostgreSQL driver."""
    if "peewee" in sys.modules or not without_postgres:
        import peewee
        return peewee
    with _drivers_hidden():
        import peewee
    return peewee


class _drivers_hidden:
    """peewee probes psycopg2 and psycopg eagerly at import (0.05-0.1 s): hide them meanwhile."""

    def __enter__(self):
        self.hidden = [m for m in POSTGRES_DRIVERS if m not in sys.modules]
        for m in self.hidden:
            sys.modules[m] = None

    def __exit__(self, *exc):
        for m in self.hidden:
            if sys.modules.get(m, False) is None:
                del sys.modules[m]


class _PeeweeWithoutPostgres:
    """A one-shot import hook: whoever imports peewee first, it comes without the PG driver.

    Command bodies import the domain (which imports peewee) before the store is opened, so
    hiding the driver in :func:`make_database` alone is too late.
    """

    def find_spec(self, name, path=None, target=None):
        if name != "peewee":
            return None
        sys.meta_path.remove(self)
        import importlib.util
        spec = importlib.util.find_spec("peewee")
        if spec is not None and spec.loader is not None:
            spec.loader = _HidingLoader(spec.loader)
        return spec


class _HidingLoader:
    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        with _drivers_hidden():
            self.loader.exec_module(module)


def prepare(url):
    """Called as a command starts (cheap, imports nothing): a SQLite store never loads psycopg2."""
    if url and is_sqlite_url(url) and "peewee" not in sys.modules \
            and not any(isinstance(f, _PeeweeWithoutPostgres) for f in sys.meta_path):
        sys.meta_path.insert(0, _PeeweeWithoutPostgres())


def _with_postgres_driver(peewee):
    """peewee imported for a SQLite store earlier in this process (tests): give it the driver."""
    if getattr(peewee, "psycopg2", True) is None and getattr(peewee, "psycopg", True) is None:
        try:
            import psycopg2
            from psycopg2 import extensions, extras
        except ImportError:
            return peewee
        peewee.psycopg2, peewee.pg_extensions = psycopg2, extensions
        peewee.pg_register_uuid, peewee.Json_pg2 = extras.register_uuid, extras.Json
    return peewee


def is_sqlite_url(url):
    return url.startswith("sqlite:")


def make_database(url, create=True):
    """The peewee database of ``url`` (not yet connected). ``create=False``: a SQLite file
    that does not exist yet is an error (only ``escalate init`` makes one)."""
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
        if path != ":memory:" and not create and not os.path.exists(path):
            shown = "/" + path.lstrip("/") if path.startswith("/") else path
            raise ConfigError(f"no database at {shown} yet: run 'escalate init' "
                              f"(or point --db / ESCALATE_DB at yours)")
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
        busy = busy_timeout_ms()
        return peewee.SqliteDatabase(
            path,
            lock_type="IMMEDIATE",        # writers queue up front instead of dead-locking on upgrade
            timeout=busy / 1000,
            pragmas={
                "journal_mode": "wal",
                "foreign_keys": 1,
                "busy_timeout": busy,
                "synchronous": "normal",
            },
        )
    if scheme in ("postgres", "postgresql", "postgresql+psycopg2"):
        peewee = _with_postgres_driver(_import_peewee(without_postgres=False))
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
        # A writer stuck behind another's lock gives up like SQLite's busy timeout does, instead
        # of hanging a shell or a cron job; the URL's own options come after and win.
        options = kwargs.get("options", "")
        kwargs["options"] = f"-c lock_timeout={busy_timeout_ms()} {options}".strip()
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


def open_store(url, create=True):
    """Bind the models to the database at ``url`` and return it (not yet connected)."""
    from . import models
    database = make_database(url, create=create)
    models.database_proxy.initialize(database)
    return database


def close_store():
    from . import models
    database = models.database_proxy.obj
    if database is not None and not database.is_closed():
        database.close()


def is_postgres(database):
    return type(database).__name__.startswith("Postgres")
