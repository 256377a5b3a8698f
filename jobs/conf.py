"""The jobs' part of the settings file (``[jobs]``), read once, with defaults.

```toml
[jobs]
after_hours = "defer"        # non-critical notices outside business hours: defer | send | digest
catch_up_after = "30m"       # a warning or breach found later than this is a catch-up
call_reminder = "15m"        # remind the owner this long before a scheduled call
task_due_soon = "24h"        # remind a task's assignee this long before it is due
follow_up_after = "48h"      # remind the owner of an escalation idle this long
disabled = []                # jobs that `jobs run` skips and `jobs status` does not watch
[jobs.schedule]              # for `jobs run` and `jobs status` (crontab.example matches)
sla-sweep = "5m"
deliver = "1m"
reminders = "5m"
digest = "07:00 mon-fri"
rate-watch = "02:30"
[jobs.stale_after]           # when `jobs status` calls a job stale (default: 3 intervals)
deliver = "10m"
[jobs.rate_watch]
pod = "Recruiting Pod A"     # the pod that receives system escalations (default: see README)
```
"""
import datetime as dt
from dataclasses import dataclass, field

from escalate_cli.errors import ConfigError

from . import timing

JOB_NAMES = ("sla-sweep", "deliver", "reminders", "digest", "rate-watch")


@dataclass
class JobSettings:
    after_hours: str = "defer"
    catch_up_after: dt.timedelta = dt.timedelta(minutes=30)
    call_reminder: dt.timedelta = dt.timedelta(minutes=15)
    task_due_soon: dt.timedelta = dt.timedelta(hours=24)
    follow_up_after: dt.timedelta = dt.timedelta(hours=48)
    disabled: tuple = ()
    schedule: dict = field(default_factory=dict)
    stale_after: dict = field(default_factory=dict)
    rate_watch_pod: str | None = None
    batch: int = 500


def _table(raw, key):
    value = raw.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ValueError(f"[jobs.{key}] must be a table")
    return value


def job_settings(app):
    cached = getattr(app, "_job_settings", None)
    if cached is not None:
        return cached
    raw = dict(app.get_settings().jobs or {})
    js = JobSettings()
    try:
        js.after_hours = str(raw.get("after_hours", js.after_hours)).lower()
        if js.after_hours not in timing.AFTER_HOURS_MODES:
            raise ValueError(f"jobs.after_hours must be one of {', '.join(timing.AFTER_HOURS_MODES)}")
        for name in ("catch_up_after", "call_reminder", "task_due_soon", "follow_up_after"):
            if name in raw:
                setattr(js, name, timing.parse_duration(raw[name]))
        js.disabled = tuple(str(d) for d in raw.get("disabled", ()))
        for d in js.disabled:
            if d not in JOB_NAMES:
                raise ValueError(f"jobs.disabled: unknown job {d!r}")
        specs = dict(timing.DEFAULT_SCHEDULE)
        specs.update({str(k): str(v) for k, v in _table(raw, "schedule").items()})
        for name, text in specs.items():
            if name not in JOB_NAMES:
                raise ValueError(f"jobs.schedule: unknown job {name!r}")
            js.schedule[name] = timing.parse_schedule(text)
        for name, text in _table(raw, "stale_after").items():
            if name not in JOB_NAMES:
                raise ValueError(f"jobs.stale_after: unknown job {name!r}")
            js.stale_after[name] = timing.parse_duration(text)
        js.rate_watch_pod = _table(raw, "rate_watch").get("pod") or None
        js.batch = max(1, int(raw.get("batch", js.batch)))
    except (TypeError, ValueError, OverflowError) as exc:
        raise ConfigError(f"settings: {exc}")
    app._job_settings = js
    return js
