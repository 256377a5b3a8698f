"""Resolve, hold, resume, escalate further, approve, progress, priority; SLA explanations."""
import click

from ..output import output_options, render, render_object
from .common import code_argument, pass_app, parse_when, read_text


@click.command()
@code_argument
@click.option("--notes", metavar="TEXT|-", help="Resolution notes, 50+ characters ('-' reads stdin).")
@click.option("--notes-file", type=click.File("r"), metavar="FILE", help="Read the notes from FILE.")
@click.option("--notify", "notify_roles", metavar="ic,coo,ceo",
              help="Who is told, comma-separated: ic, coo, ceo, or 'none' "
                   "[default: ic, plus coo when the account is strategic].")
@click.option("--with-timeline", is_flag=True,
              help="Append the escalation's timeline to the notes (multi-day work; "
                   "internal notes are left out).")
@pass_app
def resolve(app, code, notes, notes_file, notify_roles, with_timeline):
    """Mark resolved with notes of 50+ characters (you must own it).

    The reporting IC may resolve their own escalation while it is PENDING (before a manager
    acts); a manager then runs 'escalate approve' ("Resolved by IC") or 'escalate
    request-info' (reopens it).

    \b
    Examples:
      escalate resolve ESC-2024-11-28-001 --notes-file resolution.txt --notify ic,coo
      escalate resolve ESC-2024-11-28-001 --notes - --with-timeline < summary.txt
      escalate --as john.smith resolve ESC-2024-11-28-001 --notes "Client accepted ..."
    """
    from .. import domain
    from ..fmt import duration_short
    if notes and notes_file:
        raise click.UsageError("Give --notes or --notes-file, not both.")
    text = notes_file.read() if notes_file else (read_text(notes, "notes", required=False,
                                                           editor=False) if notes else None)
    roles = None
    if notify_roles is not None:
        roles = [r.strip().lower() for r in notify_roles.split(",") if r.strip()]
        bad = [r for r in roles if r not in ("ic", "coo", "ceo", "none")]
        if bad:
            raise click.BadParameter(f"unknown role(s) {', '.join(bad)}; use ic, coo, ceo or none",
                                     param_hint="--notify")
        roles = [r for r in roles if r != "none"]
    esc = domain.resolve(app, code, text, roles, with_timeline=with_timeline)
    if esc.resolved_by_ic:
        click.echo(f"{esc.code}: resolved by IC; awaiting manager approval")
    else:
        click.echo(f"Escalation marked as resolved ✓ ({esc.code}, resolution time "
                   f"{duration_short(esc.resolution_seconds)})")


@click.command()
@code_argument
@click.option("--reason", required=True, metavar="TEXT", help="What you are waiting for.")
@click.option("--until", metavar="WHEN", help="Resume by itself at this time (e.g. 'tomorrow 9am').")
@pass_app
def hold(app, code, reason, until):
    """Put on hold (waiting for external input); the resolution clock pauses.

    It resumes with 'escalate resume', by itself at --until (the SLA sweep does it), or
    when a call or message from the client or the reporter is logged. The due time then
    moves by exactly the business time spent on hold.

    \b
    Examples:
      escalate hold ESC-2024-11-28-001 --reason "Waiting for Finance" --until "tomorrow 9am"
      escalate hold ESC-2024-11-28-001 --reason "Client on vacation" --until 2024-12-09T08:00
    """
    from .. import domain
    from ..fmt import when as show_time
    until_at = parse_when(app, until, "--until") if until else None
    esc = domain.hold(app, code, reason, until_at)
    click.echo(f"{esc.code}: ON HOLD; the resolution clock is paused"
               + (f" until {show_time(until_at, app.get_settings().zone)}" if until_at else ""))


@click.command()
@code_argument
@pass_app
def resume(app, code):
    """Take an escalation off hold; due times move by exactly the paused business time.

    \b
    Example:
      escalate resume ESC-2024-11-28-001
    """
    from .. import domain, screens
    esc = domain.resume(app, code)
    click.echo(f"{esc.code}: {domain.status_label(esc)}; "
               f"SLA: {screens.sla_line(esc, app.now, app.get_settings().zone)}")


@click.command("escalate")
@code_argument
@click.option("--to", "to_role", required=True, type=click.Choice(["coo", "ceo"]))
@click.option("--note", required=True, metavar="TEXT|-", help="Why, for the COO/CEO.")
@pass_app
def escalate_(app, code, to_role, note):
    """Escalate further to the COO or CEO, who becomes owner; you become Consulted.

    \b
    Example:
      escalate escalate ESC-2024-11-28-001 --to ceo --note "Client demands executive call"
    """
    from .. import domain
    esc = domain.escalate_further(app, code, to_role, read_text(note, "note"))
    click.echo(f"{esc.code}: escalated to {esc.owner.name} ({to_role.upper()}); you are Consulted")


@click.command()
@code_argument
@pass_app
def approve(app, code):
    """Approve a resolution made by the IC: "Resolved by IC" (the IC gets the credit).

    \b
    Example:
      escalate approve ESC-2024-11-28-001
    """
    from .. import domain
    esc = domain.approve(app, code)
    click.echo(f"{esc.code}: Resolved by IC ({esc.resolved_by.name})")


@click.command()
@code_argument
@click.argument("state", metavar="TEXT")
@click.option("--note", metavar="TEXT|-", help="A progress update for the timeline (the reporter "
                                               "sees it; use 'escalate note' for internal notes).")
@pass_app
def progress(app, code, state, note):
    """Set an 'In Progress - ...' sub-state for multi-day work, with a daily update.

    \b
    Examples:
      escalate progress ESC-2024-11-28-001 Investigating
      escalate progress ESC-2024-11-28-001 "Waiting for Legal" --note "Contract sent to Legal"
    """
    from .. import domain
    esc = domain.set_substate(app, code, state, read_text(note, "note") if note else None)
    click.echo(f"{esc.code}: {domain.status_label(esc)}")


@click.command()
@code_argument
@click.argument("level", metavar="LEVEL",
                type=click.Choice(["critical", "high", "medium", "low"], case_sensitive=False))
@click.option("--reason", required=True, metavar="TEXT", help="Why the priority changes.")
@pass_app
def priority(app, code, level, reason):
    """Change the priority; running SLA clocks are recomputed under the escalation's policy.

    \b
    Example:
      escalate priority ESC-2024-11-28-001 high --reason "Client calmed down; no termination risk"
    """
    from .. import domain, screens
    esc = domain.change_priority(app, code, level.lower(), reason)
    click.echo(f"{esc.code}: priority {esc.priority}; "
               f"SLA: {screens.sla_line(esc, app.now, app.get_settings().zone)}")


@click.group()
def sla():
    """SLA policy and explanations of due times.

    \b
    Examples:
      escalate sla explain ESC-2024-11-28-001
      escalate sla policy
    """


@sla.command("explain")
@code_argument
@click.option("--at", "at", metavar="WHEN", help="Explain as of this time (default: now).")
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table",
              show_default=True, help="Output format.")
@pass_app
def sla_explain(app, code, at, fmt):
    """Why each due time is what it is.

    Shows the policy and its version (the one the escalation was opened under), the
    calendar and zone, the business intervals counted, the nights, weekends and holidays
    skipped, the time on hold with its reason and who, and daylight-saving changes.

    \b
    Examples:
      escalate sla explain ESC-2024-11-28-001
      escalate sla explain ESC-2024-11-28-001 --at "2024-11-29 08:00" --format json
    """
    from .. import domain, slaexplain
    esc = domain.get_escalation(app, code)
    when_ = parse_when(app, at, "--at") if at else None
    expl = slaexplain.explain(app, esc, when_)
    if fmt == "json":
        render_object(expl, "json")
    else:
        from ..output import terminal_safe
        click.echo(terminal_safe("\n".join(slaexplain.render_text(expl, app.get_settings().zone))))


@sla.command("policy")
@output_options
@pass_app
def sla_policy(app, fmt):
    """The SLA policy in the settings file (applies to escalations opened from now on).

    \b
    Example:
      escalate sla policy --format json
    """
    from ..slapolicy import policy_rows
    render(policy_rows(app.get_settings()), fmt,
           columns=["priority", "version", "response_hours", "resolution_hours",
                    "resolution_business_days", "calendar", "escalate_to", "warn_share"])


COMMANDS = [resolve, hold, resume, escalate_, approve, progress, priority, sla]
