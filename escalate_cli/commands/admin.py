"""Operations: backups, shell completion, settings."""
import click

from ..output import output_options, render_object
from .common import pass_app

SHELLS = ("bash", "zsh", "fish")


@click.command()
@click.argument("file", type=click.Path(dir_okay=False))
@pass_app
def backup(app, file):
    """Copy the SQLite database to FILE while it is in use (admins only).

    Uses SQLite's online backup, so a consistent copy is taken even while other commands
    and jobs write. For PostgreSQL use pg_dump (see docs/operations.md).

    \b
    Example:
      escalate backup /var/backups/escalate-$(date +%F).db
    """
    from ..backup import backup_sqlite
    pages = backup_sqlite(app, file)
    click.echo(f"Backed up to {file} ({pages} pages)", err=True)


@click.command()
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--yes", is_flag=True, help="Confirm: the current database is replaced.")
@pass_app
def restore(app, file, yes):
    """Replace the SQLite database with a backup made by 'escalate backup' (admins only).

    \b
    Example:
      escalate restore /var/backups/escalate-2024-11-29.db --yes
    """
    from ..backup import restore_sqlite
    if not yes:
        raise click.UsageError("restore replaces every record: add --yes to confirm.")
    restore_sqlite(app, file)
    click.echo(f"Restored from {file}", err=True)


@click.command()
@click.argument("shell", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx, shell):
    """Print the shell completion script for SHELL.

    Completes commands, options, escalation codes, logins and template names.

    \b
    Examples:
      escalate completion bash > ~/.local/share/bash-completion/completions/escalate
      escalate completion zsh > "${fpath[1]}/_escalate"
      escalate completion fish > ~/.config/fish/completions/escalate.fish
    """
    from click.shell_completion import get_completion_class
    root = ctx.find_root().command
    cls = get_completion_class(shell)
    click.echo(cls(root, {}, "escalate", "_ESCALATE_COMPLETE").source())


@click.group()
def config():
    """Show the settings in force, and their reference.

    \b
    Examples:
      escalate config show
      escalate config reference > docs/settings.md
    """


@config.command("show")
@output_options
@pass_app
def config_show(app, fmt):
    """Show the settings in force (secrets masked) and where they come from.

    \b
    Example:
      escalate config show --format json
    """
    from ..config import config_path
    from ..db import redact_url
    s = app.get_settings().public()
    s["settings_file"] = config_path(app.env) + ("" if s.pop("path") else " (not found; defaults)")
    s["database"] = redact_url(app.db_url)
    render_object({k: (v if not isinstance(v, (tuple, list)) else list(v)) for k, v in s.items()}, fmt)


@config.command("reference")
def config_reference():
    """Print the settings reference (Markdown), generated from the code.

    \b
    Example:
      escalate config reference > docs/settings.md
    """
    from ..config import reference_markdown
    click.echo(reference_markdown(), nl=False)


COMMANDS = [backup, restore, completion, config]
