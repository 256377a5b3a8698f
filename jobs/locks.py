"""One instance of a job at a time, across processes and hosts; and each job's heartbeat.

PostgreSQL: a session advisory lock, keyed by database, schema and job name; it goes away
with the connection, so a crashed job never leaves it behind. SQLite: a lease row in
``job_lock`` with an expiry in real time; a crashed holder's lease simply runs out, and a
live holder renews it between batches (:meth:`JobLock.renew`).

Leases use the real clock, not ``app.now``: they are about which process is alive, whereas
heartbeats (``job_run``) use the job's own clock so that replays and tests can pin it.
"""
import datetime as dt
import hashlib
import os
import socket
import time
import uuid

UTC = dt.timezone.utc
DEFAULT_TTL = dt.timedelta(minutes=10)


class LockLost(Exception):
    """The lease expired and another instance took it: stop before writing more."""


def real_now():
    return dt.datetime.now(UTC)


def holder_id():
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def holder_is_dead(holder):
    """True when ``holder`` (host:pid:nonce) is a process of this host that no longer exists:
    a job killed mid-run (SIGKILL, OOM) leaves its lease behind, and the next run on the same
    host takes it over at once instead of skipping until the lease expires. A holder on
    another host is trusted until its lease expires."""
    parts = holder.rsplit(":", 2)
    if len(parts) != 3 or parts[0] != socket.gethostname() or not parts[1].isdigit():
        return False
    pid = int(parts[1])
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:          # alive, but another user's process
        return False
    return False


def _advisory_key(db, name):
    cur = db.execute_sql("SELECT current_database(), current_schema()")
    database, schema = cur.fetchone()
    digest = hashlib.sha256(f"escalate:{database}:{schema}:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


class JobLock:
    """``with JobLock(app, "sla-sweep") as lock: if lock.acquired: ...``"""

    def __init__(self, app, name, ttl=DEFAULT_TTL, wait=0.0):
        self.app = app
        self.name = name
        self.ttl = ttl
        self.wait = wait
        self.holder = holder_id()
        self.acquired = False
        self._key = None

    # -- context manager ------------------------------------------------------------------
    def __enter__(self):
        deadline = time.monotonic() + max(0.0, self.wait)
        while True:
            self.acquired = self._try_acquire()
            if self.acquired or time.monotonic() >= deadline:
                return self
            time.sleep(min(0.5, max(0.05, deadline - time.monotonic())))

    def __exit__(self, exc_type, exc, tb):
        if self.acquired:
            try:
                self._release()
            except Exception:  # noqa: BLE001
                # The job failed already (often: the connection is gone, and with it a
                # PostgreSQL lock); its own error is the one to report, not this one.
                if exc_type is None:
                    raise
            finally:
                self.acquired = False
        return False

    # -- dialects --------------------------------------------------------------------------
    @property
    def _postgres(self):
        from escalate_cli.db import is_postgres
        return is_postgres(self.app.db)

    def _bound(self):
        """Run the lease's queries on this lock's own connection."""
        from escalate_cli.models import JobLock as Lease
        return self.app.db.bind_ctx([Lease], bind_refs=False, bind_backrefs=False)

    def _try_acquire(self):
        db = self.app.db
        if self._postgres:
            if self._key is None:
                self._key = _advisory_key(db, self.name)
            return bool(db.execute_sql("SELECT pg_try_advisory_lock(%s)", (self._key,)).fetchone()[0])
        from escalate_cli.models import JobLock as Lease
        now = real_now()
        with self._bound(), db.atomic():        # BEGIN IMMEDIATE: one writer decides
            row = Lease.get_or_none(Lease.name == self.name)
            if row is not None and row.holder != self.holder and row.expires_at > now \
                    and not holder_is_dead(row.holder):
                return False
            (Lease.insert(name=self.name, holder=self.holder, expires_at=now + self.ttl)
             .on_conflict(conflict_target=[Lease.name],
                          update={Lease.holder: self.holder, Lease.expires_at: now + self.ttl})
             .execute())
        return True

    def renew(self):
        """Extend the lease (SQLite); raise :class:`LockLost` if someone else has it now."""
        if not self.acquired or self._postgres:
            return
        from escalate_cli.models import JobLock as Lease
        with self._bound(), self.app.db.atomic():
            n = (Lease.update(expires_at=real_now() + self.ttl)
                 .where((Lease.name == self.name) & (Lease.holder == self.holder)).execute())
        if not n:
            self.acquired = False
            raise LockLost(f"lost the {self.name} lock to another instance")

    def _release(self):
        db = self.app.db
        if self._postgres:
            db.execute_sql("SELECT pg_advisory_unlock(%s)", (self._key,))
            return
        from escalate_cli.models import JobLock as Lease
        with self._bound(), db.atomic():
            Lease.delete().where((Lease.name == self.name) & (Lease.holder == self.holder)).execute()


# -- heartbeat ------------------------------------------------------------------------------

def beat(app, name, **values):
    """Upsert the job's ``job_run`` row with ``values``."""
    from escalate_cli.models import JobRun
    values.setdefault("host", socket.gethostname())
    update = {getattr(JobRun, k): v for k, v in values.items()}
    with app.db.atomic():
        (JobRun.insert(name=name, **values)
         .on_conflict(conflict_target=[JobRun.name], update=update).execute())


def started(app, name):
    beat(app, name, last_started_at=app.now, last_outcome="running")


def succeeded(app, name, message):
    now = app.now
    beat(app, name, last_finished_at=now, last_success_at=now, last_outcome="ok",
         last_message=message)


def failed(app, name, message):
    beat(app, name, last_finished_at=app.now, last_outcome="failed", last_message=message)
