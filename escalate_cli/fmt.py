"""How times and durations are shown to people."""
import datetime as dt


def duration_long(seconds):
    """'8 hours 13 minutes', as the detail screen shows age."""
    seconds = max(0, int(seconds))
    days, rem = divmod(seconds, 86400)
    hours, rem = divmod(rem, 3600)
    minutes = rem // 60
    parts = []
    if days:
        parts.append(f"{days} day{'s' if days != 1 else ''}")
    if hours:
        parts.append(f"{hours} hour{'s' if hours != 1 else ''}")
    if minutes or not parts:
        parts.append(f"{minutes} minute{'s' if minutes != 1 else ''}")
    return " ".join(parts)


def duration_short(seconds):
    """'9h 13m', as resolution time is shown; '2d 3h' beyond a day."""
    seconds = max(0, int(seconds))
    days, rem = divmod(seconds, 86400)
    hours, rem = divmod(rem, 3600)
    minutes = rem // 60
    if days:
        return f"{days}d {hours}h" if not minutes else f"{days}d {hours}h {minutes}m"
    if hours:
        return f"{hours}h {minutes}m"
    return f"{minutes}m"


def local(t, zone):
    return t.astimezone(zone) if t is not None else None


def when(t, zone):
    """'Nov 28, 2024 11:47 PM', as the screens show times."""
    if t is None:
        return "-"
    t = t.astimezone(zone)
    return f"{t:%b} {t.day}, {t.year} {int(t.strftime('%I'))}:{t:%M %p}"


def when_short(t, zone, now):
    """'Dec 3 9:00 AM' in the year of ``now``, else as :func:`when`: for tables."""
    if t is None:
        return "-"
    t = t.astimezone(zone)
    if t.year != now.astimezone(zone).year:
        return when(t, zone)
    return f"{t:%b} {t.day} {int(t.strftime('%I'))}:{t:%M %p}"


def iso(t):
    return t.isoformat() if t is not None else None


def iso_local(t, zone):
    return t.astimezone(zone).isoformat() if t is not None else None


def money(value):
    if value is None:
        return "-"
    return f"${value:,.2f}".replace(".00", "") if value == int(value) else f"${value:,.2f}"


def utcnow():
    return dt.datetime.now(dt.timezone.utc)
