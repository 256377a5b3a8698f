"""What every command module shares: the app, text input, times."""
import sys

import click

pass_app = click.pass_obj

MAX_ROW_ID = 2 ** 63 - 1                 # the largest id (and count) both stores can hold
ID = click.IntRange(1, MAX_ROW_ID)      # a row id: a bigger number is a usage error, not a crash


def read_text(value, what="text", required=True, editor=True, template=""):
    """TEXT as given; ``-`` reads stdin; nothing opens $EDITOR (when allowed and on a terminal)."""
    if value == "-":
        return _no_nul(sys.stdin.read(), what)
    if value is None and editor and sys.stdin.isatty():
        edited = click.edit(template)
        if edited is None or not edited.strip():
            raise click.UsageError(f"Aborted: no {what} written.")
        return _no_nul(edited, what)
    if value is None and required:
        raise click.UsageError(f"Please provide the {what} (or '-' to read it from stdin).")
    return value


def _no_nul(text, what):
    """NUL reaches no store (PostgreSQL refuses it in text): like in arguments, a usage error."""
    if "\x00" in text:
        raise click.UsageError(f"The {what} contains a NUL character.")
    return text


def parse_when(app, value, option="--at"):
    """A time a manager types, in the company zone: ISO 8601, 'tomorrow 9am', 'today 17:00'."""
    from ..timeparse import parse_when as _parse
    try:
        return _parse(value, app.get_settings().zone, app.now)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option)


def _completion_app(ctx):
    from ..context import App
    root = ctx.find_root()
    return App.from_env(db_url=root.params.get("db_url"), login=root.params.get("login"))


def complete_code(ctx, param, incomplete):
    """Escalation codes the user may see, for shell completion; nothing on any error."""
    try:
        from .. import domain
        from ..models import Escalation
        app = _completion_app(ctx)
        try:
            query = (Escalation.select(Escalation.code)
                     .where(domain.visible_clause(app.actor)
                            & Escalation.code.startswith((incomplete or "").upper()))
                     .order_by(Escalation.id.desc()).limit(50))
            return [row.code for row in query]
        finally:
            app.close()
    except Exception:  # noqa: BLE001 - completion must never break the shell
        return []


def complete_login(ctx, param, incomplete):
    try:
        from ..models import User
        app = _completion_app(ctx)
        try:
            app.db
            return [u.login for u in User.select(User.login).where(
                User.login.startswith(incomplete or "") & (User.active == True)  # noqa: E712
            ).order_by(User.login).limit(100)]
        finally:
            app.close()
    except Exception:  # noqa: BLE001
        return []


def complete_template(ctx, param, incomplete):
    """Templates for the client (``email --template``): the packaged client-* ones and any
    the organisation added to its template folder."""
    try:
        from ..mail import template_names
        return [n for n in template_names(_completion_app(ctx).get_settings(), for_clients=True)
                if n.startswith(incomplete or "")]
    except Exception:  # noqa: BLE001
        return []


def complete_team(ctx, param, incomplete):
    try:
        from ..models import Team
        app = _completion_app(ctx)
        try:
            app.db
            return [t.key for t in Team.select(Team.key).where(
                Team.key.startswith(incomplete or "") & (Team.active == True)  # noqa: E712
            ).order_by(Team.key).limit(100)]
        finally:
            app.close()
    except Exception:  # noqa: BLE001
        return []


def _complete_names(ctx, model, incomplete):
    try:
        app = _completion_app(ctx)
        try:
            app.db
            return [r.name for r in model.select(model.name).where(
                model.name.startswith(incomplete or "")).order_by(model.name).limit(100)]
        finally:
            app.close()
    except Exception:  # noqa: BLE001
        return []


def complete_pod(ctx, param, incomplete):
    from ..models import Pod
    return _complete_names(ctx, Pod, incomplete)


def complete_account(ctx, param, incomplete):
    from ..models import Account
    return _complete_names(ctx, Account, incomplete)


def complete_assignee(ctx, param, incomplete):
    """A task goes to a user or a team: both kinds of name."""
    return complete_team(ctx, param, incomplete) + complete_login(ctx, param, incomplete)


def code_argument(fn):
    return click.argument("code", metavar="CODE", shell_complete=complete_code)(fn)


class DefaultGroup(click.Group):
    """A noun group whose first argument, when it names no verb, goes to a default verb:
    ``escalate task ESC-... --title ...`` is ``escalate task new ESC-... --title ...``.
    Escalation codes (ESC-...) and ids can never collide with the verbs (new, list, done,
    send), so the short form is unambiguous."""

    def __init__(self, *args, default_command=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.default_command = default_command

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ctx.help_option_names:
            args = [self.default_command, *args]
        return super().parse_args(ctx, args)


def key_values(values, option="--var"):
    """('credit=500', 'call_time=9:00 AM') -> {'credit': '500', 'call_time': '9:00 AM'}."""
    import re
    out = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key.strip()):
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint=option)
        out[key.strip()] = value
    return out
