"""Text screens: the detail view of step 3 and the queue rows. No click, no printing."""
import textwrap

from . import domain
from .fmt import duration_long, duration_short, money, when, when_short
from .output import color_enabled, display_width

WIDTH = 68


def _rule(char="-"):
    return "+" + char * (WIDTH - 2) + "+"


def _fit(text, width):
    if text.isascii():
        return text[:width].ljust(width)
    while display_width(text) > width:
        text = text[:-1]
    return text + " " * (width - display_width(text))


def _line(text=""):
    return "| " + _fit(text, WIDTH - 4) + " |"


def _pair(left, right=""):
    """Two columns when they fit, else two lines: nothing is cut."""
    half = (WIDTH - 4) // 2
    if not right:
        return "\n".join(_para(left))
    if display_width(left) < half and display_width(right) <= WIDTH - 4 - half:
        return _line(_fit(left, half) + right)
    return "\n".join(_para(left) + _para(right))


def _para(text):
    out = []
    for para in (text or "").splitlines() or [""]:
        wrapped = textwrap.wrap(para, WIDTH - 4) or [""]
        out.extend(_line(w) for w in wrapped)
    return out


def _red(text, color):
    from .output import paint
    return paint(text, "breach", color)


def breach_text(breached, color=False):
    """The use case's breach badge, naming the clocks that breached."""
    return _red(domain.BREACH_MESSAGE, color) + f" ({', '.join(breached)})"


def _item(prefix, text):
    """A numbered item: continuation lines indented under its text."""
    out = []
    for n, para in enumerate(text.splitlines() or [""]):
        first = prefix if n == 0 else " " * len(prefix)
        out.extend(_line(w) for w in textwrap.wrap(para, WIDTH - 4, initial_indent=first,
                                                   subsequent_indent=" " * len(prefix))
                   or [_line(first)])
    return out


def priority_badge(priority):
    return {"critical": "CRITICAL 🔴", "high": "HIGH 🟠", "medium": "MEDIUM 🟡",
            "low": "LOW 🟢"}.get(priority, priority.upper())


def detail(app, esc, recommendations=None, color=None):
    """The escalation detail screen (use case step 3), as lines of text."""
    color = color_enabled() if color is None else color
    zone = app.get_settings().zone
    now = app.now
    viewer = app.actor
    state, breached = domain.sla_state(esc, now)
    lines = [_rule()]
    title = f"Escalation: {esc.title}"
    badge = f"[{priority_badge(esc.priority)}]"
    room = WIDTH - 4 - display_width(badge)
    lines.append(_line(_fit(title, room) + badge) if display_width(title) < room
                 else "\n".join(_para(title) + [_line(badge)]))
    lines.append(_rule())
    if breached and esc.status != "resolved":
        plain = breach_text(breached)
        lines.append(_line(plain).replace(plain, breach_text(breached, color)))
        lines.append(_rule())
    end = esc.resolved_at or now
    lines.append(_pair(f"Escalation ID: {esc.code}"))
    lines.append(_pair(f"Created: {when(esc.created_at, zone)}", f"Status: {domain.status_label(esc)}"))
    reporter = esc.reporter
    role = f" ({reporter.title})" if reporter.title else ""
    age_label = "Age" if esc.status != "resolved" else "Open for"
    lines.append(_pair(f"Reporter: {reporter.name}{role}",
                       f"{age_label}: {duration_long((end - esc.created_at).total_seconds())}"))
    if esc.owner_id:
        you = " (You)" if esc.owner_id == viewer.id else ""
        claimed = f"Claimed: {when(esc.claimed_at, zone)}" if esc.claimed_at else ""
        lines.append(_pair(f"Owner: {esc.owner.name}{you}", claimed))
    consulted = domain.consulted_users(esc)
    if consulted:
        lines.append(_line("Consulted: " + ", ".join(u.name for u in consulted)))
    lines.append(_pair(f"SLA: {sla_line(esc, now, zone)}"))
    lines.append(_rule())
    lines.append(_line("ISSUE SUMMARY"))
    cat = esc.category + (f" → {esc.subcategory}" if esc.subcategory else "")
    lines.append(_line(f"Category: {cat}"))
    why = " (Affects strategic account)" if esc.account_id and esc.account.strategic else ""
    lines.append(_line(f"Priority: {esc.priority.capitalize()}{why}"))
    lines.append(_line(f"Impact: {esc.impact.capitalize()}"
                       + (f" ({esc.impact_reason})" if esc.impact_reason else "")))
    lines.append(_rule())
    lines.append(_line("RELATED ENTITIES"))
    if esc.account_id:
        tag = " (Strategic Account)" if esc.account.strategic else ""
        lines.append(_line(f"Account: {esc.account.name}{tag}"))
    if esc.contact_id:
        c = esc.contact
        title = f" ({c.title})" if c.title else ""
        flag = "  [unreachable]" if c.unreachable_at else ""
        lines.append(_line(f"Contact: {c.name}{title} - {c.email}{flag}"))
    if esc.contract_id:
        k = esc.contract
        lines.append(_line(f"Placement: {k.candidate}" + (f" ({k.title})" if k.title else "")))
        lines.append(_line(f"Contract: {k.code} (Started: {k.start_date:%b} {k.start_date.day}, "
                           f"{k.start_date.year}) {money(k.bill_rate)}/{money(k.pay_rate)}"))
    if not (esc.account_id or esc.contact_id or esc.contract_id):
        lines.append(_line("None"))
    lines.append(_rule())
    lines.append(_line("DESCRIPTION"))
    lines.extend(_para(esc.description))
    lines.append(_rule())
    lines.append(_line("IC'S INITIAL ASSESSMENT"))
    lines.extend(_para(esc.assessment or "None given"))
    lines.append(_rule())
    if esc.status == "on_hold":
        lines.append(_line("ON HOLD"))
        lines.extend(_para(f"Reason: {esc.hold_reason}"))
        if esc.hold_until:
            lines.append(_line(f"Resumes by itself: {when(esc.hold_until, zone)}"))
        lines.append(_rule())
    if esc.status == "resolved":
        lines.append(_line("RESOLUTION"))
        by = esc.resolved_by.name if esc.resolved_by_id else "-"
        lines.append(_pair(f"Resolved by: {by}", f"Resolved: {when(esc.resolved_at, zone)}"))
        lines.append(_line(f"Resolution time: {duration_short(esc.resolution_seconds or 0)}"))
        if esc.resolved_by_ic:
            lines.append(_line("Resolved by IC" + (" (approved)" if esc.approval == "approved"
                                                   else " - awaiting manager approval")))
        lines.extend(_para(esc.resolution_notes or ""))
        lines.append(_rule())
    if esc.paused_wall_seconds or esc.status == "on_hold":
        paused = esc.paused_wall_seconds + (int((now - esc.hold_started_at).total_seconds())
                                            if esc.status == "on_hold" and esc.hold_started_at else 0)
        lines.append(_line(f"Paused (on hold) in all: {duration_short(paused)}"
                           + (f"; resolution due moved by {duration_short(esc.paused_seconds)} "
                              f"of business time" if esc.paused_seconds else "")))
        lines.append(_rule())
    lines.append(_line("TIMELINE OF EVENTS"))
    for act in domain.timeline(app, esc):
        lines.extend(_para(f"{when(act.occurred_at, zone)} - {activity_text(act)}"))
    lines.append(_rule())
    lines.append(_line("ATTACHED DOCUMENTS"))
    atts = domain.attachments_of(esc)
    for a in atts:
        icon = "📧" if a.name.endswith((".eml", ".txt")) and "email" in a.name else "📄"
        lines.append(_line(f"{icon} {a.name} ({a.size:,} bytes) #{a.id}"))
    if not atts:
        lines.append(_line("None"))
    lines.append(_rule())
    lines.append(_line("PREVIOUS ESCALATIONS (Same Account)"))
    prev = domain.previous_escalations(esc)
    if not esc.account_id:
        lines.append(_line("No account linked"))
    elif not prev:
        lines.append(_line("None - First escalation with this client ✅"))
    for p in prev:
        lines.append(_line(f"{p.code} {p.title[:30]} [{domain.STATUS_LABEL[p.status]}]"))
    if recommendations is not None:
        lines.append(_rule())
        lines.append(_line("RECOMMENDED ACTIONS"))
        intro = getattr(recommendations, "intro", "")
        if intro:
            lines.extend(_para(intro))
        for i, rec in enumerate(recommendations, 1):
            lines.extend(_item(f"{i}. ", str(rec)))
    lines.append(_rule())
    lines.append(_line(actions_line(esc, viewer)))
    lines.append(_rule())
    return lines


def sla_line(esc, now, zone):
    state, breached = domain.sla_state(esc, now)
    if esc.status == "pending":
        text = f"Respond by {when(esc.response_due, zone)}"
    elif esc.status == "in_progress":
        text = f"Resolve by {when(esc.resolution_due, zone)}"
    elif esc.status == "on_hold":
        text = "Paused (on hold)"
    elif esc.status == "escalated":
        text = f"Escalated to {(esc.escalated_to or '').upper()} {when(esc.escalated_at, zone)}"
    else:
        text = "Met" if not breached else "Missed (" + ", ".join(breached) + ")"
    if breached and esc.status not in ("resolved",):
        text += " - BREACHED (" + ", ".join(breached) + ")"
    return text


def activity_text(act):
    who = act.actor.name if act.actor_id else "System"
    if act.type == "note":
        return f"{who} (internal note): {act.body}"
    if act.type == "assessment":
        return f"{who} gave the initial assessment"
    if act.subject and act.body:
        return f"{act.subject}: {act.body}" if act.type not in ("status_change",) else act.body
    return act.body or act.subject or act.type


def actions_line(esc, viewer):
    if esc.status == "pending":
        return "[t Take Ownership] [assign] [request-info]"
    if esc.owner_id == viewer.id:
        return "Owner: You  [e email] [c call] [m message IC] [r resolve]"
    if esc.owner_id:
        return f"Owner: {esc.owner.name}"
    return ""


def queue_row(app, esc, reporter_name=None, color=None):
    color = color_enabled() if color is None else color
    now = app.now
    zone = app.get_settings().zone
    state, breached = domain.sla_state(esc, now)
    due = domain.governing_due(esc)
    end = esc.resolved_at or now
    return {
        "code": esc.code,
        "priority": esc.priority,
        "status": domain.status_label(esc),
        "title": esc.title,          # a terminal cuts it to fit (output.fit_columns)
        "account": esc.account.name if esc.account_id else "",
        "owner": esc.owner.name if esc.owner_id else "",
        "age": duration_short((end - esc.created_at).total_seconds()),
        "sla": (breach_text(breached, color) if breached and esc.status != "resolved" else state)
        + (f" (due {when_short(due, zone, now)})" if due and not breached else ""),
    }
