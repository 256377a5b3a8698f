"""What every command module shares: the app, text input, times."""
import sys

import click

pass_app = click.pass_obj


def read_text(value, what="text", required=True, editor=True, template=""):
    """TEXT as given; ``-`` reads stdin; nothing opens $EDITOR (when allowed and on a terminal)."""
    if value == "-":
        data = sys.stdin.read()
        return data
    if value is None and editor and sys.stdin.isatty():
        edited = click.edit(template)
        if edited is None or not edited.strip():
            raise click.UsageError(f"Aborted: no {what} written.")
        return edited
    if value is None and required:
        raise click.UsageError(f"Please provide the {what} (or '-' to read it from stdin).")
    return value


def parse_when(app, value, option="--at"):
    """A time a manager types, in the company zone: ISO 8601, 'tomorrow 9am', 'today 17:00'."""
    from ..timeparse import parse_when as _parse
    try:
        return _parse(value, app.get_settings().zone, app.now)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option)


def code_argument(fn):
    return click.argument("code", metavar="CODE")(fn)
