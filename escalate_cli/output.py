"""One output path: rows (dicts) rendered as a table, JSON or CSV."""
import csv
import json
import sys

import click

FORMATS = ("table", "json", "csv")

STYLES = {
    "critical": {"fg": "red", "bold": True}, "high": {"fg": "yellow", "bold": True},
    "medium": {"fg": "cyan"}, "low": {"fg": "green"}, "breach": {"fg": "red", "bold": True},
    "ok": {"fg": "green"}, "muted": {"dim": True}, "heading": {"bold": True},
}


def color_enabled(stream=None):
    """Colour only on a terminal, and never with NO_COLOR set or TERM=dumb."""
    import os
    stream = stream or sys.stdout
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def paint(text, style, enabled=None):
    if not (color_enabled() if enabled is None else enabled) or style not in STYLES:
        return text
    return click.style(text, **STYLES[style])


def page(text):
    """Long output through a pager on a terminal; straight through otherwise."""
    import shutil
    if sys.stdout.isatty() and text.count("\n") + 1 > shutil.get_terminal_size().lines - 1:
        click.echo_via_pager(text, color=color_enabled())
    else:
        click.echo(text, color=color_enabled() or None)


def output_options(fn):
    """Add ``--format table|json|csv`` (table by default) to a read command."""
    return click.option("--format", "fmt", type=click.Choice(FORMATS), default="table",
                        show_default=True, help="Output format.")(fn)


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        return ", ".join(str(v) for v in value)
    return value


def render(rows, fmt, columns=None, headers=None, empty="Nothing to show.", out=None):
    """Write ``rows`` (an iterable of dicts) to ``out`` in ``fmt``."""
    out = out or sys.stdout
    rows = list(rows)
    if fmt == "json":
        out.write(json.dumps(rows, indent=2, ensure_ascii=False, default=str) + "\n")
        return
    columns = columns or (list(rows[0].keys()) if rows else [])
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        for r in rows:
            writer.writerow(["" if r.get(c) is None else
                             (json.dumps(r[c]) if isinstance(r.get(c), (list, dict)) else r.get(c))
                             for c in columns])
        return
    if not rows:
        out.write(empty + "\n")
        return
    from tabulate import tabulate
    colour = color_enabled(out)
    table = [[_styled(c, _cell(r.get(c)), colour) for c in columns] for r in rows]
    text = tabulate(table, headers=headers or columns, tablefmt="simple", disable_numparse=True)
    if out is sys.stdout:
        page(text)
    else:
        out.write(text + "\n")


def _styled(column, value, colour):
    if not colour or not isinstance(value, str):
        return value
    if column == "priority":
        return paint(value, value.lower(), True)
    if column == "sla" and "BREACH" in value:
        return paint(value, "breach", True)
    return value


def render_object(obj, fmt, out=None):
    """A single object: JSON as an object, CSV as one row, table as key/value lines."""
    out = out or sys.stdout
    if fmt == "json":
        out.write(json.dumps(obj, indent=2, ensure_ascii=False, default=str) + "\n")
    elif fmt == "csv":
        render([obj], "csv", out=out)
    else:
        width = max(len(k) for k in obj) if obj else 0
        for k, v in obj.items():
            out.write(f"{k.ljust(width)}  {_cell(v)}\n")


def json_line(obj, out=None):
    (out or sys.stdout).write(json.dumps(obj, ensure_ascii=False, default=str, sort_keys=True) + "\n")
