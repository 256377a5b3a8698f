"""Configuration resolved in one place: the settings file, the environment, and the clock.

Precedence: command-line option, then environment variable, then the settings file, then
the default. Secrets (SMTP password, SMS URL) come from the environment or the file and are
never printed: :meth:`Settings.public` masks them.
"""
import datetime as dt
import os
import stat
import sys
from dataclasses import dataclass, field
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import ConfigError

APP = "escalate"

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

MAX_SLA_HOURS = 2000          # about a year of business hours: clocks are counted ahead
MAX_SLA_DAYS = 250            # ... and a year of business days

DEFAULT_SLA = {
    # priority: response hours, resolution (hours or business days), escalate to on breach
    "critical": {"response_hours": 1, "resolution_hours": 24, "escalate_to": "ceo"},
    "high": {"response_hours": 4, "resolution_hours": 48, "escalate_to": "coo"},
    "medium": {"response_hours": 8, "resolution_hours": 72, "escalate_to": "coo"},
    "low": {"response_hours": 24, "resolution_business_days": 5, "escalate_to": None},
}


def user_data_dir():
    from platformdirs import user_data_dir as _d
    return _d(APP, appauthor=False)


def user_config_dir():
    from platformdirs import user_config_dir as _d
    return _d(APP, appauthor=False)


def default_db_url():
    return "sqlite:///" + os.path.join(user_data_dir(), "escalate.db")


def config_path(env=os.environ):
    return env.get("ESCALATE_CONFIG") or os.path.join(user_config_dir(), "config.toml")


def _parse_hhmm(value, key):
    try:
        return dt.time.fromisoformat(str(value))
    except ValueError:
        raise ConfigError(f"settings: {key} must be a time like 08:00, not {value!r}")


def _parse_bool(value):
    return str(value).strip().lower() in ("1", "true", "yes", "on")


@dataclass
class Calendar:
    """When SLA clocks run: business days and hours in a zone, minus holidays; or always."""
    zone: ZoneInfo
    days: frozenset = frozenset(range(5))      # Monday=0
    start: dt.time = dt.time(8)
    end: dt.time = dt.time(18)
    holidays: frozenset = frozenset()
    always: bool = False                       # a 24x7 calendar

    @property
    def name(self):
        if self.always:
            return "24x7"
        days = ",".join(WEEKDAYS[d] for d in sorted(self.days))
        return f"business {days} {self.start:%H:%M}-{self.end:%H:%M} {self.zone.key}"


@dataclass
class Policy:
    priority: str
    response_seconds: int
    resolution_seconds: int | None
    resolution_business_days: int | None
    escalate_to: str | None
    calendar: Calendar
    version: str


@dataclass
class Settings:
    company: str = "InTime"
    timezone: str = "America/New_York"
    business_days: tuple = ("mon", "tue", "wed", "thu", "fri")
    business_start: str = "08:00"
    business_end: str = "18:00"
    holidays: tuple = ()
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_user: str | None = None
    smtp_password: str | None = None
    smtp_starttls: bool = False
    smtp_ssl: bool = False
    smtp_timeout: float = 10.0
    mail_from: str = "escalations@intime.com"
    sms_url: str | None = None
    outbox_lease_seconds: int = 300         # a deliverer that dies loses its messages this long
    outbox_max_attempts: int = 8
    outbox_backoff_seconds: int = 60        # doubled after each failed attempt ...
    outbox_backoff_max_seconds: int = 6 * 3600   # ... up to this
    template_dir: str | None = None
    base_url: str | None = None
    attachment_max_bytes: int = 10 * 1024 * 1024
    warn_share: float = 0.75
    sla: dict = field(default_factory=lambda: {k: dict(v) for k, v in DEFAULT_SLA.items()})
    sla_version: str = "default-1"
    jobs: dict = field(default_factory=dict)
    digest_send_empty: bool = False
    guide: dict = field(default_factory=dict)      # [guide.KEY] overrides of the handling guide
    insight: dict = field(default_factory=dict)    # [insight]: guide_file, similar, ...
    path: str | None = None

    # -- derived ------------------------------------------------------------------------
    @property
    def zone(self):
        try:
            return ZoneInfo(self.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"settings: unknown time zone {self.timezone!r}")

    def calendar(self, kind="business"):
        if kind == "24x7":
            return Calendar(zone=self.zone, always=True)
        if kind != "business":
            raise ConfigError(f"settings: an SLA calendar is \"business\" or \"24x7\", not {kind!r}")
        try:
            days = frozenset(WEEKDAYS.index(d.lower()[:3]) for d in self.business_days)
        except ValueError:
            raise ConfigError(f"settings: business_hours.days must be among {', '.join(WEEKDAYS)}")
        holidays = set()
        for h in self.holidays:
            try:
                holidays.add(dt.date.fromisoformat(str(h)))
            except ValueError:
                raise ConfigError(f"settings: holiday {h!r} is not a date like 2024-12-25")
        start = _parse_hhmm(self.business_start, "business_hours.start")
        end = _parse_hhmm(self.business_end, "business_hours.end")
        if not days or end <= start:
            raise ConfigError("settings: business hours need at least one day and end after start")
        return Calendar(zone=self.zone, days=days, start=start, end=end,
                        holidays=frozenset(holidays))

    def policy(self, priority):
        p = self.sla.get(priority)
        if p is None:
            raise ConfigError(f"settings: no SLA policy for priority {priority!r}")
        hours = p.get("resolution_hours")
        bdays = p.get("resolution_business_days")
        where = f"settings: sla.{priority}"
        try:
            response = float(p.get("response_hours", 0))
            hours = float(hours) if hours is not None else None
            bdays = int(bdays) if bdays is not None and hours is None else None
        except (TypeError, ValueError, OverflowError):
            raise ConfigError(f"{where}: hours and business days must be numbers")
        if not 0 < response <= MAX_SLA_HOURS or (hours is None and bdays is None) \
                or (hours is not None and not 0 < hours <= MAX_SLA_HOURS) \
                or (bdays is not None and not 0 < bdays <= MAX_SLA_DAYS):
            raise ConfigError(f"{where} needs response_hours and resolution_hours (up to "
                              f"{MAX_SLA_HOURS}) or resolution_business_days (up to "
                              f"{MAX_SLA_DAYS}) greater than zero")
        escalate_to = (str(p.get("escalate_to") or "").lower() or None)
        if escalate_to in ("none", "-"):
            escalate_to = None
        if escalate_to not in (None, "coo", "ceo"):
            raise ConfigError(f"{where}.escalate_to must be coo, ceo or none, not {escalate_to!r}")
        return Policy(
            priority=priority,
            response_seconds=int(response * 3600),
            resolution_seconds=int(hours * 3600) if hours is not None else None,
            resolution_business_days=bdays,
            escalate_to=escalate_to,
            calendar=self.calendar(p.get("calendar", "business")),
            version=self.sla_version,
        )

    def public(self):
        """Settings as shown to people: secrets masked."""
        out = {k: v for k, v in self.__dict__.items()}
        for secret in ("smtp_password", "sms_url"):
            if out.get(secret):
                out[secret] = "********"
        return out


# The settings reference: (file key, environment variable, default, meaning). The docs page
# docs/settings.md is generated from this table (escalate config reference) and a test keeps
# them equal, so the reference cannot drift from the code.
REFERENCE = [
    ("company", None, "InTime", "Company name used in emails and screens."),
    ("timezone", None, "America/New_York", "Company zone: escalation codes, calendars, display."),
    ("base_url", None, "(none)", "Link prefix for escalations in emails, e.g. https://intra/escalations."),
    ("business_hours.days", None, "mon..fri", "Business days of the SLA calendar."),
    ("business_hours.start", None, "08:00", "Start of the business day (local time)."),
    ("business_hours.end", None, "18:00", "End of the business day (local time)."),
    ("business_hours.holidays", None, "[]", "Dates (YYYY-MM-DD) on which SLA clocks stop."),
    ("holidays", None, "[]", "Older spelling of business_hours.holidays."),
    ("sla.warn_share", None, "0.75", "Share of an SLA window after which a warning goes out."),
    ("sla.version", None, "default-1", "Name of the SLA policy; escalations keep the one they opened under."),
    ("sla.PRIORITY.response_hours", None, "1 / 4 / 8 / 24", "Business hours to claim (critical/high/medium/low)."),
    ("sla.PRIORITY.resolution_hours", None, "24 / 48 / 72 / -", "Business hours to resolve."),
    ("sla.PRIORITY.resolution_business_days", None, "- / - / - / 5", "Whole business days to resolve (instead of hours)."),
    ("sla.PRIORITY.calendar", None, "business", "'business' or '24x7'."),
    ("sla.PRIORITY.escalate_to", None, "ceo / coo / coo / -", "Role told of a breach."),
    ("smtp.host", "ESCALATE_SMTP_HOST", "localhost", "SMTP server."),
    ("smtp.port", "ESCALATE_SMTP_PORT", "25", "SMTP port."),
    ("smtp.user", "ESCALATE_SMTP_USER", "(none)", "SMTP login."),
    ("smtp.password", "ESCALATE_SMTP_PASSWORD", "(none)", "SMTP password (secret; prefer the environment)."),
    ("smtp.starttls", "ESCALATE_SMTP_STARTTLS", "false", "Upgrade the connection with STARTTLS."),
    ("smtp.ssl", None, "false", "Connect with implicit TLS (port 465)."),
    ("smtp.timeout", None, "10", "Seconds before an SMTP attempt gives up."),
    ("smtp.from", "ESCALATE_MAIL_FROM", "escalations@intime.com", "Sender address."),
    ("sms.url", "ESCALATE_SMS_URL", "(none)", "Apprise URL of the SMS gateway (secret)."),
    ("outbox.max_attempts", None, "8", "Attempts before a message is given up ('dead')."),
    ("outbox.backoff_seconds", None, "60",
     "Wait before the first retry; doubled after each failure."),
    ("outbox.backoff_max_seconds", None, "21600", "Longest wait between two retries."),
    ("outbox.lease_seconds", None, "300",
     "How long a deliverer holds a message it is sending; after that (a crashed deliverer) "
     "another takes it."),
    ("templates.folder", "ESCALATE_TEMPLATES", "(none)", "Folder whose templates override the built-in ones."),
    ("attachments.max_bytes", None, "10485760", "Largest attachment accepted."),
    ("digest.send_empty", None, "false", "Send a digest even when there is nothing to report."),
    ("jobs.after_hours", None, "defer",
     "Non-critical notices found outside business hours: defer (to the next business start), "
     "send, or digest."),
    ("jobs.catch_up_after", None, "30m",
     "Warnings and breaches found later than this (an outage) reach each person as one "
     "catch-up message."),
    ("jobs.call_reminder", None, "15m", "Remind the owner this long before a scheduled call."),
    ("jobs.task_due_soon", None, "24h", "Remind a task's assignee this long before it is due."),
    ("jobs.follow_up_after", None, "48h", "Remind the owner of an escalation idle this long."),
    ("jobs.disabled", None, "[]", "Jobs that 'escalate jobs run' skips and 'jobs status' ignores."),
    ("jobs.batch", None, "500", "SLA clocks the sweep reads and writes per transaction."),
    ("jobs.schedule.JOB", None,
     "sla-sweep 5m, deliver 1m, reminders 5m, digest 07:00 mon-fri, rate-watch 02:30",
     "When 'escalate jobs run' runs each job (an interval, or HH:MM [days] in the company "
     "zone)."),
    ("jobs.stale_after.JOB", None, "3 intervals (at least 10m); a daily job 2h after its time",
     "When 'escalate jobs status' calls a job stale."),
    ("jobs.rate_watch.pod", None, "(see README)",
     "The pod that receives the rate watch's system escalations."),
    (None, "ESCALATE_DB", "SQLite in the data folder", "Database URL (or --db)."),
    (None, "ESCALATE_USER", "OS login", "Acting user (or --as)."),
    (None, "ESCALATE_CONFIG", "~/.config/escalate/config.toml", "Settings file."),
    (None, "ESCALATE_NOW", "real time", "Pin 'now' (ISO 8601 with offset) for replays and tests."),
    (None, "ESCALATE_BUSY_TIMEOUT_MS", "5000", "How long a command waits for a lock another holds (SQLite busy timeout, PostgreSQL lock_timeout)."),
    (None, "NO_COLOR", "(unset)", "Plain output even on a terminal."),
    ("guide.KEY", None, "(the shipped guide)",
     "Override one entry of the handling guide: category, subcategory, steps, escalate_if, "
     "enabled = false to drop it (see escalate guide)."),
    ("insight.guide_file", None, "(none)", "A TOML file that replaces the whole handling guide."),
]


PRIORITY_NAMES = ("critical", "high", "medium", "low")
JOB_NAMES = ("sla-sweep", "deliver", "reminders", "digest", "rate-watch")   # = jobs.conf's
class _Any:
    """A placeholder that stands for any name (the handling guide's entries)."""

    def __contains__(self, item):
        return True


PLACEHOLDERS = {"PRIORITY": PRIORITY_NAMES, "JOB": JOB_NAMES, "KEY": _Any()}


def documented(path):
    """Is the settings key ``path`` ('sla.high.calendar') one of the reference's?"""
    got = path.split(".")
    for key, *_ in REFERENCE:
        parts = (key or "").split(".")
        if len(parts) == len(got) and all(
                p == g or g in PLACEHOLDERS.get(p, ()) for p, g in zip(parts, got)):
            return True
    return False


def unknown_keys(data, prefix=""):
    """Keys of a parsed settings file that the reference does not know: typos, mostly."""
    out = []
    for key, value in data.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and not documented(path):
            out.extend(unknown_keys(value, path + "."))
        elif not documented(path):
            out.append(path)
    return out


def reference_markdown():
    lines = ["# Settings reference", "",
             "Generated from `escalate_cli/config.py` by `escalate config reference`; do not edit.",
             "", "Settings file keys are dotted TOML paths (`smtp.host` is `host` under `[smtp]`); "
                 f"`PRIORITY` is one of {', '.join(PRIORITY_NAMES)}; `JOB` one of "
                 f"{', '.join(JOB_NAMES)}. A key not listed here is warned about and ignored.",
             "", "| settings file key | environment | default | meaning |", "|---|---|---|---|"]
    for key, env, default, meaning in REFERENCE:
        lines.append(f"| {'`' + key + '`' if key else '-'} | {'`' + env + '`' if env else '-'} "
                     f"| {default} | {meaning} |")
    return "\n".join(lines) + "\n"


def _load_toml(path):
    import tomllib
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        return None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"settings file {path} is not valid TOML: {exc}")
    except OSError as exc:
        raise ConfigError(f"cannot read settings file {path}: {exc.strerror}")


def load_settings(env=None):
    """Read the settings file and the environment once."""
    env = os.environ if env is None else env
    s = Settings()
    path = config_path(env)
    data = _load_toml(path)
    if data is not None:
        s.path = path
        _apply_file(s, data)
        for key in unknown_keys(data):
            print(f"escalate: warning: unknown setting '{key}' in {path} is ignored "
                  f"(see docs/settings.md or 'escalate config reference')", file=sys.stderr)
        if _world_readable_secret(path, data):
            print(f"escalate: warning: {path} holds a password and is readable by others; "
                  f"run chmod 600 {path}", file=sys.stderr)
    _apply_env(s, env)
    s.zone  # validate early: a bad zone is a clear error, not a traceback later
    return s


def _world_readable_secret(path, data):
    has_secret = bool(_table(data, "smtp").get("password") or _table(data, "sms").get("url"))
    try:
        return has_secret and bool(os.stat(path).st_mode & (stat.S_IRGRP | stat.S_IROTH))
    except OSError:
        return False


def _kind(value):
    return {bool: "true/false", int: "number", float: "number", str: "text", list: "list",
            dict: "table"}.get(type(value), type(value).__name__)


def _table(data, key, where=""):
    """``data[key]`` as a table ({} when absent); anything else is a clear settings error."""
    value = data.get(key)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"settings: [{where}{key}] must be a table, not {_kind(value)}")
    return value


def _text(value, key, optional=True):
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ConfigError(f"settings: {key} must be text, not {_kind(value)}")
    return value


def _number(value, key, low, high, kind=int):
    """A number in [low, high]; true/false and text are refused."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or \
            (kind is int and isinstance(value, float)) or not low <= value <= high:
        raise ConfigError(f"settings: {key} must be a{'n integer' if kind is int else ' number'} "
                          f"from {low} to {high}, not {value!r}"[:200])
    return kind(value)


def _apply_file(s, data):
    bh = _table(data, "business_hours")
    smtp = _table(data, "smtp")
    outbox = _table(data, "outbox")
    att = _table(data, "attachments")
    sla = _table(data, "sla")
    s.company = _text(data.get("company", s.company), "company", optional=False)
    s.timezone = _text(data.get("timezone", s.timezone), "timezone", optional=False)
    s.base_url = _text(data.get("base_url", s.base_url), "base_url")
    try:
        days = bh.get("days", s.business_days)
        if isinstance(days, str) or not isinstance(days, (list, tuple)):
            raise ConfigError('settings: business_hours.days must be a list like ["mon", "tue"]')
        s.business_days = tuple(str(d) for d in days)
        s.business_start = str(bh.get("start", s.business_start))
        s.business_end = str(bh.get("end", s.business_end))
        holidays = bh.get("holidays") or data.get("holidays") or ()
        if isinstance(holidays, str) or not isinstance(holidays, (list, tuple)):
            raise ConfigError("settings: business_hours.holidays must be a list of dates")
        s.holidays = tuple(str(h) for h in holidays)
        s.smtp_host = _text(smtp.get("host", s.smtp_host), "smtp.host", optional=False)
        s.smtp_port = _number(smtp.get("port", s.smtp_port), "smtp.port", 1, 65535)
        s.smtp_user = _text(smtp.get("user", s.smtp_user), "smtp.user")
        s.smtp_password = _text(smtp.get("password", s.smtp_password), "smtp.password")
        s.smtp_starttls = bool(smtp.get("starttls", s.smtp_starttls))
        s.smtp_ssl = bool(smtp.get("ssl", s.smtp_ssl))
        s.smtp_timeout = _number(smtp.get("timeout", s.smtp_timeout), "smtp.timeout", 0.1, 600,
                                 float)
        s.mail_from = _text(smtp.get("from", s.mail_from), "smtp.from", optional=False)
        s.sms_url = _text(_table(data, "sms").get("url", s.sms_url), "sms.url")
        s.outbox_lease_seconds = _number(outbox.get("lease_seconds", s.outbox_lease_seconds),
                                         "outbox.lease_seconds", 10, 86400)
        s.outbox_max_attempts = _number(outbox.get("max_attempts", s.outbox_max_attempts),
                                        "outbox.max_attempts", 1, 1000)
        s.outbox_backoff_seconds = _number(outbox.get("backoff_seconds", s.outbox_backoff_seconds),
                                           "outbox.backoff_seconds", 0, 86400)
        s.outbox_backoff_max_seconds = _number(
            outbox.get("backoff_max_seconds", s.outbox_backoff_max_seconds),
            "outbox.backoff_max_seconds", 0, 30 * 86400)
        s.template_dir = _text(_table(data, "templates").get("folder", s.template_dir),
                               "templates.folder")
        s.attachment_max_bytes = _number(att.get("max_bytes", s.attachment_max_bytes),
                                         "attachments.max_bytes", 1, 2**31)
        s.warn_share = float(sla.get("warn_share", s.warn_share))
        s.sla_version = str(sla.get("version", s.sla_version))
        for prio in DEFAULT_SLA:
            override = dict(_table(sla, prio, "sla."))
            if override:
                # a resolution given one way replaces the default given the other way
                if "resolution_business_days" in override and "resolution_hours" not in override:
                    s.sla[prio].pop("resolution_hours", None)
                if "resolution_hours" in override and "resolution_business_days" not in override:
                    s.sla[prio].pop("resolution_business_days", None)
                s.sla[prio].update(override)
        s.jobs = dict(_table(data, "jobs"))
        s.digest_send_empty = bool(_table(data, "digest").get("send_empty", False))
        s.guide = dict(_table(data, "guide"))
        s.insight = dict(_table(data, "insight"))
    except (TypeError, ValueError, OverflowError) as exc:
        raise ConfigError(f"settings file has a bad value: {exc}")
    if not 0 < s.warn_share < 1:
        raise ConfigError("settings: sla.warn_share must be between 0 and 1")
    import re
    if re.search(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", s.company):   # it signs every email
        raise ConfigError("settings: company must be one line (no line breaks or control "
                          "characters)")


def _apply_env(s, env):
    if env.get("ESCALATE_SMTP_HOST"):
        s.smtp_host = env["ESCALATE_SMTP_HOST"]
    if env.get("ESCALATE_SMTP_PORT"):
        try:
            s.smtp_port = int(env["ESCALATE_SMTP_PORT"])
        except ValueError:
            raise ConfigError("ESCALATE_SMTP_PORT must be a number")
    if env.get("ESCALATE_SMTP_USER"):
        s.smtp_user = env["ESCALATE_SMTP_USER"]
    if env.get("ESCALATE_SMTP_PASSWORD"):
        s.smtp_password = env["ESCALATE_SMTP_PASSWORD"]
    if env.get("ESCALATE_SMTP_STARTTLS"):
        s.smtp_starttls = _parse_bool(env["ESCALATE_SMTP_STARTTLS"])
    if env.get("ESCALATE_MAIL_FROM"):
        s.mail_from = env["ESCALATE_MAIL_FROM"]
    if env.get("ESCALATE_SMS_URL"):
        s.sms_url = env["ESCALATE_SMS_URL"]
    if env.get("ESCALATE_TEMPLATES"):
        s.template_dir = env["ESCALATE_TEMPLATES"]


def parse_now(value):
    """ESCALATE_NOW / --now: ISO 8601 with an offset, returned in UTC."""
    try:
        t = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ConfigError(f"ESCALATE_NOW must be ISO 8601 with an offset, not {value!r}")
    if t.tzinfo is None:
        example = t.isoformat(timespec="seconds") + "+00:00"
        raise ConfigError(f"ESCALATE_NOW needs a UTC offset, for example {example}")
    from .timeparse import in_range
    try:
        return in_range(t.astimezone(dt.timezone.utc), value)
    except (ValueError, OverflowError) as exc:
        raise ConfigError(f"ESCALATE_NOW: {exc}" if isinstance(exc, ValueError)
                          else f"ESCALATE_NOW is out of range: {value!r}")


def current_time(env=None):
    env = os.environ if env is None else env
    if env.get("ESCALATE_NOW"):
        return parse_now(env["ESCALATE_NOW"])
    return dt.datetime.now(dt.timezone.utc)
