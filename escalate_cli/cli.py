"""The command line: parse, call one service, format. Nothing else lives here.

Exit codes (the contract): 0 success; 1 refused; 2 usage error; 3 not found or no access;
4 conflict. Errors are one line on stderr, never a traceback.
"""
import os
import sys

import click

from . import __version__
from .errors import EscalateError, ExitCode

EPILOG = """\b
Examples:
  escalate init --demo
  ESCALATE_USER=sarah.martinez escalate list
  escalate --as sarah.martinez show ESC-2024-11-28-001
  escalate --as sarah.martinez claim ESC-2024-11-28-001
"""


def _store_error(exc):
    """Translate a driver error into an EscalateError, or None if it is not one we know."""
    from .errors import ConfigError, StoreBusy
    module = type(exc).__module__ or ""
    name = type(exc).__name__
    if not (module.startswith(("peewee", "sqlite3", "psycopg2", "psycopg")) or name == "OperationalError"):
        return None
    text = _first_line(exc) or name
    if "locked" in text or "busy" in text or "lock timeout" in text or "deadlock" in text:
        return StoreBusy()
    if _connection_lost(text):
        # the first error says why (a restart, a kill); the rollback on the dead connection
        # that follows it would only say "connection already closed"
        first = exc
        while first.__context__ is not None and _connection_lost(_first_line(first.__context__)):
            first = first.__context__
        return ConfigError(f"lost the connection to the database ({_redact(_first_line(first))});"
                           f" try again")
    if name in ("OperationalError", "InterfaceError"):
        if "no such table" in text or "does not exist" in text and "relation" in text:
            return ConfigError("the database has no escalate schema yet: run 'escalate init'")
        return ConfigError(f"cannot use the database: {_redact(text)}")
    if name == "DatabaseError" and "not a database" in text:
        return ConfigError("the database file is not a SQLite database (check --db / ESCALATE_DB)")
    if name == "IntegrityError":
        from .errors import Conflict
        return Conflict("the record changed underneath you; look again and retry")
    if name == "DataError":
        from .errors import Refused
        return Refused(f"the database refused a value: {_redact(text)}")
    return None


LOST_CONNECTION = ("connection already closed", "server closed the connection",
                   "terminating connection", "connection not open", "could not receive data",
                   "could not send data", "ssl connection has been closed", "connection reset",
                   "server conn crashed", "the database system is shutting down")


def _first_line(exc):
    text = str(exc).strip()
    return text.splitlines()[0] if text else ""


def _connection_lost(text):
    text = (text or "").lower()
    return any(m in text for m in LOST_CONNECTION)


def _redact(text):
    import re
    return re.sub(r"(password=)\S+", r"\1****", text)


class EscalateGroup(click.Group):
    """Turns domain errors into one stderr line and the contract's exit code."""

    def parse_args(self, ctx, args):
        if any("\x00" in a for a in args):
            raise click.UsageError("arguments cannot contain NUL characters", ctx)
        if any(_not_utf8(a) for a in args):
            raise click.UsageError("arguments must be valid UTF-8 text", ctx)
        return super().parse_args(ctx, args)

    def make_context(self, info_name, args, parent=None, **extra):
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except click.UsageError as exc:
            _usage_fail(exc)

    def invoke(self, ctx):
        try:
            rv = super().invoke(ctx)
            _deliver_urgent(ctx.obj)
            return rv
        except EscalateError as exc:
            _fail(exc.message, exc.exit_code)
        except click.UsageError as exc:
            _usage_fail(exc)
        except (click.exceptions.Exit, click.ClickException, click.Abort, KeyboardInterrupt):
            raise
        except OverflowError:
            _fail("a date or number is out of range", ExitCode.USAGE)
        except BrokenPipeError:
            sys.stderr.close()
            sys.exit(ExitCode.OK)
        except Exception as exc:  # noqa: BLE001 - the last line of defence against tracebacks
            if isinstance(exc, UnicodeDecodeError) or (
                    isinstance(exc, UnicodeEncodeError) and "surrogate" in str(exc)):
                _fail("the input is not valid UTF-8 text", ExitCode.USAGE)
            translated = _store_error(exc)
            if translated is None:
                if os.environ.get("ESCALATE_DEBUG"):
                    raise
                _fail(f"internal error ({type(exc).__name__}): {_redact(str(exc))[:300]}; "
                      f"set ESCALATE_DEBUG=1 for details", ExitCode.REFUSED)
            _fail(translated.message, translated.exit_code)


def _complete_login(ctx, param, incomplete):
    from .commands.common import complete_login
    return complete_login(ctx, param, incomplete)


def one_line(message):
    """A message as one safe line: control and bidi characters shown escaped, never obeyed."""
    import unicodedata
    out = []
    for ch in str(message):
        if ch in "\r\n\t":
            out.append(" ")
        elif unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp", "Cs", "Co"):
            out.append(ch.encode("unicode_escape").decode("ascii"))
        else:
            out.append(ch)
    return "".join(out)


def _deliver_urgent(app):
    """Critical notifications go as the command ends (after its commit); what cannot go now
    stays queued for 'escalate jobs deliver', and the command still succeeds."""
    if app is None or not getattr(app, "urgent", None):
        return
    keys, app.urgent = list(app.urgent), []
    try:
        from .outbox import deliver_keys
        deliver_keys(app, keys)
    except Exception as exc:  # noqa: BLE001 - the change is committed; delivery can wait
        click.echo(f"Warning: urgent notifications stay queued: {type(exc).__name__}", err=True)


def _not_utf8(text):
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:      # undecodable bytes arrive as lone surrogates
        return True
    return False


def _usage_fail(exc):
    """A usage error as one line, with where to look (click prints four)."""
    ctx = getattr(exc, "ctx", None)
    if type(exc).__name__ == "NoArgsIsHelpError" and ctx is not None:
        click.echo(ctx.get_help(), err=True)       # a group alone: its help, as click does
        sys.exit(int(ExitCode.USAGE))
    where = f" See '{ctx.command_path} --help'." if ctx is not None else ""
    message = exc.format_message().rstrip()
    _fail(message + ("" if message.endswith((".", "?", "!")) else ".") + where, ExitCode.USAGE)


def _fail(message, code):
    click.echo(f"Error: {one_line(message)}", err=True)
    sys.exit(int(code))


@click.group(cls=EscalateGroup, epilog=EPILOG, invoke_without_command=True,
             context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="escalate")
@click.option("--db", "db_url", envvar="ESCALATE_DB", metavar="URL",
              help="Database URL: sqlite:///FILE or postgresql://USER@HOST:PORT/DB "
                   "[env ESCALATE_DB; default: a SQLite file in your data folder].")
@click.option("--as", "login", envvar="ESCALATE_USER", metavar="LOGIN",
              help="Act as this user [env ESCALATE_USER; default: your OS login].",
              shell_complete=lambda ctx, param, incomplete: _complete_login(ctx, param, incomplete))
@click.pass_context
def cli(ctx, db_url, login):
    """Handle escalated issues: from the moment a recruiter raises one to its resolution.

    Managers find, claim, investigate and resolve escalations with SLA clocks in business
    time; ICs raise them; cron jobs sweep SLAs, send digests and deliver mail.
    """
    from .context import App
    from .db import prepare
    if login == "" and ctx.get_parameter_source("login") != click.core.ParameterSource.COMMANDLINE:
        login = None            # ESCALATE_USER set but empty: as if unset
    app = App.from_env(db_url=db_url, login=login)
    app.may_create = ctx.invoked_subcommand == "init"
    prepare(app.db_url)
    ctx.obj = app
    ctx.call_on_close(app.close)
    if ctx.invoked_subcommand is None:
        _default_screen(ctx, app)


GETTING_STARTED = """escalate: handle escalated issues from the command line.

Get started:
  escalate init --demo                          # a database with the use case's data
  ESCALATE_USER=sarah.martinez escalate list    # the manager's queue
  escalate --help                               # every command

Or set up your own: escalate init --admin LOGIN --email EMAIL, then escalate user add ..."""


def _default_screen(ctx, app):
    """With no command: the queue when we know who you are, else how to get started."""
    from .errors import EscalateError, NotFound
    try:
        app.actor
    except NotFound:
        if app.login:          # they named someone this store does not know
            raise
        click.echo(GETTING_STARTED)
        ctx.exit(0)
    except EscalateError:
        click.echo(GETTING_STARTED)
        ctx.exit(0)
    except Exception as exc:  # noqa: BLE001 - no database yet is the newcomer's normal case
        if _store_error(exc) is None:
            raise
        click.echo(GETTING_STARTED)
        ctx.exit(0)
    ctx.invoke(cli.commands["list"])


def main(*args, **kwargs):
    return cli.main(*args, **kwargs)


from .commands import register  # noqa: E402  (the commands need ``cli`` defined first)

register(cli)
