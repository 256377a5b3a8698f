"""The jobs' time predicates: schedules, staleness, delivery windows. Pure functions."""
import datetime as dt
from zoneinfo import ZoneInfo

import pytest

from escalate_cli.config import Settings
from jobs.sweep import Item, classify
from jobs.timing import (Daily, Every, delivery_window, is_due, is_stale, parse_duration,
                         parse_schedule, previous_occurrence)

NY = ZoneInfo("America/New_York")
UTC = dt.timezone.utc


def ny(*args):
    return dt.datetime(*args, tzinfo=NY).astimezone(UTC)


def test_parse_schedules():
    assert parse_schedule("5m") == Every(300)
    assert parse_schedule("30s") == Every(30)
    assert parse_schedule("07:00 mon-fri") == Daily(dt.time(7), frozenset(range(5)))
    assert parse_schedule("02:30") == Daily(dt.time(2, 30), frozenset(range(7)))
    assert parse_schedule("9:15 sat,sun") == Daily(dt.time(9, 15), frozenset({5, 6}))
    assert str(parse_schedule("07:00 mon-fri")) == "daily 07:00 mon-fri"
    assert str(parse_schedule("90s")) == "every 90s" and str(Every(3600)) == "every 1h"
    assert parse_duration("2h") == dt.timedelta(hours=2)
    for bad in ("often", "25:00", "0m", "07:00 someday"):
        with pytest.raises(ValueError):
            parse_schedule(bad)


def test_daily_due_and_stale():
    digest = parse_schedule("07:00 mon-fri")
    monday_7 = ny(2024, 12, 2, 7, 0)
    assert previous_occurrence(digest, ny(2024, 12, 2, 6, 59), NY) == ny(2024, 11, 29, 7, 0)
    assert previous_occurrence(digest, ny(2024, 12, 1, 12, 0), NY) == ny(2024, 11, 29, 7, 0)
    assert is_due(digest, ny(2024, 11, 29, 7, 0), ny(2024, 12, 2, 7, 1), NY)
    assert not is_due(digest, monday_7, ny(2024, 12, 2, 9, 0), NY)
    assert not is_due(digest, ny(2024, 11, 29, 7, 0), ny(2024, 12, 1, 12, 0), NY)   # Sunday
    # a scheduler started late catches up the same day, never with an older occurrence
    assert is_due(digest, None, ny(2024, 12, 2, 10, 0), NY)
    assert not is_due(digest, None, ny(2024, 12, 3, 1, 0), NY)          # 1 AM: not yet today's
    assert not is_due(digest, None, ny(2024, 12, 7, 9, 0), NY)          # Saturday
    assert not is_due(digest, ny(2024, 11, 29, 7, 0), ny(2024, 12, 3, 1, 0), NY)
    # stale only once the grace (2 hours) after a missed occurrence has passed
    assert not is_stale(digest, ny(2024, 11, 29, 7, 0), ny(2024, 12, 2, 8, 59), NY)
    assert is_stale(digest, ny(2024, 11, 29, 7, 0), ny(2024, 12, 2, 9, 1), NY)
    assert not is_stale(digest, monday_7, ny(2024, 12, 2, 23, 0), NY)
    assert is_stale(digest, None, ny(2024, 12, 2, 10, 0), NY)


def test_interval_stale_after_three_intervals_at_least_ten_minutes():
    t = ny(2024, 12, 2, 9, 0)
    assert not is_stale(Every(300), t, t + dt.timedelta(minutes=15), NY)
    assert is_stale(Every(300), t, t + dt.timedelta(minutes=15, seconds=1), NY)
    assert not is_stale(Every(60), t, t + dt.timedelta(minutes=10), NY)
    assert is_stale(Every(60), t, t + dt.timedelta(minutes=11), NY)
    assert is_stale(Every(60), None, t, NY)


def test_delivery_window():
    cal = Settings().calendar()
    tue_8 = ny(2024, 12, 3, 8, 0)
    assert delivery_window(cal, ny(2024, 12, 2, 10, 0), urgent=False) == (None, True)
    assert delivery_window(cal, ny(2024, 12, 2, 18, 5), urgent=False) == (tue_8, True)
    assert delivery_window(cal, ny(2024, 12, 2, 18, 5), urgent=True) == (None, True)
    assert delivery_window(cal, ny(2024, 12, 7, 11, 0), urgent=False) == (ny(2024, 12, 9, 8, 0), True)
    assert delivery_window(cal, ny(2024, 12, 2, 18, 5), False, "digest") == (None, False)
    assert delivery_window(cal, ny(2024, 12, 2, 18, 5), False, "send") == (None, True)


def item(**kw):
    base = dict(clock_id=1, kind="response", warn_at=ny(2024, 12, 2, 9, 45),
                due_at=ny(2024, 12, 2, 10, 0), next_check_at=ny(2024, 12, 2, 9, 45), esc_id=1,
                code="ESC-1", title="t", priority="critical", status="pending", owner_id=None,
                pod_id=1, account=None)
    base.update(kw)
    return Item(**base)


def test_classify():
    late = dt.timedelta(minutes=30)
    assert classify(item(), ny(2024, 12, 2, 9, 44), late).action is None
    w = classify(item(), ny(2024, 12, 2, 9, 50), late)
    assert (w.action, w.at, w.late) == ("warning", ny(2024, 12, 2, 9, 45), False)
    b = classify(item(), ny(2024, 12, 2, 10, 0), late)
    assert (b.action, b.at) == ("breach", ny(2024, 12, 2, 10, 0))
    assert classify(item(), ny(2024, 12, 2, 10, 31), late).late is True
    assert classify(item(status="in_progress"), ny(2024, 12, 2, 11, 0), late).action is None
    assert classify(item(kind="resolution", status="on_hold", due_at=None),
                    ny(2024, 12, 9, 11, 0), late).action is None
    assert classify(item(kind="resolution", status="in_progress"),
                    ny(2024, 12, 2, 11, 0), late).action == "breach"
