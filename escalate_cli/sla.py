"""SLA arithmetic in business time of a company calendar. Pure functions of their inputs.

A :class:`~escalate_cli.config.Calendar` says when clocks run: business days and hours in
the company zone, minus holidays, or always (24x7). Business hours are local wall time, so
a day keeps its 08:00-18:00 across daylight-saving changes; the UTC instants move instead.

A clock allows ``W`` business seconds (the policy's window). Its due time is the first
instant at which ``W`` business seconds have passed since it started, not counting the
business time it spent ON HOLD. A hold that begins after the due time cannot move it: the
clock had already run out. :func:`resolution_due` takes the business seconds spent on hold
before the due time (the escalation's ``paused_seconds``), so a pause shifts the due time by
exactly the business time it lasted.

The use case's example: critical priority (1 business hour to respond), created Thursday
2024-11-28 23:47 in New York, outside business hours: the clock starts at Friday 08:00 and the
response is due Friday 09:00.
"""
import datetime as dt

UTC = dt.timezone.utc
MAX_DAYS = 3700   # ten years of calendar: beyond that a policy is a configuration error


def business_intervals(cal, start):
    """Yield (open, close) UTC intervals of business time from ``start`` on, clipped to it."""
    start = start.astimezone(UTC)
    if cal.always:
        yield start, dt.datetime.max.replace(tzinfo=UTC)
        return
    day = start.astimezone(cal.zone).date() - dt.timedelta(days=1)
    for _ in range(MAX_DAYS):
        day += dt.timedelta(days=1)
        if not is_business_day(cal, day):
            continue
        opens, closes = day_hours(cal, day)
        if closes <= start:
            continue
        yield max(opens, start), closes
    from .errors import ConfigError
    raise ConfigError("settings: the SLA window does not fit in ten years of the business "
                      "calendar (too few business hours or days for it)")


def day_hours(cal, day):
    """The (open, close) UTC instants of business hours on local date ``day``."""
    opens = dt.datetime.combine(day, cal.start, tzinfo=cal.zone).astimezone(UTC)
    closes = dt.datetime.combine(day, cal.end, tzinfo=cal.zone).astimezone(UTC)
    return opens, closes


def is_business_day(cal, day):
    return cal.always or (day.weekday() in cal.days and day not in cal.holidays)


def next_open(cal, t):
    """The first business instant at or after ``t``."""
    return next(business_intervals(cal, t))[0]


def add_business_seconds(cal, start, seconds):
    """The instant at which ``seconds`` of business time have passed since ``start``."""
    seconds = max(0, int(seconds))
    if cal.always:
        return start.astimezone(UTC) + dt.timedelta(seconds=seconds)
    remaining = dt.timedelta(seconds=seconds)
    for opens, closes in business_intervals(cal, start):
        span = closes - opens
        if remaining <= span:
            return opens + remaining
        remaining -= span
    raise AssertionError("unreachable")


def business_seconds_between(cal, a, b):
    """Business seconds in [a, b); zero when b <= a."""
    if b <= a:
        return 0
    if cal.always:
        return int((b - a).total_seconds())
    total = dt.timedelta()
    for opens, closes in business_intervals(cal, a):
        if opens >= b:
            break
        total += min(closes, b) - opens
    return int(total.total_seconds())


def add_business_days(cal, start, days):
    """``days`` whole business days after the first business instant at or after ``start``.

    Created Monday 10:00, 5 business days are due the next Monday 10:00; created Thursday
    23:47, the count starts Friday 08:00 and ends the Friday after at 08:00. Holidays and
    weekends are not counted. On a 24x7 calendar a business day is a calendar day (same
    local wall time, so 23 or 25 hours across a daylight-saving change).
    """
    first = next_open(cal, start)
    local = first.astimezone(cal.zone)
    if cal.always:
        return dt.datetime.combine(local.date() + dt.timedelta(days=days), local.time(),
                                   tzinfo=cal.zone).astimezone(UTC)
    day, counted = local.date(), 0
    while counted < days:
        day += dt.timedelta(days=1)
        if is_business_day(cal, day):
            counted += 1
    return dt.datetime.combine(day, local.time(), tzinfo=cal.zone).astimezone(UTC)


def resolution_window(policy, started_at):
    """Business seconds the resolution clock allows (business days are counted from start)."""
    if policy.resolution_business_days is not None:
        due = add_business_days(policy.calendar, started_at, policy.resolution_business_days)
        return business_seconds_between(policy.calendar, started_at, due)
    return policy.resolution_seconds


def resolution_due(policy, started_at, paused_business_seconds=0):
    """Resolution due time, moved later by exactly the business time spent on hold."""
    cal = policy.calendar
    if policy.resolution_business_days is not None:
        base = add_business_days(cal, started_at, policy.resolution_business_days)
        return add_business_seconds(cal, base, paused_business_seconds)
    return add_business_seconds(cal, started_at, policy.resolution_seconds + paused_business_seconds)


def response_due(policy, started_at):
    return add_business_seconds(policy.calendar, started_at, policy.response_seconds)


def pause_extension(cal, due_at, hold_started_at, hold_ended_at):
    """Business seconds by which a hold moves ``due_at``: all of it if it began before the
    due time, none if the clock had already run out when it began."""
    if due_at is not None and hold_started_at >= due_at:
        return 0
    return business_seconds_between(cal, hold_started_at, hold_ended_at)


def warn_time(cal, started_at, due_at, share, paused_business_seconds=0):
    """The instant when ``share`` of the clock's own window has passed (pauses excluded)."""
    window = business_seconds_between(cal, started_at, due_at) - paused_business_seconds
    return add_business_seconds(cal, started_at, int(max(0, window) * share)
                                + paused_business_seconds)


def elapsed(cal, started_at, at, holds=()):
    """Business seconds counted by a clock between ``started_at`` and ``at``, minus holds.

    ``holds`` are (start, end) pairs; an open hold has end None (still on hold at ``at``).
    """
    total = business_seconds_between(cal, started_at, at)
    for h_start, h_end in holds:
        a = max(h_start, started_at)
        b = min(h_end or at, at)
        total -= business_seconds_between(cal, a, b)
    return max(0, total)


# -- explaining ---------------------------------------------------------------------------

def explain_intervals(cal, start, end):
    """The business intervals counted between ``start`` and ``end``, and the skipped days."""
    counted = [(a, b) for a, b in _clip(cal, start, end)]
    skipped = []
    if not cal.always:
        day = start.astimezone(cal.zone).date()
        last = end.astimezone(cal.zone).date()
        while day <= last:
            if day in cal.holidays:
                skipped.append((day, "holiday"))
            elif day.weekday() not in cal.days:
                skipped.append((day, "weekend"))
            day += dt.timedelta(days=1)
    return counted, skipped


def _clip(cal, start, end):
    if end <= start:
        return
    for opens, closes in business_intervals(cal, start):
        if opens >= end:
            return
        yield opens, min(closes, end)


def gaps(cal, start, end):
    """The non-business stretches of [start, end), each with why it is not counted.

    Yields dicts: ``start``, ``end`` (UTC), ``reasons`` (a list of "night", "weekend" and
    "holiday"), ``days`` (the whole local dates skipped as weekend or holiday, with reason).
    """
    if cal.always or end <= start:
        return []
    out, cursor = [], start
    for opens, closes in list(_clip(cal, start, end)) + [(end, end)]:
        if opens > cursor:
            out.append(_describe_gap(cal, cursor, opens))
        cursor = max(cursor, closes)
    return out


def _describe_gap(cal, a, b):
    zone = cal.zone
    first, last = a.astimezone(zone).date(), b.astimezone(zone).date()
    reasons, days = [], []
    day = first
    night = False
    while day <= last:
        lo = dt.datetime.combine(day, dt.time(0), tzinfo=zone).astimezone(UTC)
        hi = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tzinfo=zone).astimezone(UTC)
        if min(hi, b) > max(lo, a):                     # the gap touches this local date
            if day in cal.holidays and day.weekday() in cal.days:
                days.append((day, "holiday"))
            elif day.weekday() not in cal.days:
                days.append((day, "weekend"))
            else:
                night = True                            # a business day, outside its hours
        day += dt.timedelta(days=1)
    if night:
        reasons.append("night")
    for kind in ("weekend", "holiday"):
        if any(k == kind for _, k in days):
            reasons.append(kind)
    return {"start": a, "end": b, "reasons": reasons, "days": days}


def dst_transitions(zone, a, b):
    """Daylight-saving changes of ``zone`` in [a, b): (instant UTC, offset before, after)."""
    out = []
    a, b = a.astimezone(UTC), b.astimezone(UTC)     # arithmetic in a local zone is wall time
    if b <= a:
        return out
    step = dt.timedelta(hours=6)
    t = a
    while t < b:
        u = min(t + step, b)
        before, after = t.astimezone(zone).utcoffset(), u.astimezone(zone).utcoffset()
        if before != after:
            lo, hi = t, u                                # offset changes in (lo, hi]
            while hi - lo > dt.timedelta(seconds=1):
                mid = lo + (hi - lo) / 2
                if mid.astimezone(zone).utcoffset() == before:
                    lo = mid
                else:
                    hi = mid
            hi = hi.replace(microsecond=0)
            out.append((hi, before, after))
        t = u
    return out
