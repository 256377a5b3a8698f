"""When jobs run, when they are late, and when a message may go out. Pure functions.

A schedule is written as in the settings file's ``[jobs.schedule]`` table: ``"5m"``,
``"30s"``, ``"1h"`` (every so often) or ``"07:00 mon-fri"``, ``"02:30"`` (daily at a time of
the company zone, on the days given, every day by default).
"""
import datetime as dt
import re
from dataclasses import dataclass

UTC = dt.timezone.utc
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

# The defaults match crontab.example (a test checks that they agree).
DEFAULT_SCHEDULE = {
    "sla-sweep": "5m",
    "deliver": "1m",
    "reminders": "5m",
    "digest": "07:00 mon-fri",
    "rate-watch": "02:30",
}
MIN_STALE = dt.timedelta(minutes=10)
DAILY_GRACE = dt.timedelta(hours=2)


@dataclass(frozen=True)
class Every:
    seconds: int

    def __str__(self):
        return f"every {_span(self.seconds)}"


@dataclass(frozen=True)
class Daily:
    at: dt.time
    days: frozenset = frozenset(range(7))

    def __str__(self):
        return f"daily {self.at:%H:%M}" + ("" if len(self.days) == 7 else " " + _days_text(self.days))


def _days_text(days):
    """{0,1,2,3,4} -> 'mon-fri'; {0,2} -> 'mon,wed'."""
    runs, out = [], []
    for d in sorted(days):
        if runs and d == runs[-1][-1] + 1:
            runs[-1].append(d)
        else:
            runs.append([d])
    for r in runs:
        out.append(DAYS[r[0]] if len(r) == 1 else
                   f"{DAYS[r[0]]},{DAYS[r[-1]]}" if len(r) == 2 else f"{DAYS[r[0]]}-{DAYS[r[-1]]}")
    return ",".join(out)


def _span(seconds):
    for unit, size in (("h", 3600), ("m", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def parse_duration(text):
    """'90s', '5m', '2h', '1d' -> timedelta."""
    m = re.fullmatch(r"\s*(\d+)\s*([smhd])\s*", str(text).lower())
    if not m:
        raise ValueError(f"{text!r} is not a duration like 30s, 5m, 2h or 1d")
    n = int(m.group(1))
    return dt.timedelta(seconds=n * {"s": 1, "m": 60, "h": 3600, "d": 86400}[m.group(2)])


def parse_schedule(text):
    text = str(text).strip().lower()
    m = re.fullmatch(r"(\d{1,2}):(\d{2})(?:\s+([a-z,\- ]+))?", text)
    if m:
        hour, minute = int(m.group(1)), int(m.group(2))
        if hour > 23 or minute > 59:
            raise ValueError(f"{text!r}: no such time of day")
        return Daily(dt.time(hour, minute), _parse_days(m.group(3)) if m.group(3) else frozenset(range(7)))
    seconds = int(parse_duration(text).total_seconds())
    if seconds <= 0:
        raise ValueError(f"{text!r}: a job cannot run every 0 seconds")
    return Every(seconds)


def _parse_days(text):
    days = set()
    for part in re.split(r"[,\s]+", text.strip()):
        if not part:
            continue
        if "-" in part:
            a, b = part.split("-", 1)
            i, j = DAYS.index(a[:3]), DAYS.index(b[:3])
            days.update(range(i, j + 1) if i <= j else list(range(i, 7)) + list(range(0, j + 1)))
        else:
            if part[:3] not in DAYS:
                raise ValueError(f"{part!r} is not a day (mon..sun)")
            days.add(DAYS.index(part[:3]))
    return frozenset(days)


def previous_occurrence(spec, now, zone):
    """The latest scheduled instant of a daily job at or before ``now``."""
    local = now.astimezone(zone)
    for back in range(0, 8):
        day = local.date() - dt.timedelta(days=back)
        if day.weekday() not in spec.days:
            continue
        t = dt.datetime.combine(day, spec.at, tzinfo=zone).astimezone(UTC)
        if t <= now:
            return t
    return None


def is_due(spec, last_success, now, zone):
    """Should the in-process scheduler run a daily job now? (Interval jobs are schedule's.)

    Only on a scheduled day, once its time has come, and if it has not run since: a
    scheduler started late catches up the same day, never with yesterday's run at 1 AM or
    with Friday's digest on a Saturday.
    """
    prev = previous_occurrence(spec, now, zone)
    if prev is None or prev.astimezone(zone).date() != now.astimezone(zone).date():
        return False
    return last_success is None or last_success < prev


def stale_after(spec):
    if isinstance(spec, Every):
        return max(MIN_STALE, dt.timedelta(seconds=3 * spec.seconds))
    return DAILY_GRACE


def is_stale(spec, last_success, now, zone, allowance=None):
    """Has the job failed to succeed within its expected interval?"""
    allowance = allowance or stale_after(spec)
    if isinstance(spec, Every):
        return last_success is None or now - last_success > allowance
    prev = previous_occurrence(spec, now, zone)
    while prev is not None and now - prev <= allowance:     # not yet late for this one
        prev = previous_occurrence(spec, prev - dt.timedelta(seconds=1), zone)
    return prev is not None and (last_success is None or last_success < prev)


# -- delivery windows ---------------------------------------------------------------------

AFTER_HOURS_MODES = ("defer", "send", "digest")


def delivery_window(cal, now, urgent, mode="defer"):
    """When a notice may be emailed: ``(None, True)`` now; ``(t, True)`` at ``t``;
    ``(None, False)`` not at all (it folds into the person's digest).

    Critical (urgent) notices always go at once. Others found outside business hours wait
    for the next business start, or fold into the digest, as ``mode`` says.
    """
    from escalate_cli import sla
    if urgent or mode == "send":
        return None, True
    opens = sla.next_open(cal, now)
    if opens <= now:
        return None, True
    if mode == "digest":
        return None, False
    return opens, True
