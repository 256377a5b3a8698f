"""Resolve, hold, resume, escalate further, approve: the rest of an escalation's life."""
import click

from .common import code_argument, pass_app, parse_when, read_text


@click.command()
@code_argument
@click.option("--notes", metavar="TEXT|-", help="Resolution notes, 50+ characters ('-' reads stdin).")
@click.option("--notes-file", type=click.File("r"), metavar="FILE", help="Read the notes from FILE.")
@click.option("--notify", "notify_roles", default="ic", show_default=True, metavar="ic,coo,ceo",
              help="Who is told, comma-separated: ic, coo, ceo (or 'none').")
@pass_app
def resolve(app, code, notes, notes_file, notify_roles):
    """Mark resolved with notes (you must own it; an IC may resolve their own while PENDING).

    \b
    Examples:
      escalate resolve ESC-2024-11-28-001 --notes-file resolution.txt --notify ic,coo
      escalate --as john.smith resolve ESC-2024-11-28-001 --notes "Client accepted ..."
    """
    from .. import domain
    from ..fmt import duration_short
    if notes and notes_file:
        raise click.UsageError("Give --notes or --notes-file, not both.")
    text = notes_file.read() if notes_file else (read_text(notes, "notes", required=False,
                                                           editor=False) if notes else None)
    roles = [r.strip().lower() for r in notify_roles.split(",") if r.strip()]
    bad = [r for r in roles if r not in ("ic", "coo", "ceo", "none")]
    if bad:
        raise click.BadParameter(f"unknown role(s) {', '.join(bad)}; use ic, coo, ceo or none",
                                 param_hint="--notify")
    esc = domain.resolve(app, code, text, [r for r in roles if r != "none"])
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

    \b
    Example:
      escalate hold ESC-2024-11-28-001 --reason "Waiting for Finance" --until "tomorrow 9am"
    """
    from .. import domain
    when = parse_when(app, until, "--until") if until else None
    esc = domain.hold(app, code, reason, when)
    click.echo(f"{esc.code}: ON HOLD")


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
@pass_app
def progress(app, code, state):
    """Set an 'In Progress - ...' sub-state for multi-day work.

    \b
    Example:
      escalate progress ESC-2024-11-28-001 Investigating
    """
    from .. import domain
    esc = domain.set_substate(app, code, state)
    click.echo(f"{esc.code}: {domain.status_label(esc)}")


COMMANDS = [resolve, hold, resume, escalate_, approve, progress]
