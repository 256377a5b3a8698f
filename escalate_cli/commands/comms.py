"""Talking to people: email the client, tasks, calls, messages, and the outbox."""
import click

from ..output import output_options, render, render_object
from .common import (ID, DefaultGroup, code_argument, complete_assignee, complete_team,
                     complete_template, key_values, pass_app, parse_when, read_text)

PRIORITY_CHOICE = click.Choice(["low", "medium", "high", "critical"], case_sensitive=False)


def _warn(text):
    click.echo(f"Warning: {text}", err=True)


def _delivery_note(outcome, what):
    """Warn (not fail) when a secondary message could not go now: it stays queued."""
    if outcome is not None and outcome.status != "sent":
        verb = "could not be delivered" if outcome.status == "dead" else "is queued for retry"
        _warn(f"the {what} {verb}: {outcome.error} (see: escalate outbox)")


# -- email ----------------------------------------------------------------------------------

@click.group(cls=DefaultGroup, default_command="new")
def email():
    """Email the client from a template; send saved drafts.

    'escalate email CODE ...' is short for 'escalate email new CODE ...'.

    \b
    Examples:
      escalate email ESC-2024-11-28-001 --template client-apology --var credit=500 --edit
      escalate email ESC-2024-11-28-001 --template client-apology --draft
      escalate email send 12
    """


@email.command("new")
@code_argument
@click.option("--template", "-t", "template", required=True, metavar="NAME",
              shell_complete=complete_template,
              help="Template name, e.g. client-apology "
                   "(files NAME.subject.j2, NAME.txt.j2, NAME.html.j2).")
@click.option("--to", "to", metavar="EMAIL", help="Instead of the escalation's contact.")
@click.option("--cc", "cc", multiple=True, metavar="EMAIL",
              help="Also copy (repeatable); the reporter always is.")
@click.option("--subject", metavar="TEXT", help="Instead of the template's subject.")
@click.option("--var", "variables", multiple=True, metavar="KEY=VALUE",
              help="A template variable (repeatable), "
                   "e.g. --var credit=500 --var 'call_time=9:00 AM'.")
@click.option("--edit", is_flag=True, help="Review and edit the text in $EDITOR before sending.")
@click.option("--draft", is_flag=True,
              help="Save as a draft instead of sending (escalate email send ID).")
@click.option("--preview", is_flag=True, help="Print the rendered email; send and save nothing.")
@click.option("--attach", "attach", multiple=True, metavar="FILE",
              help="Attach a file, or one of the escalation's documents by name (repeatable).")
@pass_app
def email_new(app, code, template, to, cc, subject, variables, edit, draft, preview, attach):
    """Email the client: To the contact, CC the reporter, BCC you; logged on the timeline.

    The email goes out at once; if the mail server cannot take it, it stays queued
    ("Failed to send email. Please try again.") and 'escalate jobs deliver' retries it.

    \b
    Examples:
      escalate email ESC-2024-11-28-001 --template client-apology \\
          --var billed_rate=120 --var hours=160 --var credit=500 --var "call_time=9:00 AM"
      escalate email ESC-2024-11-28-001 -t client-followup --attach corrected-invoice.pdf
    """
    from .. import comms, mail
    variables = key_values(variables)
    if preview:
        from ..domain import get_escalation
        esc = get_escalation(app, code)
        contact = esc.contact if esc.contact_id else None
        ctx = comms.client_context(app, esc, app.actor, contact, variables)
        r = mail.render(app.get_settings(), template, ctx)
        from ..output import terminal_safe
        click.echo(terminal_safe(f"Subject: {subject or r.subject}\n\n{r.text}"), nl=False)
        return

    def editor(text):
        edited = click.edit(text, extension=".txt", require_save=False)
        return text if edited is None else edited
    sent = comms.compose_email(app, code, template, to=to, cc=cc, subject=subject,
                               variables=variables, editor=editor if edit else None,
                               draft=draft, attach=attach)
    _email_result(sent, draft)


def _email_result(sent, draft=False):
    import json
    rcpt = json.loads(sent.row.recipients)
    if draft:
        click.echo(f"Draft #{sent.row.id} saved: escalate email send {sent.row.id}")
        return
    if sent.outcome is None:
        click.echo(f"Email queued (outbox #{sent.row.id}); a deliverer is sending it")
        return
    cc = f", cc {', '.join(rcpt['cc'])}" if rcpt.get("cc") else ""
    click.echo(f"Email sent successfully ✓ (to {', '.join(rcpt['to'])}{cc}; "
               f"outbox #{sent.row.id})")
    if sent.outcome.refused:
        _warn(f"refused: {sent.outcome.error}")


@email.command("send")
@click.argument("draft_id", type=ID, metavar="DRAFT_ID")
@pass_app
def email_send(app, draft_id):
    """Send a draft saved with --draft.

    \b
    Example:
      escalate email send 12
    """
    from .. import comms
    _email_result(comms.send_draft(app, draft_id))


# -- tasks ----------------------------------------------------------------------------------

@click.group(cls=DefaultGroup, default_command="new")
def task():
    """Create and follow tasks for people or teams.

    'escalate task CODE ...' is short for 'escalate task new CODE ...'.

    \b
    Examples:
      escalate task ESC-2024-11-28-001 --title "Issue corrected invoice" --assign finance \\
          --due "today 17:00" --priority high --description - < details.txt
      escalate task list --mine --overdue
      escalate task done 3 --note "Corrected invoice sent to Google"
    """


@task.command("new")
@code_argument
@click.option("--title", required=True, metavar="TEXT", help="What is to be done.")
@click.option("--assign", "assignee", required=True, metavar="LOGIN|TEAM",
              shell_complete=complete_assignee,
              help="A user's login or a team (key or name, e.g. finance).")
@click.option("--due", required=True, metavar="WHEN",
              help="e.g. 'today 17:00', 'tomorrow 9am', 2024-11-29T17:00.")
@click.option("--priority", type=PRIORITY_CHOICE, default="medium", show_default=True)
@click.option("--description", metavar="TEXT|-", help="Details ('-' reads stdin).")
@pass_app
def task_new(app, code, title, assignee, due, priority, description):
    """Create a task linked to the escalation; the assignee (or the team address) is told.

    \b
    Example:
      escalate task ESC-2024-11-28-001 \\
          --title "Issue corrected invoice for Google - Sarah Chen placement" --assign finance \\
          --due "today 17:00" --priority high --description "Bill rate $110/hr ..."
    """
    from .. import comms
    from ..outbox import team_short_name
    when = parse_when(app, due, "--due")
    text = read_text(description, "description", required=False, editor=False) \
        if description else None
    t, team, outcome = comms.create_task(app, code, title, assignee, when, priority.lower(), text)
    name = team_short_name(team) if team is not None else t.assignee_user.name
    click.echo(f"Task created and assigned to {name} ✓ "
               f"(#{t.id}, due {comms.short_when(app, t.due_at)})")
    _delivery_note(outcome, "task email")


@task.command("list")
@click.option("--mine", is_flag=True, help="Assigned to you or your teams.")
@click.option("--team", metavar="KEY", help="Assigned to this team.",
              shell_complete=complete_team)
@click.option("--overdue", is_flag=True, help="Open and past due.")
@click.option("--all", "include_done", is_flag=True, help="Include done tasks.")
@output_options
@pass_app
def task_list(app, mine, team, overdue, include_done, fmt):
    """Tasks you can see: open ones by due date (with --all, done ones too).

    \b
    Examples:
      escalate task list --mine
      escalate task list --team finance --overdue --format json
    """
    from .. import comms
    rows = [comms.task_dict(app, t, fmt) for t in
            comms.list_tasks(app, mine=mine, team=team, overdue=overdue, include_done=include_done)]
    columns = ["id", "title", "assignee", "due", "priority", "status", "overdue", "escalation"]
    render(rows, fmt, columns=columns if fmt != "json" else None, empty="No tasks.")


@task.command("done")
@click.argument("task_id", type=ID, metavar="ID")
@click.option("--note", metavar="TEXT",
              help="What was done, e.g. 'Corrected invoice sent to Google'.")
@pass_app
def task_done(app, task_id, note):
    """Mark a task done; the escalation's owner is told "Task completed: ...".

    \b
    Example:
      escalate --as maria.lopez task done 1 --note "Corrected invoice sent to Google"
    """
    from .. import comms
    t, text = comms.complete_task(app, task_id, note)
    click.echo(f"Task completed: {text} (#{t.id})")


# -- calls ----------------------------------------------------------------------------------

@click.group()
def call():
    """Schedule calls (with calendar invites), move or cancel them, and log them.

    \b
    Examples:
      escalate call schedule ESC-2024-11-28-001 --at "2024-11-29 09:00" --duration 30 --agenda -
      escalate call log ESC-2024-11-28-001 --duration 15 --outcome positive --summary -
    """


@call.command("schedule")
@code_argument
@click.option("--at", "at", required=True, metavar="WHEN",
              help="Start, in the company zone unless it has an offset.")
@click.option("--duration", type=click.IntRange(1, 480), default=30, show_default=True,
              metavar="MIN")
@click.option("--type", "type_", type=click.Choice(["phone", "video", "in-person"]),
              default="phone", show_default=True)
@click.option("--agenda", metavar="TEXT|-",
              help="The agenda, shared with the attendees ('-' reads stdin).")
@click.option("--location", metavar="TEXT",
              help="Where (default for a phone call: the contact's number).")
@click.option("--invite/--no-invite", default=True, show_default=True,
              help="Send a calendar invite to the contact and the reporter.")
@pass_app
def call_schedule(app, code, at, duration, type_, agenda, location, invite):
    """Schedule a call: iCalendar invite to the contact and the reporter, and a reminder to
    you 15 minutes before.

    \b
    Example:
      escalate call schedule ESC-2024-11-28-001 --at "2024-11-29 09:00" --duration 30 \\
          --type phone --agenda "1. Apologize for invoice error ..."
    """
    from .. import comms
    when = parse_when(app, at, "--at")
    text = read_text(agenda, "agenda", required=False, editor=False) if agenda else None
    meeting, outcome = comms.schedule_call(app, code, when, duration, type_, text, invite, location)
    refused, unreachable = comms.refused_invitees(outcome)
    invited = [a for a in comms.meeting_emails(meeting) if a.lower() not in refused]
    note = f"; invite sent to {', '.join(invited)}" if invited and outcome is not None \
        and outcome.status == "sent" else ""
    click.echo(f"Call scheduled for {comms.clock(app, meeting.starts_at)} ✓ "
               f"(#{meeting.id}, {comms.long_when(app, meeting.starts_at)}{note})")
    if unreachable:        # the call stands; the client must be reached another way
        from ..errors import DeliveryFailed
        raise DeliveryFailed(unreachable)
    if refused:
        _warn(f"the invite could not reach {', '.join(refused)}")
    else:
        _delivery_note(outcome, "invite")


@call.command("reschedule")
@click.argument("call_id", type=ID, metavar="ID")
@click.option("--at", "at", required=True, metavar="WHEN", help="The new start.")
@click.option("--duration", type=click.IntRange(1, 480), metavar="MIN", help="A new duration.")
@pass_app
def call_reschedule(app, call_id, at, duration):
    """Move a call: the attendees get an update under the same UID (higher SEQUENCE).

    \b
    Example:
      escalate call reschedule 1 --at "2024-11-29 10:00"
    """
    from .. import comms
    meeting, outcome = comms.reschedule_call(app, call_id, parse_when(app, at, "--at"), duration)
    click.echo(f"Call #{meeting.id} moved to {comms.long_when(app, meeting.starts_at)} ✓")
    _delivery_note(outcome, "update")


@call.command("cancel")
@click.argument("call_id", type=ID, metavar="ID")
@click.option("--reason", metavar="TEXT", help="Told to the attendees.")
@pass_app
def call_cancel(app, call_id, reason):
    """Cancel a call: the attendees' calendars drop it (METHOD:CANCEL, same UID).

    \b
    Example:
      escalate call cancel 1 --reason "Client confirmed by email"
    """
    from .. import comms
    meeting, outcome = comms.cancel_call(app, call_id, reason)
    click.echo(f"Call #{meeting.id} cancelled ✓")
    _delivery_note(outcome, "cancellation")


@call.command("log")
@code_argument
@click.option("--duration", type=click.IntRange(1, 600), required=True, metavar="MIN")
@click.option("--outcome", type=click.Choice(["positive", "neutral", "negative"]), required=True)
@click.option("--summary", required=True, metavar="TEXT|-",
              help="What was said and agreed ('-' reads stdin).")
@click.option("--contact", metavar="EMAIL", help="Instead of the escalation's contact.")
@click.option("--call", "call_id", type=ID, metavar="ID",
              help="The scheduled call this was (default: the latest due).")
@pass_app
def call_log(app, code, duration, outcome, summary, contact, call_id):
    """Log a call on the escalation's timeline.

    \b
    Example:
      escalate call log ESC-2024-11-28-001 --duration 15 --outcome positive \\
          --summary "Client accepted apology. ..."
    """
    from .. import comms
    comms.log_call(app, code, duration, outcome, read_text(summary, "summary"), contact, call_id)
    click.echo("Activity logged ✓")


@call.command("list")
@code_argument
@output_options
@pass_app
def call_list(app, code, fmt):
    """The escalation's calls.

    \b
    Example:
      escalate call list ESC-2024-11-28-001
    """
    from .. import comms
    zone = app.get_settings().zone
    rows = [{"id": m.id, "starts_at": m.starts_at.astimezone(zone).isoformat(),
             "duration": m.duration_minutes, "type": m.type, "status": m.status,
             "attendees": comms.meeting_emails(m), "uid": m.uid, "sequence": m.sequence}
            for m in comms.list_calls(app, code)]
    render(rows, fmt, columns=["id", "starts_at", "duration", "type", "status", "attendees"]
           if fmt != "json" else None, empty="No calls.")


# -- messages -------------------------------------------------------------------------------

@click.command()
@code_argument
@click.argument("text", required=False, metavar="[TEXT|-]")
@click.option("--tone", type=click.Choice(["formal", "professional", "casual"]),
              default="professional", show_default=True)
@click.option("--one-on-one", "one_on_one", metavar="WHEN",
              help="Also create a 1:1 task for you, due then.")
@click.option("--topic", metavar="TEXT", help="The 1:1's topic (default: Escalation Review).")
@pass_app
def message(app, code, text, tone, one_on_one, topic):
    """Message the reporter (in-app and email); optionally create a 1:1 task.

    TEXT '-' reads stdin; no TEXT opens $EDITOR.

    \b
    Example:
      escalate message ESC-2024-11-28-001 - --one-on-one tomorrow \\
          --topic "Contract Management Process Review" < debrief.txt
    """
    from .. import comms
    when = parse_when(app, one_on_one, "--one-on-one") if one_on_one else None
    act, t, outcome = comms.send_message(app, code, read_text(text, "message"), tone, when, topic)
    first = act.escalation.reporter.name.split()[0]
    click.echo(f"Message sent to {first} ✓")
    if t is not None:
        click.echo(f"1:1 task #{t.id} created: {t.title} (due {comms.short_when(app, t.due_at)})")
    _delivery_note(outcome, "email copy")


# -- outbox ---------------------------------------------------------------------------------

@click.group(invoke_without_command=True)
@click.option("--failed", is_flag=True, help="Only failed and dead messages.")
@click.option("--drafts", is_flag=True, help="Your drafts.")
@click.option("--all", "everything", is_flag=True, help="Everything, sent included.")
@output_options
@pass_app
@click.pass_context
def outbox(ctx, app, failed, drafts, everything, fmt):
    """What waits to be delivered, and why; retry a message.

    \b
    Examples:
      escalate outbox
      escalate outbox --failed --format json
      escalate outbox retry 12
    """
    if ctx.invoked_subcommand is not None:
        return
    from .. import outbox as ob
    rows = [ob.row_dict(app, r) for r in
            ob.list_rows(app, failed=failed, drafts=drafts, everything=everything)]
    render(rows, fmt, columns=["id", "channel", "status", "to", "subject", "attempts",
                               "next_attempt_at", "last_error"] if fmt != "json" else None,
           empty="Nothing waiting.")


@outbox.command("retry")
@click.argument("row_id", type=ID, metavar="ID")
@pass_app
def outbox_retry(app, row_id):
    """Retry a message now (failed, dead or waiting).

    \b
    Example:
      escalate outbox retry 12
    """
    from .. import outbox as ob
    from ..errors import DeliveryFailed
    outcome = ob.retry(app, row_id)
    if outcome is None:
        click.echo(f"Outbox #{row_id}: not due yet or being sent by another deliverer")
        return
    if outcome.status != "sent":
        if outcome.channel == "email":
            raise DeliveryFailed(f"Failed to send email. Please try again. ({outcome.error})")
        raise DeliveryFailed(f"Failed to send SMS: {outcome.error}")
    click.echo(f"Outbox #{row_id}: sent ✓")


@outbox.command("show")
@click.argument("row_id", type=ID, metavar="ID")
@output_options
@pass_app
def outbox_show(app, row_id, fmt):
    """One message in full: recipients, headers, text, attempts and error.

    \b
    Example:
      escalate outbox show 12 --format json
    """
    from .. import outbox as ob
    render_object(ob.row_dict(app, ob.get_row(app, row_id), detail=True), fmt)


COMMANDS = [email, task, call, message, outbox]
