"""SLA arithmetic in business time of a company calendar. Pure functions of their inputs.

A :class:`~escalate_cli.config.Calendar` says when clocks run: business days and hours in
the company zone, minus holidays, or always (24x7). Business hours are local wall time, so
a day keeps its 08:00-18:00 across daylight-saving changes; the UTC instants move instead.

>>> # critical: 1 business hour to respond; created Thu 23:47 -> due Fri 09:00 local
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
        opens = dt.datetime.combine(day, cal.start, tzinfo=cal.zone).astimezone(UTC)
        closes = dt.datetime.combine(day, cal.end, tzinfo=cal.zone).astimezone(UTC)
        if closes <= start:
            continue
        yield max(opens, start), closes
    raise ValueError("the calendar has no business time in ten years")


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
    """``days`` whole business days after the first business instant at or after ``start``."""
    first = next_open(cal, start)
    if cal.always:
        local = first.astimezone(cal.zone)
        return dt.datetime.combine(local.date() + dt.timedelta(days=days), local.timetz().replace(tzinfo=None),
                                   tzinfo=cal.zone).astimezone(UTC)
    local = first.astimezone(cal.zone)
    day, counted = local.date(), 0
    while counted < days:
        day += dt.timedelta(days=1)
        if is_business_day(cal, day):
            counted += 1
    return dt.datetime.combine(day, local.time(), tzinfo=cal.zone).astimezone(UTC)


def resolution_due(policy, started_at, paused_business_seconds=0):
    """Resolution due time, moved later by exactly the business time spent on hold."""
    cal = policy.calendar
    if policy.resolution_business_days is not None:
        base = add_business_days(cal, started_at, policy.resolution_business_days)
        return add_business_seconds(cal, base, paused_business_seconds)
    return add_business_seconds(cal, started_at, policy.resolution_seconds + paused_business_seconds)


def response_due(policy, started_at):
    return add_business_seconds(policy.calendar, started_at, policy.response_seconds)


def warn_time(cal, started_at, due_at, share):
    """The instant when ``share`` of the business window between start and due has passed."""
    window = business_seconds_between(cal, started_at, due_at)
    return add_business_seconds(cal, started_at, int(window * share))


def explain_intervals(cal, start, end):
    """The business intervals counted between ``start`` and ``end``, and what was skipped."""
    counted, skipped = [], []
    if cal.always:
        return [(start, end)], skipped
    day = start.astimezone(cal.zone).date()
    last = end.astimezone(cal.zone).date()
    while day <= last:
        if day in cal.holidays:
            skipped.append((day, "holiday"))
        elif day.weekday() not in cal.days:
            skipped.append((day, "weekend"))
        else:
            opens = dt.datetime.combine(day, cal.start, tzinfo=cal.zone).astimezone(UTC)
            closes = dt.datetime.combine(day, cal.end, tzinfo=cal.zone).astimezone(UTC)
            a, b = max(opens, start), min(closes, end)
            if a < b:
                counted.append((a, b))
        day += dt.timedelta(days=1)
    return counted, skipped
