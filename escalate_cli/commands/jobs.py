"""Batch jobs for cron and the scheduler: one subcommand each, quiet on success."""
import click

from .common import pass_app


@click.group()
def jobs():
    """Batch jobs for cron: safe to run twice at once and on several hosts.

    \b
    Examples:
      escalate jobs deliver
      */1 * * * *  escalate jobs deliver      (crontab)
    """


@jobs.command("deliver")
@click.option("--limit", type=click.IntRange(1), default=500, show_default=True,
              help="At most this many messages per run.")
@click.option("--batch", type=click.IntRange(1, 500), default=20, show_default=True,
              help="Messages claimed (leased) at a time.")
@click.option("-v", "--verbose", is_flag=True, help="Say what was done even when all went well.")
@pass_app
def deliver(app, limit, batch, verbose):
    """Deliver the outbox: due emails and SMS, with retries and backoff.

    Two deliverers at once never send a message twice; a deliverer killed mid-batch
    loses nothing (its lease expires and the next run takes over). Exits 1 with one line on
    stderr when a message failed (it stays queued and is retried with backoff).

    \b
    Example:
      escalate jobs deliver --verbose
    """
    from ..outbox import deliver_due
    summary = deliver_due(app, limit=limit, batch=batch)
    line = f"sent {summary.sent}, failed {summary.failed}, dead {summary.dead}"
    if summary.skipped:
        line += f", skipped {summary.skipped} (no SMS gateway configured)"
    if summary.failed or summary.dead:
        click.echo(f"escalate jobs deliver: {line}: {summary.errors[0]}"
                   + (f" (and {len(summary.errors) - 1} more)" if len(summary.errors) > 1 else ""),
                   err=True)
        raise SystemExit(1)
    if verbose:
        click.echo(f"escalate jobs deliver: {line}")


COMMANDS = [jobs]
