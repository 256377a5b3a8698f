"""One output path: rows (dicts) rendered as a table, JSON or CSV."""
import csv
import json
import sys

import click

FORMATS = ("table", "json", "csv")


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
    table = [[_cell(r.get(c)) for c in columns] for r in rows]
    out.write(tabulate(table, headers=headers or columns, tablefmt="simple",
                       disable_numparse=True) + "\n")


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
