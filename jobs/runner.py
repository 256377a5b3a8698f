"""Running jobs: one at a time under a lock, with a heartbeat and one log line; or all of
them in-process on a schedule (``escalate jobs run``) for hosts without cron.

Every job is a function ``fn(app, tick)`` that returns something with a ``summary()``;
``tick()`` renews the job's lease between batches. :func:`run_job` never raises: a failure
is one ERROR log line, a ``failed`` heartbeat and a ``failed`` outcome, so that the
scheduler survives it and a cron one-shot exits non-zero.
"""
import collections
import contextlib
import logging
import signal
import sys
import time
from dataclasses import dataclass

from . import locks, timing
from .conf import JOB_NAMES, job_settings

LOG = logging.getLogger("escalate.jobs")


class _Formatter(logging.Formatter):
    def format(self, record):
        record.message = " ".join(record.getMessage().split())     # one line, always
        stamp = self.formatTime(record, "%Y-%m-%dT%H:%M:%S%z")
        return f"{stamp} escalate[{record.process}] {record.levelname}: {record.message}"


def setup_logging(verbose=False):
    """Timestamped lines on stderr (cron mail, journald): warnings and errors, or all."""
    LOG.handlers[:] = []
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    LOG.addHandler(handler)
    LOG.setLevel(logging.INFO if verbose else logging.WARNING)
    LOG.propagate = False
    return LOG


@dataclass
class Outcome:
    name: str
    status: str            # ok / skipped / failed
    message: str
    result: object = None


class Text:
    def __init__(self, text, warnings=()):
        self.text = text
        self.warnings = list(warnings)

    def summary(self):
        return self.text


def describe(exc):
    """One line for the log: the domain's message, or the store's error, never a traceback."""
    from escalate_cli.errors import EscalateError
    if isinstance(exc, EscalateError):
        return exc.message
    try:
        from escalate_cli.cli import _store_error
        translated = _store_error(exc)
    except Exception:  # noqa: BLE001
        translated = None
    if translated is not None:
        return translated.message
    text = " ".join(str(exc).split())[:300]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def run_job(app, name, fn, lock=True, wait=0.0, heartbeat=True):
    """Run one job: lock (or skip), heartbeat, log. Returns an :class:`Outcome`."""
    try:
        guard = locks.JobLock(app, name, wait=wait) if lock else contextlib.nullcontext()
        with guard as held:
            if lock and not held.acquired:
                LOG.info("%s: skipped: another instance is running", name)
                return Outcome(name, "skipped", "another instance is running")
            if heartbeat:
                locks.started(app, name)
            result = fn(app, held.renew if lock else (lambda: None))
            message = result.summary() if hasattr(result, "summary") else str(result)
            if heartbeat:
                locks.succeeded(app, name, message)
        for warning in getattr(result, "warnings", ()):
            LOG.warning("%s: %s", name, warning)
        LOG.info("%s: %s", name, message)
        return Outcome(name, "ok", message, result)
    except Exception as exc:  # noqa: BLE001 - a job's failure is a log line, not a crash
        message = describe(exc)
        if heartbeat:
            with contextlib.suppress(Exception):
                locks.failed(app, name, message)
        LOG.error("%s failed: %s", name, message)
        return Outcome(name, "failed", message)


# -- the jobs -------------------------------------------------------------------------------

def _sweep(app, tick):
    from .sweep import sweep
    return sweep(app, tick=tick)


def _digest(app, tick):
    from .digest import digest
    return digest(app, tick=tick)


def _reminders(app, tick):
    from .reminders import reminders
    return reminders(app, tick=tick)


def _rate_watch(app, tick):
    from .ratewatch import rate_watch
    return rate_watch(app, tick=tick)


def deliver(app, tick=None, limit=1000, batch=20):
    """Deliver the outbox (escalate_cli.outbox); a message that failed fails the run, so cron
    mails the one line that says why (the message itself stays queued for a retry)."""
    from escalate_cli.errors import DeliveryFailed
    from escalate_cli.outbox import deliver_due
    summary = deliver_due(app, limit=limit, batch=batch)
    line = f"sent {summary.sent}, failed {summary.failed}, dead {summary.dead}"
    if summary.skipped:
        line += f", skipped {summary.skipped} (no SMS gateway configured)"
    if summary.failed or summary.dead:
        more = f" (and {len(summary.errors) - 1} more)" if len(summary.errors) > 1 else ""
        raise DeliveryFailed(f"{line}: {summary.errors[0]}{more}")
    return Text(line)


def _deliver(app, tick):
    return deliver(app, tick)


JOBS = {
    "sla-sweep": (_sweep, True),        # (function, takes the job lock)
    "deliver": (_deliver, False),       # per-message leases: several deliverers may run
    "reminders": (_reminders, True),
    "digest": (_digest, True),
    "rate-watch": (_rate_watch, True),
}
assert tuple(JOBS) == JOB_NAMES


# -- status ---------------------------------------------------------------------------------

def status(app):
    """Each job's last run, outcome, lag and whether it is stale."""
    from escalate_cli.models import JobRun
    app.db                      # bind the models to the store
    js = job_settings(app)
    now = app.now
    zone = app.get_settings().zone
    runs = {r.name: r for r in JobRun.select()}
    rows = []
    for name in JOB_NAMES:
        spec = js.schedule[name]
        run = runs.get(name)
        last = run.last_success_at if run else None
        if name in js.disabled:
            state = "disabled"
        elif timing.is_stale(spec, last, now, zone, js.stale_after.get(name)):
            state = "STALE" if last else "never ran"
        else:
            state = "ok"
        rows.append({
            "job": name, "schedule": str(spec),
            "last_run": run.last_started_at if run else None,
            "outcome": run.last_outcome if run else None,
            "last_success": last,
            "lag_seconds": int((now - last).total_seconds()) if last else None,
            "stale_after_seconds": int((js.stale_after.get(name) or timing.stale_after(spec))
                                       .total_seconds()),
            "state": state, "message": run.last_message if run else None,
            "host": run.host if run else None})
    return rows


# -- the in-process scheduler --------------------------------------------------------------

class Stop:
    """Set by SIGTERM/SIGINT; the loop ends after the job in progress. A second signal
    ends at once."""

    def __init__(self):
        self.flag = False

    def __call__(self, signum, frame):
        if self.flag:
            raise SystemExit(128 + signum)
        self.flag = True
        LOG.info("jobs run: %s received; stopping after the job in progress",
                 signal.Signals(signum).name)


def _last_success(app, name):
    from escalate_cli.models import JobRun
    run = JobRun.get_or_none(JobRun.name == name)
    return run.last_success_at if run else None


def run_schedule(app, once=False, jobs=None, stop=None, max_loops=None):
    """Run every enabled job on its schedule until stopped; ``once``: what is due, then
    return. Returns the outcomes (of the last pass with ``once``)."""
    import schedule as schedule_lib
    jobs = jobs or JOBS
    js = job_settings(app)
    zone = app.get_settings().zone
    names = [n for n in jobs if n not in js.disabled]
    outcomes = collections.deque(maxlen=None if once else 100)
    stop = stop or Stop()

    def one(name):
        if stop.flag:
            return
        fn, lock = jobs[name]
        outcomes.append(run_job(app, name, fn, lock=lock))
        with contextlib.suppress(Exception):
            app.db.close()           # a fresh connection per run survives a restarted server

    def if_due(name):
        if timing.is_due(js.schedule[name], _last_success(app, name), app.now, zone):
            one(name)

    if once:
        for name in names:
            spec = js.schedule[name]
            (one if isinstance(spec, timing.Every) else if_due)(name)
        return list(outcomes)

    scheduler = schedule_lib.Scheduler()
    for name in names:
        spec = js.schedule[name]
        if isinstance(spec, timing.Every):
            scheduler.every(spec.seconds).seconds.do(one, name)
        else:
            scheduler.every(1).minutes.do(if_due, name)
    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    LOG.info("jobs run: started (%s)", ", ".join(f"{n} {js.schedule[n]}" for n in names))
    loops = 0
    try:
        for job in list(scheduler.jobs):      # everything once at start
            job.run()
        while not stop.flag:
            scheduler.run_pending()
            loops += 1
            if max_loops is not None and loops >= max_loops:
                break
            idle = scheduler.idle_seconds
            time.sleep(min(1.0, max(0.05, idle if idle is not None else 1.0)))
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    LOG.info("jobs run: stopped")
    return list(outcomes)
