"""Why each SLA due time is what it is: ``escalate sla explain CODE``.

An explanation is built from what is stored, never from today's settings: the policy
snapshot the escalation was opened under (:mod:`escalate_cli.slapolicy`), its creation and
stop times, and its holds as the event log recorded them (``escalation.held`` then the
``escalation.resumed``, ``.resolved`` or ``.escalated`` that ended each). For each clock it
lists the business intervals counted, the nights, weekends and holidays skipped, the business
time spent on hold (with the reason and who held and resumed it) and the daylight-saving
changes on the way, and it checks that the counted time adds up to the policy's window.

:func:`explain` returns a JSON-able dict; :func:`render_text` turns it into lines.
"""
import datetime as dt
import json

from . import sla
from .fmt import duration_short, when

UTC = dt.timezone.utc
ENDS_HOLD = {"escalation.resumed": ("resumed_at", "resumed_by", "resumed"),
             "escalation.resolved": ("resolved_at", "resolved_by", "resolved"),
             "escalation.escalated": ("escalated_at", "escalated_by", "escalated further")}


def explain(app, esc, at=None):
    """The explanation of ``esc``'s clocks as of ``at`` (default: now)."""
    from . import slapolicy
    at = at or app.now
    settings, source = slapolicy.policy_settings(app, esc)
    policy = settings.policy(esc.priority)
    cal = policy.calendar
    zone = app.get_settings().zone
    pauses = _pauses(app, esc, cal, at)
    clocks = [_response_clock(esc, policy, at, zone),
              _resolution_clock(esc, policy, pauses, at, zone)]     # sets moved_due_seconds
    out = {
        "code": esc.code, "at": _iso(at, zone), "status": esc.status,
        "priority": esc.priority, "created_at": _iso(esc.created_at, zone),
        "policy": _policy_dict(esc, policy, settings, source),
        "calendar": _calendar_dict(cal),
        "policy_changed_since": slapolicy.differs_from_current(app, esc),
        "pauses": [_pause_dict(p, zone) for p in pauses],
        "clocks": clocks,
    }
    return out


# -- policy and calendar ------------------------------------------------------------------

def _policy_dict(esc, policy, settings, source):
    return {
        "version": policy.version, "stored_version": esc.policy_version, "source": source,
        "priority": policy.priority,
        "response_hours": policy.response_seconds / 3600,
        "resolution_hours": (policy.resolution_seconds / 3600
                             if policy.resolution_seconds is not None else None),
        "resolution_business_days": policy.resolution_business_days,
        "escalate_to": policy.escalate_to, "warn_share": settings.warn_share,
    }


def _calendar_dict(cal):
    if cal.always:
        return {"kind": "24x7", "zone": cal.zone.key}
    from .config import WEEKDAYS
    return {"kind": "business", "zone": cal.zone.key,
            "days": [WEEKDAYS[d] for d in sorted(cal.days)],
            "start": f"{cal.start:%H:%M}", "end": f"{cal.end:%H:%M}",
            "holidays": sorted(d.isoformat() for d in cal.holidays)}


# -- pauses -------------------------------------------------------------------------------

def _pauses(app, esc, cal, at):
    """The holds of ``esc`` from its events, oldest first, each a dict with UTC times."""
    from .models import Event, User
    rows = (Event.select().where((Event.escalation == esc.id)
                                 & Event.name.in_(["escalation.held", *ENDS_HOLD]))
            .order_by(Event.id))
    names = {}

    def name_of(login):
        if login in (None, "system"):
            return "System"
        if login not in names:
            user = User.get_or_none(User.login == login)
            names[login] = user.name if user else login
        return names[login]

    pauses, current = [], None
    for ev in rows:
        p = json.loads(ev.payload)
        if ev.name == "escalation.held":
            current = {"start": _parse(p.get("held_at")) or ev.created_at, "end": None,
                       "reason": p.get("reason"), "held_by": p.get("held_by"),
                       "held_by_name": name_of(p.get("held_by")),
                       "until": _parse(p.get("until")), "ended_by": None, "ended_by_name": None,
                       "ended_how": None, "end_reason": None}
            pauses.append(current)
        elif current is not None:
            key, who, how = ENDS_HOLD[ev.name]
            current.update(end=_parse(p.get(key)) or ev.created_at, ended_by=p.get(who),
                           ended_by_name=name_of(p.get(who)), ended_how=how,
                           end_reason=p.get("reason") if how == "resumed" else None)
            current = None
    for p in pauses:
        end = min(p["end"] or at, at)
        p["business_seconds"] = sla.business_seconds_between(cal, p["start"], end)
        p["wall_seconds"] = max(0, int((end - p["start"]).total_seconds()))
    return pauses


def _pause_dict(p, zone):
    return {"start": _iso(p["start"], zone), "end": _iso(p["end"], zone),
            "ongoing": p["end"] is None, "reason": p["reason"], "held_by": p["held_by"],
            "held_by_name": p["held_by_name"], "until": _iso(p["until"], zone),
            "ended_by": p["ended_by"], "ended_by_name": p["ended_by_name"],
            "ended_how": p["ended_how"], "end_reason": p["end_reason"],
            "business_seconds": p["business_seconds"], "wall_seconds": p["wall_seconds"],
            "moved_due_seconds": p.get("moved_due_seconds", 0)}


# -- clocks -------------------------------------------------------------------------------

def _response_clock(esc, policy, at, zone):
    cal = policy.calendar
    stop, how = None, None
    if esc.claimed_at is not None:
        stop, how = esc.claimed_at, ("escalated further" if esc.escalated_at == esc.claimed_at
                                     and esc.escalated_at is not None else "claimed")
    elif esc.resolved_by_ic and esc.resolved_at is not None:
        stop, how = esc.resolved_at, "resolved by the IC"
    due = esc.response_due
    return _clock("response", cal, esc.created_at, policy.response_seconds, due, stop, how,
                  [], at, zone)


def _resolution_clock(esc, policy, pauses, at, zone):
    cal = policy.calendar
    window = sla.resolution_window(policy, esc.created_at)
    stop, how = None, None
    if esc.escalated_at is not None:
        stop, how = esc.escalated_at, "escalated further"
    elif esc.status == "resolved":
        stop, how = esc.resolved_at, "resolved" + (" by the IC" if esc.resolved_by_ic else "")
    # replay the holds: each moves the due time by its business time if it began before it
    paused, counted_holds = 0, []
    due = sla.resolution_due(policy, esc.created_at, 0)
    for p in pauses:
        running = stop is None or p["start"] < stop
        end = p["end"] or at
        moved = sla.pause_extension(cal, due, p["start"], min(end, at)) if running else 0
        p["moved_due_seconds"] = moved
        if moved:
            paused += moved
            due = sla.resolution_due(policy, esc.created_at, paused)
            counted_holds.append((p["start"], end))
    projected = esc.status == "on_hold" and stop is None
    stored = esc.resolution_due
    clock = _clock("resolution", cal, esc.created_at, window,
                   due if projected else stored, stop, how, counted_holds, at, zone)
    clock["paused_seconds"] = paused
    clock["projected"] = projected
    clock["consistent"] = projected or stored is None or stored == due
    if projected:
        clock["state"] = "paused"
    return clock


def _clock(kind, cal, started, window, due, stop, how, holds, at, zone):
    end = stop or at
    elapsed = sla.elapsed(cal, started, min(end, at), holds) if end > started else 0
    if due is None:
        state = "none"
    elif stop is not None:
        state = "met" if stop <= due else "missed"
    else:
        state = "breached" if at > due else "running"
    counted, on_hold = _split(cal, started, due, holds) if due else ([], [])
    total = sum(s for _, _, s in counted)
    span_end = max(x for x in (due, end, started) if x is not None)
    return {
        "kind": kind, "calendar": "24x7" if cal.always else "business", "state": state,
        "started_at": _iso(started, zone),
        "counting_from": _iso(sla.next_open(cal, started), zone),
        "window_seconds": window, "window": hours(window),
        "due_at": _iso(due, zone), "stopped_at": _iso(stop, zone), "stopped_by": how,
        "elapsed_seconds": elapsed,
        "remaining_seconds": max(0, window - elapsed) if stop is None else None,
        "counted": [{"start": _iso(a, zone), "end": _iso(b, zone), "seconds": s}
                    for a, b, s in counted],
        "counted_seconds": total,
        "on_hold": [{"start": _iso(a, zone), "end": _iso(b, zone), "seconds": s}
                    for a, b, s in on_hold],
        "skipped": [{"start": _iso(g["start"], zone), "end": _iso(g["end"], zone),
                     "seconds": int((g["end"] - g["start"]).total_seconds()),
                     "reasons": g["reasons"],
                     "days": [{"date": d.isoformat(), "why": why} for d, why in g["days"]]}
                    for g in (sla.gaps(cal, started, due) if due else [])],
        "dst_changes": [_dst_dict(t, before, after, cal, zone)
                        for t, before, after in sla.dst_transitions(cal.zone, started, span_end)],
        "adds_up": due is None or total == window,
    }


def _split(cal, start, end, holds):
    """Business intervals of [start, end): (counted, on hold), each a list of (a, b, seconds)."""
    counted, held = [], []
    for a, b in sla._clip(cal, start, end):
        pieces = [(a, b)]
        for h_start, h_end in holds:
            nxt = []
            for x, y in pieces:
                lo, hi = max(x, h_start), min(y, h_end)
                if lo < hi:
                    held.append((lo, hi, int((hi - lo).total_seconds())))
                    if x < lo:
                        nxt.append((x, lo))
                    if hi < y:
                        nxt.append((hi, y))
                else:
                    nxt.append((x, y))
            pieces = nxt
        counted.extend((x, y, int((y - x).total_seconds())) for x, y in pieces)
    counted.sort()
    held.sort()
    return counted, held


def _dst_dict(t, before, after, cal, zone):
    shift = int((after - before).total_seconds())
    direction = "forward" if shift > 0 else "back"
    local_before = (t - dt.timedelta(seconds=1)).astimezone(cal.zone)
    local_after = t.astimezone(cal.zone)
    wall_before = (t.replace(tzinfo=None) + before)    # the wall clock just before the change
    wall_after = (t.replace(tzinfo=None) + after)
    if cal.always:
        effect = (f"a 24x7 clock counts real hours, so local due times read "
                  f"{hours(abs(shift))} {'later' if shift > 0 else 'earlier'} "
                  f"than before the change")
    else:
        effect = (f"business hours stay {cal.start:%H:%M}-{cal.end:%H:%M} local time, so no "
                  f"business time is gained or lost; the night is "
                  f"{hours(abs(shift))} {'shorter' if shift > 0 else 'longer'}")
    return {"at": _iso(t, zone), "from_offset": _offset(before), "to_offset": _offset(after),
            "from_name": local_before.tzname(), "to_name": local_after.tzname(),
            "wall_before": f"{wall_before:%H:%M}", "wall_after": f"{wall_after:%H:%M}",
            "clocks": f"{direction} {hours(abs(shift))}", "effect": effect}


def _offset(td):
    minutes = int(td.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "-"
    minutes = abs(minutes)
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


# -- text ---------------------------------------------------------------------------------

def render_text(expl, zone):
    """The explanation as lines for people."""
    pol, cal = expl["policy"], expl["calendar"]
    t = lambda iso: _show(iso, zone)  # noqa: E731
    lines = [f"SLA of {expl['code']} as of {t(expl['at'])}"]
    source = ("the snapshot taken when it was opened" if pol["source"] == "snapshot"
              else "the current settings (this escalation predates policy snapshots)")
    lines.append(f"Policy: version {pol['version']}, {pol['priority']} priority, from {source}")
    resolution = (f"{_num(pol['resolution_hours'])} business hours" if pol["resolution_hours"]
                  is not None else f"{pol['resolution_business_days']} whole business days")
    if cal["kind"] == "24x7":
        resolution = resolution.replace("business hours", "hours (24x7)").replace(
            "whole business days", "days (24x7)")
    unit = "hours (24x7)" if cal["kind"] == "24x7" else "business hours"
    above = pol["escalate_to"].upper() if pol["escalate_to"] else "the owner only"
    if pol["response_hours"] == 1:
        unit = unit.replace("hours", "hour")
    lines.append(f"  respond within {_num(pol['response_hours'])} {unit}; resolve within "
                 f"{resolution}; on breach: {above}; "
                 f"warning at {round(pol['warn_share'] * 100)}% of the window")
    if expl.get("policy_changed_since"):
        lines.append("  (the settings file now defines this priority differently; that applies "
                     "to escalations opened since)")
    if cal["kind"] == "24x7":
        lines.append(f"Calendar: 24x7 (every hour counts), zone {cal['zone']}")
    else:
        days = ", ".join(d.capitalize() for d in cal["days"])
        hol = ", ".join(cal["holidays"]) or "none"
        lines.append(f"Calendar: {days} {cal['start']}-{cal['end']} {cal['zone']}; "
                     f"holidays: {hol}")
    for clock in expl["clocks"]:
        lines.append("")
        lines.extend(_clock_lines(clock, t))
    if expl["pauses"]:
        lines.append("")
        lines.append("On hold:")
        for p in expl["pauses"]:
            end = (f"{t(p['end'])}, {p['ended_how']} by {p['ended_by_name']}"
                   + (f" ({p['end_reason']})" if p["end_reason"] else "")
                   if p["end"] else "still on hold"
                   + (f", resumes by itself {t(p['until'])}" if p["until"] else ""))
            lines.append(f"  {t(p['start'])} - {end}")
            lines.append(f"    reason: {p['reason']}; held by {p['held_by_name']}; "
                         f"{duration_short(p['wall_seconds'])} on the wall clock, "
                         f"{hours(p['business_seconds'])} of business time; "
                         + (f"moved the resolution due time by {hours(p['moved_due_seconds'])}"
                            if p["moved_due_seconds"] else
                            "did not move the resolution due time (its clock had stopped or "
                            "run out)"))
    return lines


def _clock_lines(c, t):
    title = {"response": "Response (take ownership)", "resolution": "Resolution"}[c["kind"]]
    state = {"met": "met", "missed": "MISSED", "running": "running", "breached": "BREACHED",
             "paused": "paused (on hold)", "none": "no due time"}[c["state"]]
    due = c["due_at"]
    kind = "round-the-clock" if c["calendar"] == "24x7" else "business"
    head = f"{title}: {c['window']} of {kind} time; "
    if c.get("projected"):
        head += f"paused; if resumed now it would be due {t(due)}"
    else:
        head += f"due {t(due)} - {state}"
    if c["stopped_at"]:
        head += f" ({c['stopped_by']} {t(c['stopped_at'])})"
    out = [head]
    out.append(f"  started   {t(c['started_at'])}; counting from {t(c['counting_from'])}")
    rows = [(x["start"], "counted", x) for x in c["counted"]] \
        + [(x["start"], "on hold", x) for x in c["on_hold"]] \
        + [(x["start"], "skipped", x) for x in c["skipped"]]
    for _, kind, x in sorted(rows, key=lambda r: dt.datetime.fromisoformat(r[0])):
        length = duration_short(x["seconds"]) if kind == "skipped" else hours(x["seconds"])
        span = f"{_range(x['start'], x['end'], t)} ({length})"
        why = ""
        if kind == "skipped":
            parts = []
            for reason in x["reasons"]:
                days = [_day(d["date"]) for d in x["days"] if d["why"] == reason]
                parts.append(reason + (f" ({', '.join(days)})" if days else ""))
            why = ": " + ", ".join(parts)
        out.append(f"  {kind:<9} {span}{why}")
    for d in c["dst_changes"]:
        day = dt.datetime.fromisoformat(d["at"])
        out.append(f"  dst       {day:%a} {day:%b} {day.day}, {day.year}: "
                   f"{d['wall_before']} {d['from_name']} -> {d['wall_after']} {d['to_name']} "
                   f"(clocks {d['clocks']}); {d['effect']}")
    total = f"  total     {hours(c['counted_seconds'])} counted of {c['window']}"
    if not c["adds_up"]:
        total += " (does not add up: the due time was set under other rules, e.g. a priority change)"
    out.append(total)
    if c["state"] in ("running", "breached", "paused"):
        out.append(f"  so far    {hours(c['elapsed_seconds'])} used, "
                   f"{hours(c['remaining_seconds'] or 0)} left")
    if c["kind"] == "resolution" and not c.get("consistent", True):
        out.append("  note      the stored due time differs from this replay of the holds")
    return out


def hours(seconds):
    """Business time in hours and minutes ('24h', '8h 13m', '30m'): days would mislead."""
    seconds = max(0, int(seconds))
    h, m = seconds // 3600, (seconds % 3600) // 60
    if h and m:
        return f"{h}h {m}m"
    return f"{h}h" if h else f"{m}m"


def _range(a, b, t):
    """'Fri Nov 29, 2024 8:00 AM EST - 9:00 AM EST' when both ends fall on one local day."""
    left, right = t(a), t(b)
    if left.split(" ")[:4] == right.split(" ")[:4]:
        right = " ".join(right.split(" ")[4:])
    return f"{left} - {right}"


def _day(iso_date):
    d = dt.date.fromisoformat(iso_date)
    return f"{d:%a} {d:%b} {d.day}"


def _num(x):
    return f"{x:g}"


def _show(iso, zone):
    if iso is None:
        return "-"
    v = dt.datetime.fromisoformat(iso).astimezone(zone)
    return f"{v:%a} {when(v, zone)} {v.tzname()}"


# -- helpers ------------------------------------------------------------------------------

def _iso(t, zone):
    return t.astimezone(zone).isoformat() if t is not None else None


def _parse(value):
    if not value:
        return None
    t = dt.datetime.fromisoformat(str(value))
    return t if t.tzinfo else t.replace(tzinfo=UTC)
