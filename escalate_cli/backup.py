"""Online backup and restore of the SQLite store (PostgreSQL: pg_dump / pg_restore)."""
import os
import sqlite3

from .db import is_sqlite_url
from .domain import require_role
from .errors import Refused


def _sqlite_path(app):
    if not is_sqlite_url(app.db_url):
        raise Refused("escalate backup works on the SQLite store; for PostgreSQL use pg_dump "
                      "(see docs/operations.md)")
    return app.db.database


def backup_sqlite(app, target):
    require_role(app.actor, ("admin",), "take backups")
    source = _sqlite_path(app)
    target = os.path.abspath(target)
    if os.path.exists(target):
        raise Refused(f"{target} already exists; choose a new file name")
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        os.close(fd)
    except OSError as exc:
        raise Refused(f"cannot write {target}: {exc.strerror}")
    app.close()
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(target)
    try:
        src.backup(dst)
        pages = dst.execute("PRAGMA page_count").fetchone()[0]
        dst.execute("PRAGMA journal_mode=DELETE")
    except sqlite3.Error as exc:
        dst.close()
        os.unlink(target)
        raise Refused(f"backup failed: {exc}")
    finally:
        src.close()
    dst.close()
    return pages


def restore_sqlite(app, source):
    require_role(app.actor, ("admin",), "restore backups")
    target = _sqlite_path(app)
    check = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
    try:
        ok = check.execute("PRAGMA integrity_check").fetchone()[0]
        names = {r[0] for r in check.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    except sqlite3.DatabaseError:
        raise Refused(f"{source} is not an escalate backup (not a SQLite database)")
    finally:
        check.close()
    if ok != "ok" or "escalation" not in names or "schema_migrations" not in names:
        raise Refused(f"{source} is not an escalate backup")
    app.close()
    src = sqlite3.connect(source)
    dst = sqlite3.connect(target, timeout=30)
    try:
        src.backup(dst)
    finally:
        src.close()
        dst.close()
