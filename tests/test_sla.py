"""SLA arithmetic in business time: unit tests and properties (no database).

The company zone is America/New_York, which has daylight-saving time; the March and November
changes of 2024 and 2025 are exercised explicitly and by the properties.
"""
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from escalate_cli import sla
from escalate_cli.config import Settings
from escalate_cli.errors import ConfigError
from escalate_cli.fmt import duration_long, duration_short

NY = ZoneInfo("America/New_York")
UTC = dt.timezone.utc
HOUR = 3600


def ny(*args):
    return dt.datetime(*args, tzinfo=NY)


def settings_with(**kw):
    s = Settings()
    for k, v in kw.items():
        setattr(s, k, v)
    return s


BUSINESS = settings_with(holidays=("2024-12-25", "2025-01-01", "2024-11-28")).calendar()
PLAIN = Settings().calendar()          # no holidays
ALWAYS = Settings().calendar("24x7")


# -- the use case's example ---------------------------------------------------------------

def test_use_case_critical_created_thursday_night_due_friday_nine():
    policy = Settings().policy("critical")
    created = ny(2024, 11, 28, 23, 47)
    assert sla.response_due(policy, created) == ny(2024, 11, 29, 9, 0)
    # 24 business hours: Fri 10h + Mon 10h + Tue 4h
    assert sla.resolution_due(policy, created) == ny(2024, 12, 3, 12, 0)
    age_at_eight = (ny(2024, 11, 29, 8, 0) - created).total_seconds()
    assert duration_long(age_at_eight) == "8 hours 13 minutes"
    resolved_at_nine = (ny(2024, 11, 29, 9, 0) - created).total_seconds()
    assert duration_short(resolved_at_nine) == "9h 13m"


@pytest.mark.parametrize("zone", ["America/New_York", "Europe/London", "Australia/Sydney"])
def test_use_case_example_in_zones_with_daylight_saving(zone):
    tz = ZoneInfo(zone)
    policy = settings_with(timezone=zone).policy("critical")
    created = dt.datetime(2024, 11, 28, 23, 47, tzinfo=tz)
    assert sla.response_due(policy, created) == dt.datetime(2024, 11, 29, 9, 0, tzinfo=tz)


def test_use_case_example_during_summer_time():
    policy = Settings().policy("critical")
    created = ny(2024, 7, 11, 23, 47)             # a Thursday in EDT
    due = sla.response_due(policy, created)
    assert due == ny(2024, 7, 12, 9, 0)
    assert due.astimezone(UTC).hour == 13          # EDT is UTC-4


# -- weekends, holidays, outside hours ----------------------------------------------------

def test_weekend_is_skipped():
    policy = Settings().policy("high")             # 4 business hours to respond
    assert sla.response_due(policy, ny(2024, 11, 29, 17, 30)) == ny(2024, 12, 2, 11, 30)


def test_holiday_is_skipped():
    cal = BUSINESS
    # Tue Dec 24 17:00 + 4h: 1h on Tuesday, Christmas skipped, 3h on Thursday
    assert sla.add_business_seconds(cal, ny(2024, 12, 24, 17), 4 * HOUR) == ny(2024, 12, 26, 11)
    # Thanksgiving (a configured holiday) falls on the use case's creation day
    assert sla.next_open(cal, ny(2024, 11, 28, 10)) == ny(2024, 11, 29, 8)


def test_creation_outside_hours_starts_at_next_opening():
    cal = PLAIN
    assert sla.add_business_seconds(cal, ny(2024, 11, 30, 3, 0), HOUR) == ny(2024, 12, 2, 9)
    assert sla.add_business_seconds(cal, ny(2024, 12, 2, 6, 0), HOUR) == ny(2024, 12, 2, 9)
    assert sla.add_business_seconds(cal, ny(2024, 12, 2, 18, 0), HOUR) == ny(2024, 12, 3, 9)
    # exactly at closing time the window ends at closing, not the next morning
    assert sla.add_business_seconds(cal, ny(2024, 12, 2, 17, 0), HOUR) == ny(2024, 12, 2, 18)


def test_business_seconds_between_counts_only_open_hours():
    cal = PLAIN
    assert sla.business_seconds_between(cal, ny(2024, 11, 29, 17), ny(2024, 12, 2, 9)) == 2 * HOUR
    assert sla.business_seconds_between(cal, ny(2024, 12, 2, 9), ny(2024, 11, 29, 17)) == 0


def test_low_priority_counts_whole_business_days():
    policy = Settings().policy("low")
    assert policy.resolution_business_days == 5 and policy.resolution_seconds is None
    assert sla.resolution_due(policy, ny(2024, 12, 2, 10)) == ny(2024, 12, 9, 10)
    # created at night: counting starts at the next opening
    assert sla.resolution_due(policy, ny(2024, 11, 28, 23, 47)) == ny(2024, 12, 6, 8)
    # created on a Saturday
    assert sla.resolution_due(policy, ny(2024, 11, 30, 12)) == ny(2024, 12, 9, 8)
    # a holiday in the way adds a day
    holiday = settings_with(holidays=("2024-12-25",)).policy("low")
    assert sla.resolution_due(holiday, ny(2024, 12, 23, 10)) == ny(2024, 12, 31, 10)
    assert sla.resolution_window(policy, ny(2024, 12, 2, 10)) == 50 * HOUR


# -- daylight saving ----------------------------------------------------------------------

def test_spring_forward_weekend_keeps_local_business_hours():
    cal = PLAIN
    # Fri Mar 8 2024 17:00 EST + 4h: 1h Friday, 3h Monday (now EDT)
    due = sla.add_business_seconds(cal, ny(2024, 3, 8, 17), 4 * HOUR)
    assert due == ny(2024, 3, 11, 11)
    assert due.astimezone(UTC) == dt.datetime(2024, 3, 11, 15, tzinfo=UTC)
    assert sla.business_seconds_between(cal, ny(2024, 3, 8, 17), due) == 4 * HOUR


def test_fall_back_weekend_keeps_local_business_hours():
    cal = PLAIN
    due = sla.add_business_seconds(cal, ny(2024, 11, 1, 17), 4 * HOUR)
    assert due == ny(2024, 11, 4, 11)
    assert due.astimezone(UTC) == dt.datetime(2024, 11, 4, 16, tzinfo=UTC)


def test_24x7_counts_real_hours_across_dst():
    # Sat Mar 9 2024 12:00 EST + 24 real hours = Sun Mar 10 13:00 EDT
    assert sla.add_business_seconds(ALWAYS, ny(2024, 3, 9, 12), 24 * HOUR) == ny(2024, 3, 10, 13)
    assert sla.add_business_seconds(ALWAYS, ny(2024, 11, 2, 12), 24 * HOUR) == ny(2024, 11, 3, 11)
    policy = settings_with(sla={"critical": {"response_hours": 1, "resolution_hours": 24,
                                             "calendar": "24x7", "escalate_to": "ceo"}}
                           ).policy("critical")
    created = ny(2024, 11, 28, 23, 47)
    assert sla.response_due(policy, created) == ny(2024, 11, 29, 0, 47)
    assert sla.resolution_due(policy, created) == ny(2024, 11, 29, 23, 47)


def test_dst_transitions_found_to_the_second():
    found = sla.dst_transitions(NY, ny(2024, 1, 1), ny(2025, 1, 1))
    assert [(t, b.total_seconds() / HOUR, a.total_seconds() / HOUR) for t, b, a in found] == [
        (dt.datetime(2024, 3, 10, 7, tzinfo=UTC), -5, -4),
        (dt.datetime(2024, 11, 3, 6, tzinfo=UTC), -4, -5)]
    assert sla.dst_transitions(ZoneInfo("UTC"), ny(2024, 1, 1), ny(2025, 1, 1)) == []


def test_gaps_say_why_time_was_skipped():
    gaps = sla.gaps(BUSINESS, ny(2024, 11, 27, 17), ny(2024, 12, 2, 9))
    assert [(g["start"], g["end"], g["reasons"]) for g in gaps] == [
        (ny(2024, 11, 27, 18), ny(2024, 11, 29, 8), ["night", "holiday"]),
        (ny(2024, 11, 29, 18), ny(2024, 12, 2, 8), ["night", "weekend"])]
    assert gaps[0]["days"] == [(dt.date(2024, 11, 28), "holiday")]
    assert gaps[1]["days"] == [(dt.date(2024, 11, 30), "weekend"), (dt.date(2024, 12, 1), "weekend")]
    assert sla.gaps(ALWAYS, ny(2024, 11, 27), ny(2024, 12, 2)) == []


# -- holds --------------------------------------------------------------------------------

def test_hold_spanning_nights_moves_due_by_business_time_only():
    policy = Settings().policy("critical")
    created = ny(2024, 11, 28, 23, 47)
    due = sla.resolution_due(policy, created)                     # Tue Dec 3 12:00
    held, resumed = ny(2024, 11, 29, 16), ny(2024, 12, 2, 10)     # Fri 16:00 -> Mon 10:00
    paused = sla.pause_extension(policy.calendar, due, held, resumed)
    assert paused == 4 * HOUR                                     # 2h Friday + 2h Monday
    moved = sla.resolution_due(policy, created, paused)
    assert moved == ny(2024, 12, 3, 16)
    assert sla.elapsed(policy.calendar, created, moved, [(held, resumed)]) == 24 * HOUR


def test_hold_after_breach_does_not_move_due():
    cal = PLAIN
    due = ny(2024, 12, 3, 12)
    assert sla.pause_extension(cal, due, ny(2024, 12, 3, 13), ny(2024, 12, 4, 13)) == 0
    assert sla.pause_extension(cal, due, ny(2024, 12, 3, 11), ny(2024, 12, 3, 13)) == 2 * HOUR


def test_warning_time_excludes_pauses():
    cal = PLAIN
    start = ny(2024, 12, 2, 8)
    due = sla.add_business_seconds(cal, start, 10 * HOUR + 2 * HOUR)   # 10h window + 2h paused
    warn = sla.warn_time(cal, start, due, 0.75, 2 * HOUR)
    assert sla.business_seconds_between(cal, start, warn) == int(7.5 * HOUR) + 2 * HOUR


# -- configuration ------------------------------------------------------------------------

def test_business_days_override_replaces_default_hours(tmp_path):
    from escalate_cli.config import load_settings
    path = tmp_path / "c.toml"
    path.write_text('[sla.critical]\nresolution_business_days = 2\n'
                    '[sla.low]\nresolution_hours = 30\ncalendar = "24x7"\nescalate_to = "coo"\n')
    s = load_settings({"ESCALATE_CONFIG": str(path)})
    crit, low = s.policy("critical"), s.policy("low")
    assert (crit.resolution_seconds, crit.resolution_business_days) == (None, 2)
    assert (low.resolution_seconds, low.resolution_business_days) == (30 * HOUR, None)
    assert low.calendar.always and low.escalate_to == "coo"


@pytest.mark.parametrize("rules, message", [
    ({"response_hours": 1, "resolution_hours": 24, "calendar": "weekdays"}, "calendar"),
    ({"response_hours": 0, "resolution_hours": 24}, "greater than zero"),
    ({"response_hours": 1, "resolution_hours": 24, "escalate_to": "cfo"}, "escalate_to"),
    ({"response_hours": "soon", "resolution_hours": 24}, "numbers"),
])
def test_bad_policy_is_a_clear_error(rules, message):
    s = settings_with(sla={"critical": rules})
    with pytest.raises(ConfigError) as exc:
        s.policy("critical")
    assert message in exc.value.message


# -- properties ---------------------------------------------------------------------------

def _instants(lo, hi):
    span = int((hi - lo).total_seconds()) // 60
    return st.integers(0, span).map(lambda m: (lo + dt.timedelta(minutes=m)).astimezone(UTC))


ANY_TIME = _instants(ny(2024, 1, 1), ny(2026, 1, 1))
# the daylight-saving weekends of 2024 and 2025, from the Thursday before to the Tuesday after
DST_WEEKENDS = st.one_of(*[_instants(ny(*d) - dt.timedelta(days=3), ny(*d) + dt.timedelta(days=2))
                           for d in ((2024, 3, 10), (2024, 11, 3), (2025, 3, 9), (2025, 11, 2))])
STARTS = st.one_of(ANY_TIME, DST_WEEKENDS)
WINDOWS = st.integers(0, 120 * HOUR)
CALENDARS = st.sampled_from([BUSINESS, PLAIN, ALWAYS])
FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(cal=CALENDARS, start=STARTS, seconds=WINDOWS)
def test_due_never_before_creation_and_counts_exactly_the_window(cal, start, seconds):
    due = sla.add_business_seconds(cal, start, seconds)
    assert due >= start
    assert sla.business_seconds_between(cal, start, due) == seconds


@FAST
@given(cal=CALENDARS, start=STARTS, a=WINDOWS, b=WINDOWS)
def test_due_is_monotone_in_the_window(cal, start, a, b):
    a, b = sorted((a, b))
    assert sla.add_business_seconds(cal, start, a) <= sla.add_business_seconds(cal, start, b)


@FAST
@given(cal=CALENDARS, s1=STARTS, s2=STARTS, seconds=WINDOWS)
def test_due_is_monotone_in_the_start(cal, s1, s2, seconds):
    s1, s2 = sorted((s1, s2))
    assert sla.add_business_seconds(cal, s1, seconds) <= sla.add_business_seconds(cal, s2, seconds)


@FAST
@given(cal=CALENDARS, start=STARTS, window=st.integers(HOUR, 80 * HOUR),
       offset=st.integers(0, 60 * 24 * 6), length=st.integers(1, 60 * 24 * 5))
def test_a_pause_shifts_due_by_exactly_the_paused_business_time(cal, start, window, offset, length):
    due = sla.add_business_seconds(cal, start, window)
    held = start + dt.timedelta(minutes=offset)
    resumed = held + dt.timedelta(minutes=length)
    paused = sla.pause_extension(cal, due, held, resumed)
    moved = sla.add_business_seconds(cal, start, window + paused)
    assert moved >= due
    assert sla.business_seconds_between(cal, due, moved) == paused
    if held < due:
        assert paused == sla.business_seconds_between(cal, held, resumed)
        # the clock counts exactly its window of time that was not on hold
        assert sla.elapsed(cal, start, moved, [(held, resumed)]) == window
    else:
        assert moved == due


@FAST
@given(cal=CALENDARS, start=STARTS, window=st.integers(HOUR, 60 * HOUR),
       holds=st.lists(st.tuples(st.integers(0, 60 * 24 * 3), st.integers(1, 60 * 24 * 3)),
                      max_size=3))
def test_holds_applied_one_by_one_leave_exactly_the_window_unpaused(cal, start, window, holds):
    """Resuming each hold in turn (as the domain does) gives the first instant at which the
    clock has counted its whole window of time not on hold."""
    t, paused, windows = start, 0, []
    due = sla.add_business_seconds(cal, start, window)
    for gap, length in holds:
        held = t + dt.timedelta(minutes=gap)
        resumed = held + dt.timedelta(minutes=length)
        moved = sla.pause_extension(cal, due, held, resumed)
        if moved:
            windows.append((held, resumed))
        paused += moved
        due = sla.add_business_seconds(cal, start, window + paused)
        t = resumed
    assert sla.elapsed(cal, start, due, windows) == window


@FAST
@given(cal=st.sampled_from([BUSINESS, PLAIN]), start=STARTS, days=st.integers(1, 10))
def test_business_days_are_whole_days(cal, start, days):
    due = sla.add_business_days(cal, start, days)
    assert due > start
    assert sla.business_seconds_between(cal, start, due) == days * 10 * HOUR
    local = due.astimezone(NY)
    assert sla.is_business_day(cal, local.date())
    assert dt.time(8) <= local.time() < dt.time(18)


@FAST
@given(start=DST_WEEKENDS, seconds=WINDOWS)
def test_business_intervals_are_ten_local_hours_across_dst(start, seconds):
    for opens, closes in list(sla._clip(PLAIN, start, sla.add_business_seconds(PLAIN, start, seconds))):
        lo, hi = opens.astimezone(NY), closes.astimezone(NY)
        assert lo.date() == hi.date() and dt.time(8) <= lo.time() and hi.time() <= dt.time(18)
        assert lo.weekday() < 5
