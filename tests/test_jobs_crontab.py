"""crontab.example is a real crontab, and its schedule is the scheduler's default."""
import datetime as dt
import pathlib
import re

from croniter import croniter

from jobs.timing import DEFAULT_SCHEDULE, Daily, Every, parse_schedule

CRONTAB = pathlib.Path(__file__).resolve().parent.parent / "crontab.example"
ENV = re.compile(r"^[A-Z_][A-Z0-9_]*=")


def entries():
    out = {}
    for line in CRONTAB.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if ENV.match(line):
            continue
        fields = line.split(None, 5)
        assert len(fields) == 6, line
        expr, command = " ".join(fields[:5]), fields[5]
        assert croniter.is_valid(expr), line
        words = command.split()
        assert words[:2] == ["escalate", "jobs"], line
        out[words[2]] = expr
    return out


def fires(expr, start, n):
    it = croniter(expr, start)
    return [it.get_next(dt.datetime) for _ in range(n)]


def test_environment_lines():
    env = dict(line.split("=", 1) for line in CRONTAB.read_text().splitlines()
               if ENV.match(line.strip()))
    assert env["SHELL"] == "/bin/sh"
    assert "ESCALATE_DB" in env and "ESCALATE_CONFIG" in env and "PATH" in env
    assert not any("PASSWORD" in k for k in env)          # secrets are not kept in crontabs


def test_every_job_is_scheduled_as_the_brief_asks():
    jobs = entries()
    assert set(jobs) == {"sla-sweep", "deliver", "reminders", "digest", "rate-watch", "status"}
    monday = dt.datetime(2024, 12, 2, 0, 0)
    sweep = fires(jobs["sla-sweep"], monday, 3)
    assert [(b - a).total_seconds() for a, b in zip(sweep, sweep[1:])] == [300, 300]
    deliver = fires(jobs["deliver"], monday, 3)
    assert [(b - a).total_seconds() for a, b in zip(deliver, deliver[1:])] == [60, 60]
    reminders = fires(jobs["reminders"], monday, 2)
    assert (reminders[1] - reminders[0]).total_seconds() == 300
    week = fires(jobs["digest"], monday, 6)
    assert [t.strftime("%a %H:%M") for t in week] == [
        "Mon 07:00", "Tue 07:00", "Wed 07:00", "Thu 07:00", "Fri 07:00", "Mon 07:00"]
    nights = fires(jobs["rate-watch"], monday, 2)
    assert (nights[1] - nights[0]) == dt.timedelta(days=1) and nights[0].hour < 6


def test_crontab_matches_the_in_process_schedule():
    jobs = entries()
    monday = dt.datetime(2024, 12, 2, 0, 0)
    for name, text in DEFAULT_SCHEDULE.items():
        spec = parse_schedule(text)
        times = fires(jobs[name], monday, 8)
        if isinstance(spec, Every):
            assert (times[1] - times[0]).total_seconds() == spec.seconds, name
        else:
            assert isinstance(spec, Daily)
            assert {t.time() for t in times} == {spec.at}, name
            assert {t.weekday() for t in times} == set(spec.days), name
