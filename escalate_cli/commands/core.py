"""Set-up, directory, and the commands with which a manager finds, reads and takes an escalation."""
import sys

import click

from ..output import json_line, output_options, render, render_object
from .common import (ID, MAX_ROW_ID, code_argument, complete_account, complete_login,
                     complete_pod, pass_app, read_text)

PRIORITY_CHOICE = click.Choice(["critical", "high", "medium", "low"], case_sensitive=False)
STATUS_CHOICE = click.Choice(["pending", "in_progress", "on_hold", "escalated", "resolved", "all"],
                             case_sensitive=False)


@click.command()
@click.option("--demo", is_flag=True, help="Load the use case's people, records and escalation.")
@click.option("--demo-people", is_flag=True,
              help="Load the use case's people and records, without its escalation "
                   "(raise it yourself: see the README's walk-through).")
@click.option("--admin", "admin_login", metavar="LOGIN", help="Create the first admin.")
@click.option("--email", metavar="EMAIL", help="The first admin's email.")
@click.option("--name", metavar="NAME", help="The first admin's name.")
@pass_app
def init(app, demo, demo_people, admin_login, email, name):
    """Create or upgrade the database schema (safe to run again).

    \b
    Examples:
      escalate init --admin ops --email ops@intime.com --name "Ops Team"
      escalate init --demo
      escalate init --demo-people
      ESCALATE_DB=postgresql://postgres@127.0.0.1:5432/escalate escalate init
    """
    from .. import migrations
    from ..db import redact_url
    if admin_login and not email:
        raise click.UsageError("--admin needs --email.")
    ran = migrations.migrate(app.db)
    click.echo(f"Schema up to date ({len(migrations.MIGRATIONS)} migrations; "
               f"{len(ran)} applied now) at {redact_url(app.db_url)}", err=True)
    if admin_login:
        from ..directory import bootstrap_admin
        user = bootstrap_admin(app, admin_login, email, name)
        click.echo(f"Admin: {user.login} <{user.email}>", err=True)
    if demo:
        from ..demo import load_demo
        esc, created = load_demo(app)
        click.echo(("Demo data loaded: " if created else "Demo data already present: ")
                   + f"{esc.code}. Try: ESCALATE_USER=sarah.martinez escalate list", err=True)
    elif demo_people:
        from ..demo import load_demo
        _, created = load_demo(app, escalation=False)
        click.echo(("Demo people and records loaded" if created else
                    "Demo people and records already present")
                   + ": sarah.martinez, john.smith, olivia.park, david.kim, maria.lopez; "
                     "Google Inc., Jane Doe, contract C-2024-08-15-GOOG-001", err=True)


# -- directory ----------------------------------------------------------------------------

@click.group()
def user():
    """Users: add, change and list them (admins add and change).

    \b
    Examples:
      escalate user add john.smith --name "John Smith" --email john.smith@intime.com \\
          --role ic --pod "Recruiting Pod A"
      escalate user set john.smith --pod "Recruiting Pod B"
      escalate user list
    """


@user.command("add")
@click.argument("login")
@click.option("--name", required=True, help="Full name, as people see it.")
@click.option("--email", required=True, help="Email address.")
@click.option("--role", required=True,
              type=click.Choice(["ic", "manager", "coo", "ceo", "admin", "finance"]))
@click.option("--pod", metavar="POD", help="The pod an IC or manager belongs to.",
              shell_complete=complete_pod)
@click.option("--phone", metavar="PHONE", help="Mobile number for SMS (E.164, e.g. +15550100).")
@click.option("--title", metavar="TITLE", help="Job title shown on screens.")
@pass_app
def user_add(app, login, name, email, role, pod, phone, title):
    """Add a user.

    \b
    Example:
      escalate user add john.smith --name "John Smith" --email john.smith@intime.com \\
          --role ic --pod "Recruiting Pod A"
    """
    from ..directory import add_user
    u = add_user(app, login, name, email, role, pod=pod, phone=phone, title=title)
    click.echo(u.login)


@user.command("list")
@output_options
@pass_app
def user_list(app, fmt):
    """List users.

    \b
    Example:
      escalate user list --format csv
    """
    from ..directory import list_pods, list_users
    manages = {}
    for p in list_pods(app):
        manages.setdefault(p.manager_id, []).append(p.name)
    rows = [{"login": u.login, "name": u.name, "email": u.email, "role": u.role,
             "pod": ", ".join(dict.fromkeys(([u.pod.name] if u.pod_id else [])
                                            + manages.get(u.id, []))) or None,
             "title": u.title, "active": u.active} for u in list_users(app)]
    render(rows, fmt, columns=["login", "name", "email", "role", "pod", "title", "active"])


@user.command("set")
@click.argument("login", shell_complete=complete_login)
@click.option("--name", help="Full name, as people see it.")
@click.option("--email", help="Email address.")
@click.option("--role", type=click.Choice(["ic", "manager", "coo", "ceo", "admin", "finance"]))
@click.option("--pod", metavar="POD", shell_complete=complete_pod,
              help="Move them to this pod ('' takes them out of their pod).")
@click.option("--phone", metavar="PHONE", help="Mobile number for SMS ('' removes it).")
@click.option("--title", metavar="TITLE", help="Job title shown on screens.")
@click.option("--active/--inactive", default=None,
              help="An inactive user can no longer act and is told nothing.")
@pass_app
def user_set(app, login, name, email, role, pod, phone, title, active):
    """Change a user (admins only): pod, role, contact details, or leaving the company.

    \b
    Examples:
      escalate user set john.smith --pod "Recruiting Pod B"
      escalate user set maria.lopez --phone +15550100 --title "Finance Lead"
      escalate user set old.timer --inactive
    """
    from ..directory import update_user
    u = update_user(app, login, name=name, email=email, role=role, pod=pod, phone=phone,
                    title=title, active=active)
    click.echo(u.login)


@click.group()
def pod():
    """Pods: a manager and their ICs.

    \b
    Examples:
      escalate pod add "Recruiting Pod A" --manager sarah.martinez
      escalate pod list
    """


@pod.command("list")
@output_options
@pass_app
def pod_list(app, fmt):
    """List pods with their manager and how many people are in each.

    \b
    Example:
      escalate pod list --format json
    """
    from ..directory import pod_rows
    rows = pod_rows(app)
    render(rows, fmt, columns=["name", "manager", "manager_name", "members"])


@pod.command("add")
@click.argument("name")
@click.option("--manager", required=True, metavar="LOGIN", help="The pod's manager.",
              shell_complete=complete_login)
@pass_app
def pod_add(app, name, manager):
    """Add a pod.

    \b
    Example:
      escalate pod add "Recruiting Pod A" --manager sarah.martinez
    """
    from ..directory import add_pod
    p = add_pod(app, name, manager)
    click.echo(p.name)


@click.group()
def team():
    """Teams (for example Finance) that receive tasks at a shared address.

    \b
    Examples:
      escalate team add finance --name "Finance Team" --email finance@intime.com
      escalate team list
    """


@team.command("list")
@output_options
@pass_app
def team_list(app, fmt):
    """List teams with their address and members.

    \b
    Example:
      escalate team list --format csv
    """
    from ..directory import team_rows
    rows = team_rows(app)
    render(rows, fmt, columns=["key", "name", "email", "active", "members"])


@team.command("add")
@click.argument("key")
@click.option("--name", required=True, help="Display name, e.g. 'Finance Team'.")
@click.option("--email", required=False, help="Shared address that receives the team's tasks.")
@click.option("--member", "members", multiple=True, metavar="LOGIN", help="A member (repeatable).",
              shell_complete=complete_login)
@pass_app
def team_add(app, key, name, email, members):
    """Add a team.

    \b
    Example:
      escalate team add finance --name "Finance Team" --email finance@intime.com --member maria.lopez
    """
    from ..directory import add_team
    t = add_team(app, key, name, email, members)
    click.echo(t.key)


@click.command("import")
@click.argument("kind", type=click.Choice(["accounts", "contacts", "contracts", "invoices"]))
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--skip-invalid", is_flag=True, help="Import the good rows and report the bad ones.")
@pass_app
def import_(app, kind, file, skip_invalid):
    """Import CRM records from a CSV file, upserted by natural key.

    \b
    Headers:
      accounts   name,strategic,annual_revenue
      contacts   account,name,email,phone,title
      contracts  code,account,candidate,title,bill_rate,pay_rate,start_date
      invoices   number,contract,period,hours,bill_rate[,pay_rate]

    A bad row is reported as FILE:LINE: reason, and nothing is written unless
    --skip-invalid is given.

    \b
    Example:
      escalate import accounts accounts.csv
    """
    from ..directory import import_csv
    from ..errors import Refused
    from .. import progress
    with progress.on_terminal() as terminal, \
            progress.tracking(f"Importing {kind}", _count_lines(file) if terminal else 0) as bar:
        created, updated, errors = import_csv(app, kind, file, skip_invalid, progress=bar.update)
    for line in errors:
        click.echo(line, err=True)
    if errors and not skip_invalid:
        raise Refused(f"{file}: {len(errors)} bad row(s); nothing imported "
                      f"(fix them, or use --skip-invalid)")
    click.echo(f"{kind}: {created} created, {updated} updated"
               + (f", {len(errors)} skipped" if errors else ""), err=True)


def _count_lines(path):
    try:
        with open(path, "rb") as fh:
            return max(0, sum(1 for _ in fh) - 1)
    except OSError:
        return 0


# -- escalations --------------------------------------------------------------------------

@click.command()
@click.option("--title", required=True, help="A short title.")
@click.option("--category", required=True, metavar="CATEGORY",
              help="Client Complaint, Candidate Issue, Rate Exception, Contract Dispute or "
                   "System/Process Failure.")
@click.option("--subcategory", metavar="TEXT", help="e.g. Billing Dispute, Performance, Ghosting.")
@click.option("--priority", required=True, type=PRIORITY_CHOICE)
@click.option("--account", metavar="NAME", help="The account affected.",
              shell_complete=complete_account)
@click.option("--contact", metavar="EMAIL", help="The client contact (by email).")
@click.option("--contract", metavar="CODE", help="The contract / placement, e.g. C-2024-08-15-GOOG-001.")
@click.option("--description", metavar="TEXT|-", help="What happened ('-' reads stdin; "
                                                        "omitted opens $EDITOR).")
@click.option("--assessment", metavar="TEXT", help="Your initial assessment.")
@click.option("--attach", "attachments", multiple=True, type=click.Path(), metavar="FILE",
              help="Attach a document (repeatable).")
@click.option("--pod", metavar="POD", help="The pod to route to (default: yours).",
              shell_complete=complete_pod)
@click.option("--idempotency-key", metavar="KEY",
              help="Make a retried script safe: the same key returns the same escalation.")
@pass_app
def create(app, title, category, subcategory, priority, account, contact, contract, description,
           assessment, attachments, pod, idempotency_key):
    """Raise an escalation; prints its code.

    \b
    Example:
      escalate --as john.smith create --title "Unauthorized Rate Increase" \\
          --category "Client Complaint" --subcategory "Billing Dispute" --priority critical \\
          --account "Google Inc." --contact jane@google.com --contract C-2024-08-15-GOOG-001 \\
          --description "Client billed \\$120/hr instead of the agreed \\$110/hr" \\
          --attach invoice-nov-2024-google.pdf
    """
    from .. import domain
    description = read_text(description, "description")
    esc = domain.create_escalation(
        app, title=title, category=domain.normalise_category(category), priority=priority.lower(),
        description=description, subcategory=subcategory, account=account, contact=contact,
        contract=contract, assessment=assessment, attachments=attachments,
        idempotency_key=idempotency_key, pod=pod)
    click.echo(esc.code)


@click.command("list")
@click.option("--status", "statuses", multiple=True, type=STATUS_CHOICE,
              help="Only these statuses (repeatable; default: every open one; 'all' for all).")
@click.option("--priority", "priorities", multiple=True, type=PRIORITY_CHOICE, help="Only these priorities.")
@click.option("--pod", metavar="POD", help="Only this pod.", shell_complete=complete_pod)
@click.option("--owner", metavar="LOGIN", help="Only those owned by LOGIN.",
              shell_complete=complete_login)
@click.option("--mine", is_flag=True, help="Only those you own.")
@click.option("--breached", is_flag=True, help="Only those past an SLA.")
@click.option("--account", metavar="NAME", help="Only this account.",
              shell_complete=complete_account)
@click.option("--limit", type=click.IntRange(1, 100000), default=200, show_default=True)
@output_options
@pass_app
def list_(app, statuses, priorities, pod, owner, mine, breached, account, limit, fmt):
    """The queue: sorted by priority, then SLA due; with age and SLA state.

    \b
    Examples:
      escalate list
      escalate list --mine --format json
      escalate list --breached --priority critical --priority high
      escalate list --status all --account "Google Inc." --format csv
    """
    from .. import domain, screens
    if "all" in statuses:
        statuses = ("pending", "in_progress", "on_hold", "escalated", "resolved")
    query = domain.list_escalations(app, statuses=statuses, priorities=priorities, pod=pod,
                                    owner=owner, mine=mine, breached=breached, account=account,
                                    limit=limit, brief=True)
    if fmt == "table":
        rows = [screens.queue_row(app, e) for e in query]
        render(rows, fmt, columns=["code", "priority", "status", "title", "account", "owner",
                                   "age", "sla"], empty="No escalations in your queue.",
               optional=("account", "owner"))
    else:
        render([domain.escalation_dict(app, e) for e in query], fmt)


@click.command()
@code_argument
@click.option("-i", "--interactive", is_flag=True,
              help="Keyboard mode: t take ownership, e email, c call, m message IC, r resolve.")
@output_options
@pass_app
def show(app, code, interactive, fmt):
    """The detail screen: summary, related entities, timeline, attachments, SLA.

    \b
    Examples:
      escalate show ESC-2024-11-28-001
      escalate show ESC-2024-11-28-001 --format json | jq .sla_state
    """
    from .. import domain, screens
    esc = domain.get_escalation(app, code, related=True)
    if interactive:
        from ..interactive import run
        return run(app, esc.code)
    if fmt == "table":
        from ..output import page
        page("\n".join(screens.detail(app, esc, recommendations=_recommendations(app, esc))))
        return
    d = domain.escalation_dict(app, esc, detail=True)
    if fmt == "json":
        d["timeline"] = [_activity_dict(app, a) for a in domain.timeline(app, esc)]
        d["attachments"] = [_attachment_dict(app, a) for a in domain.attachments_of(esc)]
        d["previous_escalations"] = [p.code for p in domain.previous_escalations(esc)]
        recs = _recommendations(app, esc)
        d["recommended_actions"] = (None if recs is None else
                                    [r.to_dict() if hasattr(r, "to_dict") else r for r in recs])
    render_object(d, fmt)


def _recommendations(app, esc):
    """The RECOMMENDED ACTIONS: objects with ``to_dict()`` (kind, text, source, command)."""
    try:
        from ..insight import recommend
    except ImportError:
        return None
    return recommend(app, esc)


def _activity_dict(app, a):
    zone = app.get_settings().zone
    return {"id": a.id, "type": a.type, "internal": a.internal, "direction": a.direction,
            "subject": a.subject, "body": a.body,
            "actor": a.actor.login if a.actor_id else None,
            "occurred_at": a.occurred_at.astimezone(zone).isoformat()}


def _attachment_dict(app, a):
    zone = app.get_settings().zone
    return {"id": a.id, "name": a.name, "content_type": a.content_type, "size": a.size,
            "sha256": a.sha256, "created_at": a.created_at.astimezone(zone).isoformat()}


@click.command()
@code_argument
@pass_app
def claim(app, code):
    """Take ownership (PENDING -> IN PROGRESS); the reporter is told.

    Exactly one of any number of simultaneous claims wins; the others get
    "This escalation is already being handled by NAME" and exit code 4.

    \b
    Example:
      escalate --as sarah.martinez claim ESC-2024-11-28-001
    """
    from .. import domain
    esc = domain.claim(app, code)
    click.echo(f"{esc.code}: Owner: {app.actor.name} (You). Status: IN PROGRESS")


@click.command()
@code_argument
@click.option("--to", "login", required=True, metavar="LOGIN", help="The new owner.",
              shell_complete=complete_login)
@pass_app
def assign(app, code, login):
    """Assign the escalation to someone else.

    \b
    Example:
      escalate assign ESC-2024-11-28-001 --to olivia.park
    """
    from .. import domain
    esc = domain.assign(app, code, login)
    click.echo(f"{esc.code}: assigned to {esc.owner.name}")


@click.command("request-info")
@code_argument
@click.option("--message", required=True, metavar="TEXT|-", help="What you need ('-' reads stdin).")
@pass_app
def request_info(app, code, message):
    """Ask the reporter for more information (reopens an unapproved IC resolution).

    \b
    Example:
      escalate request-info ESC-2024-11-28-001 --message "Which invoice number?"
    """
    from .. import domain
    esc = domain.request_info(app, code, read_text(message, "message"))
    click.echo(f"{esc.code}: asked {esc.reporter.name} for more information")


@click.command()
@code_argument
@click.argument("text", required=False, metavar="[TEXT|-]")
@pass_app
def note(app, code, text):
    """Add an internal investigation note (managers and leaders only; never sent out).

    TEXT '-' reads stdin; no TEXT opens $EDITOR.

    \b
    Examples:
      escalate note ESC-2024-11-28-001 "Root cause: IC used the new template"
      escalate note ESC-2024-11-28-001 - < findings.txt
    """
    from .. import domain
    n = domain.add_note(app, code, read_text(text, "note"))
    click.echo(f"Note #{n.id} saved (internal only)")


@click.command()
@code_argument
@click.argument("files", nargs=-1, required=True, type=click.Path(), metavar="FILE...")
@pass_app
def attach(app, code, files):
    """Attach documents (stored in the database, with type, size and SHA-256).

    \b
    Example:
      escalate attach ESC-2024-11-28-001 invoice-nov-2024-google.pdf contract.pdf
    """
    from .. import domain
    for a in domain.attach(app, code, files):
        click.echo(f"#{a.id} {a.name} {a.content_type} {a.size} bytes sha256:{a.sha256[:12]}")


@click.group()
def attachment():
    """List and extract an escalation's documents ('escalate attach' adds them).

    \b
    Examples:
      escalate attachment list ESC-2024-11-28-001
      escalate attachment get ESC-2024-11-28-001 contract-aug-2024-google.pdf -o ./docs
    """


@attachment.command("list")
@code_argument
@output_options
@pass_app
def attachment_list(app, code, fmt):
    """List attachments.

    \b
    Example:
      escalate attachment list ESC-2024-11-28-001
    """
    from .. import domain
    rows = [_attachment_dict(app, a) for a in domain.list_attachments(app, code)]
    render(rows, fmt, columns=["id", "name", "content_type", "size", "sha256", "created_at"],
           empty="No attachments.")


@attachment.command("get")
@code_argument
@click.argument("which", metavar="ID|NAME")
@click.option("-o", "--output", "folder", default=".", show_default=True, type=click.Path(),
              help="Folder to write into (nothing is written outside it).")
@click.option("--stdout", "to_stdout", is_flag=True, help="Write the bytes to stdout instead.")
@pass_app
def attachment_get(app, code, which, folder, to_stdout):
    """Extract an attachment into a folder (or to stdout).

    \b
    Examples:
      escalate attachment get ESC-2024-11-28-001 contract-aug-2024-google.pdf -o /tmp
      escalate attachment get ESC-2024-11-28-001 2 --stdout | less
    """
    from .. import domain
    if to_stdout:
        att = domain.get_attachment(app, code, which)
        sys.stdout.buffer.write(bytes(att.data))
        return
    click.echo(domain.extract_attachment(app, code, which, folder))


@click.command()
@code_argument
@output_options
@pass_app
def timeline(app, code, fmt):
    """The escalation's timeline, in order, with who and when.

    \b
    Example:
      escalate timeline ESC-2024-11-28-001 --format json
    """
    from .. import domain, screens
    from ..fmt import when
    esc = domain.get_escalation(app, code)
    acts = domain.timeline(app, esc)
    if fmt == "table":
        zone = app.get_settings().zone
        rows = [{"when": when(a.occurred_at, zone), "type": a.type,
                 "who": a.actor.name if a.actor_id else "System",
                 "what": screens.activity_text(a)} for a in acts]
        render(rows, fmt, columns=["when", "type", "who", "what"], empty="No activity yet.")
    else:
        render([_activity_dict(app, a) for a in acts], fmt)


@click.command()
@click.option("--unread", is_flag=True, help="Only unread notifications.")
@click.option("--mark-read", is_flag=True, help="Mark the shown notifications read.")
@click.option("--limit", type=click.IntRange(1, 1000), default=50, show_default=True)
@output_options
@pass_app
def inbox(app, unread, mark_read, limit, fmt):
    """Your in-app notifications, newest first.

    \b
    Example:
      ESCALATE_USER=sarah.martinez escalate inbox --unread --mark-read
    """
    from .. import domain
    from ..fmt import when
    zone = app.get_settings().zone
    rows = [{"id": n.id, "when": when(n.created_at, zone) if fmt == "table" else
             n.created_at.astimezone(zone).isoformat(),
             "escalation": n.escalation.code if n.escalation_id else None,
             "message": n.message, "read": n.read_at is not None, "kind": n.kind}
            for n in domain.inbox(app, unread_only=unread, mark_read=mark_read, limit=limit)]
    render(rows, fmt, columns=["id", "when", "escalation", "message", "read"],
           empty="No notifications.")


@click.command()
@click.option("--since", type=click.IntRange(0, MAX_ROW_ID), default=0, metavar="ID",
              help="Only events after this id (for incremental consumers).")
@click.option("--name", metavar="NAME", help="Only events with this name, e.g. escalation.created.")
@click.option("--limit", type=ID, default=None)
@click.option("--format", "fmt", type=click.Choice(["json", "table", "csv"]), default="json",
              show_default=True, help="json prints JSON lines, one event per line.")
@pass_app
def events(app, since, name, limit, fmt):
    """The event stream, oldest first.

    \b
    Example:
      escalate events --since 120 --format json | my-integration
    """
    from .. import domain
    zone = app.get_settings().zone
    items = ({"id": ev.id, "name": ev.name, "escalation": getattr(ev, "esc_code", None),
              "actor": ev.actor.login if ev.actor_id else None,
              "created_at": ev.created_at.astimezone(zone).isoformat(), "payload": payload}
             for ev, payload in domain.events_since(app, since, limit, name))
    if fmt == "json":
        for item in items:
            json_line(item)
    else:
        import json
        render((dict(i, payload=json.dumps(i["payload"], ensure_ascii=False, default=str))
                for i in items), fmt,
               columns=["id", "name", "escalation", "actor", "created_at", "payload"],
               empty="No events.")


COMMANDS = [init, user, pod, team, import_, create, list_, show, claim, assign, request_info,
            note, attach, attachment, timeline, inbox, events]
