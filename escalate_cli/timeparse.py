"""Human times ("tomorrow 9am", "today 17:00", "2024-11-29 09:00", ISO 8601) in a zone."""
import datetime as dt
import re

UTC = dt.timezone.utc
FIRST_YEAR, LAST_YEAR = 1970, 2999     # the years a record can hold: dates outside are typos


def year_in_range(year):
    return FIRST_YEAR <= year <= LAST_YEAR


def in_range(t, text):
    """``t`` if it lies in the years a record can hold, else ValueError."""
    if t is None or not year_in_range(t.year):
        raise ValueError(f"{text.strip()[:40]!r} is out of range: give a time between the "
                         f"years {FIRST_YEAR} and {LAST_YEAR}")
    return t


def parse_when(text, zone, now):
    """Parse ``text`` relative to ``now`` in ``zone``; returns an aware UTC datetime."""
    text = (text or "").strip()
    if not text or "\x00" in text or len(text) > 100:
        raise ValueError(f"cannot read {text[:40]!r} as a time")
    try:
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        pass
    else:
        if t.tzinfo is None:
            t = t.replace(tzinfo=zone)
        try:
            t = t.astimezone(UTC)
        except OverflowError:
            t = None
        return in_range(t, text)
    local_now = now.astimezone(zone).replace(tzinfo=None)
    m = re.fullmatch(r"(today|tomorrow)\s+(?:at\s+)?(\d{1,2})(?::(\d{2}))?\s*(am|pm)?", text.lower())
    if m:
        day = local_now.date() + dt.timedelta(days=1 if m.group(1) == "tomorrow" else 0)
        hour, minute = int(m.group(2)), int(m.group(3) or 0)
        if m.group(4) == "pm" and hour < 12:
            hour += 12
        elif m.group(4) == "am" and hour == 12:
            hour = 0
        if hour > 23 or minute > 59:
            raise ValueError(f"cannot read {text!r} as a time")
        return in_range(dt.datetime.combine(day, dt.time(hour, minute), tzinfo=zone)
                        .astimezone(UTC), text)
    import dateparser
    parsed = dateparser.parse(text, settings={
        "TIMEZONE": zone.key, "RETURN_AS_TIMEZONE_AWARE": True, "PREFER_DATES_FROM": "future",
        "RELATIVE_BASE": local_now, "TO_TIMEZONE": "UTC"})
    if parsed is None:
        raise ValueError(f"cannot read {text!r} as a time; try 2024-11-29 09:00 or 'tomorrow 9am'")
    return in_range(parsed.astimezone(UTC), text)
