"""The SLA policy an escalation was opened under, kept with it.

At creation the whole policy (every priority's rules, the business calendar, the zone, the
holidays from that day on, the warning share and the version label) is stored as JSON in
``escalation.sla_policy``. Every later recomputation (hold, resume, priority change,
reopening) and ``escalate sla explain`` read that snapshot, never the settings file of the
day, so editing the policy never silently rewrites past compliance. A new policy applies to
escalations created after the edit.

Escalations created before this column existed (schema older than migration 0003) have no
snapshot: they fall back to the current settings, and ``sla explain`` says so.
"""
import datetime as dt
import json

from .config import Settings, WEEKDAYS

SNAPSHOT_FORMAT = 1


def snapshot(settings, taken_at):
    """The settings' SLA policy as a JSON-able dict (holidays before ``taken_at`` dropped)."""
    cal = settings.calendar()
    since = taken_at.astimezone(cal.zone).date()
    priorities = {}
    for prio, rules in settings.sla.items():
        policy = settings.policy(prio)       # validates
        priorities[prio] = {
            "response_hours": policy.response_seconds / 3600,
            "resolution_hours": (policy.resolution_seconds / 3600
                                 if policy.resolution_seconds is not None else None),
            "resolution_business_days": policy.resolution_business_days,
            "calendar": "24x7" if policy.calendar.always else "business",
            "escalate_to": policy.escalate_to,
        }
    return {
        "format": SNAPSHOT_FORMAT,
        "version": settings.sla_version,
        "taken_at": taken_at.astimezone(dt.timezone.utc).isoformat(),
        "timezone": settings.timezone,
        "business_hours": {
            "days": [WEEKDAYS[d] for d in sorted(cal.days)],
            "start": f"{cal.start:%H:%M}", "end": f"{cal.end:%H:%M}",
            "holidays": sorted(d.isoformat() for d in cal.holidays if d >= since),
        },
        "warn_share": settings.warn_share,
        "priorities": priorities,
    }


def dumps(snap):
    return json.dumps(snap, sort_keys=True, separators=(",", ":"))


def settings_from(snap):
    """A Settings object carrying only the snapshot's SLA policy."""
    bh = snap["business_hours"]
    s = Settings(timezone=snap["timezone"], business_days=tuple(bh["days"]),
                 business_start=bh["start"], business_end=bh["end"],
                 holidays=tuple(bh["holidays"]), warn_share=float(snap["warn_share"]),
                 sla_version=snap["version"])
    s.sla = {prio: {k: v for k, v in rules.items() if v is not None}
             for prio, rules in snap["priorities"].items()}
    return s


def load(esc):
    """The escalation's snapshot (a dict), or None for escalations that predate snapshots."""
    raw = getattr(esc, "sla_policy", None)
    return json.loads(raw) if raw else None


def policy_settings(app, esc):
    """(settings holding the escalation's policy, source) where source is "snapshot" or
    "settings" (no snapshot: the current settings file)."""
    snap = load(esc)
    if snap is None:
        return app.get_settings(), "settings"
    return settings_from(snap), "snapshot"


def policy_for(app, esc, priority=None):
    """The policy of ``priority`` (default: the escalation's) under which ``esc`` runs."""
    settings, _ = policy_settings(app, esc)
    return settings.policy(priority or esc.priority)


def policy_rows(settings):
    """The settings' policy as rows, one per priority (``escalate sla policy``)."""
    rows = []
    for prio in ("critical", "high", "medium", "low"):
        p = settings.policy(prio)
        rows.append({
            "priority": prio, "version": p.version,
            "response_hours": p.response_seconds / 3600,
            "resolution_hours": p.resolution_seconds / 3600 if p.resolution_seconds else None,
            "resolution_business_days": p.resolution_business_days,
            "calendar": p.calendar.name, "escalate_to": p.escalate_to,
            "warn_share": settings.warn_share})
    return rows


def differs_from_current(app, esc):
    """True when the current settings define the escalation's priority differently."""
    snap = load(esc)
    if snap is None:
        return False
    now = snapshot(app.get_settings(), dt.datetime.fromisoformat(snap["taken_at"]))
    keys = ("timezone", "business_hours")
    return (any(now[k] != snap[k] for k in keys)
            or now["priorities"].get(esc.priority) != snap["priorities"].get(esc.priority))
