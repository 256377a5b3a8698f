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
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else name
    if "locked" in text or "busy" in text:
        return StoreBusy()
    if name in ("OperationalError", "InterfaceError"):
        if "no such table" in text or "does not exist" in text and "relation" in text:
            return ConfigError("the database has no escalate schema yet: run 'escalate init'")
        return ConfigError(f"cannot use the database: {_redact(text)}")
    if name == "IntegrityError":
        from .errors import Conflict
        return Conflict("the record changed underneath you; look again and retry")
    if name == "DataError":
        from .errors import Refused
        return Refused(f"the database refused a value: {_redact(text)}")
    return None


def _redact(text):
    import re
    return re.sub(r"(password=)\S+", r"\1****", text)


class EscalateGroup(click.Group):
    """Turns domain errors into one stderr line and the contract's exit code."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except EscalateError as exc:
            _fail(exc.message, exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort, KeyboardInterrupt):
            raise
        except BrokenPipeError:
            sys.stderr.close()
            sys.exit(ExitCode.OK)
        except Exception as exc:  # noqa: BLE001 - the last line of defence against tracebacks
            translated = _store_error(exc)
            if translated is None:
                if os.environ.get("ESCALATE_DEBUG"):
                    raise
                _fail(f"internal error ({type(exc).__name__}): {_redact(str(exc))[:300]}; "
                      f"set ESCALATE_DEBUG=1 for details", ExitCode.REFUSED)
            _fail(translated.message, translated.exit_code)


def _fail(message, code):
    message = " ".join(str(message).split()) if "\n" in str(message) else str(message)
    click.echo(f"Error: {message}", err=True)
    sys.exit(int(code))


@click.group(cls=EscalateGroup, epilog=EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="escalate")
@click.option("--db", "db_url", envvar="ESCALATE_DB", metavar="URL",
              help="Database URL: sqlite:///FILE or postgresql://USER@HOST:PORT/DB "
                   "[env ESCALATE_DB; default: a SQLite file in your data folder].")
@click.option("--as", "login", envvar="ESCALATE_USER", metavar="LOGIN",
              help="Act as this user [env ESCALATE_USER; default: your OS login].")
@click.pass_context
def cli(ctx, db_url, login):
    """Handle escalated issues: from the moment a recruiter raises one to its resolution.

    Managers find, claim, investigate and resolve escalations with SLA clocks in business
    time; ICs raise them; cron jobs sweep SLAs, send digests and deliver mail.
    """
    from .context import App
    from .db import prepare
    app = App.from_env(db_url=db_url, login=login)
    prepare(app.db_url)
    ctx.obj = app
    ctx.call_on_close(app.close)


def main(*args, **kwargs):
    return cli.main(*args, **kwargs)


from .commands import register  # noqa: E402  (the commands need ``cli`` defined first)

register(cli)
