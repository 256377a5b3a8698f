"""The batch jobs, one subcommand each, for cron; and ``jobs run`` for hosts without cron."""
import click

from ..output import output_options, render
from .common import ID, pass_app, parse_when

PLAN_COLUMNS = ["escalation", "priority", "clock", "action", "at", "late", "notify", "channels",
                "deliver"]


def job_options(fn):
    """--now, --verbose and --wait, shared by every job."""
    fn = click.option("--wait", type=click.FloatRange(0), default=0, metavar="SECONDS",
                      help="If another instance is running, wait up to SECONDS for it "
                           "(default: skip this run).")(fn)
    fn = click.option("-v", "--verbose", is_flag=True,
                      help="Log what the job did in one timestamped line (without it, a job "
                           "is quiet on success unless on a terminal).")(fn)
    fn = click.option("--now", "now_text", metavar="WHEN",
                      help="Act as if it were WHEN, e.g. 2024-11-29T09:05:00-05:00 "
                           "[default: ESCALATE_NOW, else the real time].")(fn)
    return fn


def _prepare(app, verbose, now_text):
    from jobs.runner import setup_logging
    setup_logging(verbose)
    if now_text:
        app.now_override = parse_when(app, now_text, "--now")


def _run(app, name, wait, verbose=False, lock=True, fn=None):
    """Run one job. On a terminal: a progress bar over many rows, then the summary line;
    elsewhere (cron) quiet on success, or the one timestamped line with --verbose."""
    from jobs import runner
    from .. import progress
    job_fn, default_lock = runner.JOBS[name]
    with progress.on_terminal() as terminal:
        outcome = runner.run_job(app, name, fn or job_fn, lock=lock and default_lock, wait=wait)
    if outcome.status == "failed":
        raise click.exceptions.Exit(1)
    if terminal and not verbose:
        click.echo(f"{name}: {outcome.message}", err=True)
    return outcome


def _times(app, rows, fmt):
    """Times as people read them in a table, as ISO 8601 in the company zone otherwise."""
    import datetime as dt
    from ..fmt import when
    zone = app.get_settings().zone
    out = []
    for row in rows:
        row = dict(row)
        for k, v in row.items():
            if isinstance(v, dt.datetime):
                row[k] = when(v, zone) if fmt == "table" else v.astimezone(zone).isoformat()
        out.append(row)
    return out


@click.group()
def jobs():
    """Batch jobs for cron: SLA sweep, digests, reminders, rate watch; and a scheduler.

    Each job is safe to run twice at once and on several hosts, quiet on success in cron
    unless --verbose, and logs one timestamped line on stderr and exits 1 on failure. On a
    terminal a job over many rows draws a progress bar on stderr and ends with its summary.
    See crontab.example.

    \b
    Examples:
      escalate jobs sla-sweep
      escalate jobs status
      escalate jobs run
    """


@jobs.command("sla-sweep")
@job_options
@click.option("--dry-run", is_flag=True,
              help="Print the plan (warnings, breaches, auto-resumes, notifications) and change "
                   "nothing.")
@click.option("--backfill", is_flag=True,
              help="Record past warnings and breaches without notifying anyone (first run on an "
                   "existing database).")
@click.option("--no-lock", is_flag=True, hidden=True,
              help="Run without the job lock (tests of the second line of defence).")
@output_options
@pass_app
def sla_sweep(app, now_text, verbose, wait, dry_run, backfill, no_lock, fmt):
    """Warn before SLA breaches and report breaches, each exactly once.

    A warning (at the configured share of the window, 75% by default) goes to the owner,
    or to the pod manager while unclaimed; a breach also goes to the role of the SLA table
    (CEO for critical, COO for high and medium). Critical notices go at once by email and
    SMS; others found outside business hours wait for the next business start. After an
    outage each person gets one catch-up message. Holds whose time is up resume.

    \b
    Examples:
      escalate jobs sla-sweep
      escalate jobs sla-sweep --dry-run --now "2024-11-29 09:05"
      escalate jobs sla-sweep --dry-run --format json | jq '.[] | select(.action=="breach")'
      escalate jobs sla-sweep --backfill          # first run on an existing database
    """
    _prepare(app, verbose, now_text)
    if dry_run:
        from jobs.runner import LOG
        from jobs.sweep import sweep
        result = sweep(app, dry_run=True, backfill=backfill)
        render(_times(app, result.plan, fmt), fmt, columns=PLAN_COLUMNS,
               empty="Nothing to do: no warning, breach or auto-resume is due.")
        LOG.info("sla-sweep (dry run): %s", result.summary())
        return
    from jobs.sweep import sweep
    _run(app, "sla-sweep", wait, verbose, lock=not no_lock,
         fn=lambda a, tick: sweep(a, backfill=backfill, tick=tick))


@jobs.command("deliver")
@job_options
@click.option("--limit", type=ID, default=500, show_default=True,
              help="At most this many messages per run.")
@click.option("--batch", type=click.IntRange(1, 500), default=20, show_default=True,
              help="Messages claimed (leased) at a time.")
@pass_app
def deliver(app, now_text, verbose, wait, limit, batch):
    """Deliver the outbox: due emails and SMS, with retries and backoff.

    Two deliverers at once never send a message twice; a deliverer killed mid-batch
    loses nothing (its lease expires and the next run takes over). Exits 1 with one line on
    stderr when a message failed (it stays queued and is retried with backoff).

    \b
    Example:
      escalate jobs deliver --verbose
    """
    from jobs import runner
    _prepare(app, verbose, now_text)
    _run(app, "deliver", wait, verbose, lock=False,
         fn=lambda app, tick: runner.deliver(app, tick, limit=limit, batch=batch))


@jobs.command()
@job_options
@pass_app
def digest(app, now_text, verbose, wait):
    """Send the daily digests: one per manager, one for the COO and the CEO.

    A manager's: open escalations by priority, at risk, breached, overdue tasks and what was
    resolved since the last digest. Leadership's: strategic accounts, breaches, and what was
    escalated to them. Each person gets at most one a day however often this runs; nobody
    gets an empty one unless [digest] send_empty = true.

    \b
    Example:
      escalate jobs digest --verbose
    """
    _prepare(app, verbose, now_text)
    _run(app, "digest", wait, verbose)


@jobs.command()
@job_options
@pass_app
def reminders(app, now_text, verbose, wait):
    """Remind people: calls 15 minutes before, tasks due soon and overdue, idle escalations.

    Each reminder is sent once.

    \b
    Example:
      escalate jobs reminders
    """
    _prepare(app, verbose, now_text)
    _run(app, "reminders", wait, verbose)


@jobs.command("rate-watch")
@job_options
@pass_app
def rate_watch(app, now_text, verbose, wait):
    """Raise a system escalation for each invoice billed off its agreed rate or at a loss.

    An invoice (escalate import invoices FILE.csv) whose bill rate differs from the contract's
    agreed rate with no approved change on file (escalate contract approve-rate), or whose
    margin is negative, gets one escalation, whatever the number of runs.

    \b
    Example:
      escalate import invoices november.csv && escalate jobs rate-watch --verbose
    """
    _prepare(app, verbose, now_text)
    _run(app, "rate-watch", wait, verbose)


@jobs.command("run")
@click.option("--once", is_flag=True, help="Run what is due once, then exit.")
@click.option("-q", "--quiet", is_flag=True, help="Log only warnings and failures.")
@click.option("--now", "now_text", metavar="WHEN", hidden=True)
@pass_app
def run_(app, once, quiet, now_text):
    """Run every job in-process on the schedule of the settings file (hosts without cron).

    Logs one line per job run, survives a job's failure, and stops cleanly on SIGTERM or
    SIGINT after the job in progress. Intervals: [jobs.schedule] in the settings file.

    \b
    Examples:
      escalate jobs run
      escalate jobs run --once          # everything due now, then exit
    """
    from jobs import runner
    _prepare(app, not quiet, now_text)
    outcomes = runner.run_schedule(app, once=once)
    if once and any(o.status == "failed" for o in outcomes):
        raise click.exceptions.Exit(1)


@jobs.command()
@click.option("--now", "now_text", metavar="WHEN", help="Judge as if it were WHEN.")
@output_options
@pass_app
def status(app, now_text, fmt):
    """Each job's last run, outcome and lag; exits 1 if a job is stale.

    A job is stale when it has not succeeded within its expected interval (three intervals,
    at least 10 minutes; a daily job two hours after its time), so that a silent cron
    failure is caught.

    \b
    Examples:
      escalate jobs status
      escalate jobs status --format json || page-the-on-call
    """
    from jobs import runner
    from ..errors import Refused
    from ..fmt import duration_short, when
    if now_text:
        app.now_override = parse_when(app, now_text, "--now")
    rows = runner.status(app)
    if fmt != "table":
        render(_times(app, rows, fmt), fmt)
    else:
        zone = app.get_settings().zone
        shown = [{"job": r["job"], "schedule": r["schedule"], "last run": when(r["last_run"], zone),
                  "outcome": r["outcome"] or "-", "last success": when(r["last_success"], zone),
                  "lag": duration_short(r["lag_seconds"]) if r["lag_seconds"] is not None else "-",
                  "state": r["state"]} for r in rows]
        render(shown, fmt)
    stale = [r["job"] for r in rows if r["state"] in ("STALE", "never ran")]
    if stale:
        raise Refused(f"stale job(s): {', '.join(stale)}: not succeeded within the expected "
                      f"interval")


COMMANDS = [jobs]
