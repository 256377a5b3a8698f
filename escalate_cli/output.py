"""One output path: rows (dicts) rendered as a table, JSON or CSV."""
import csv
import json
import re
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


_UNSAFE = None


def terminal_safe(text):
    """Text people typed, made harmless for a terminal: control characters (escape sequences
    that would move the cursor, retitle the window or clear the screen; a carriage return
    that would overwrite a line) and bidirectional overrides are shown escaped, never obeyed.
    Line breaks, tabs and colour (SGR) sequences stay."""
    global _UNSAFE
    if _UNSAFE is None:
        import re
        _UNSAFE = re.compile("\x1b\\[[0-9;]*m|[\x00-\x08\x0b-\x1f\x7f-\x9f"
                             "\u202a-\u202e\u2066-\u2069]")
    if text.isascii() and text.isprintable():
        return text
    return _UNSAFE.sub(lambda m: m.group() if len(m.group()) > 1 else
                       m.group().encode("unicode_escape").decode("ascii"), text)


def page(text):
    """Long output through a pager on a terminal; straight through otherwise."""
    import shutil
    text = terminal_safe(text)
    if sys.stdout.isatty() and text.count("\n") + 1 > shutil.get_terminal_size().lines - 1:
        click.echo_via_pager(text, color=color_enabled())
    else:
        click.echo(text, color=color_enabled() or None)


ANSI = re.compile(r"\x1b\[[0-9;]*m")


def strip_ansi(text):
    return ANSI.sub("", text) if "\x1b" in text else text


def display_width(text):
    """Terminal columns: wide characters (emoji, CJK) take two, and so does a character shown
    as an emoji by VS16 ("⚠️"); combining marks and colour codes take none."""
    text = strip_ansi(text)
    if text.isascii():
        return len(text)
    import unicodedata
    width = 0
    for i, ch in enumerate(text):
        if unicodedata.combining(ch) or ch in "\ufe0f\u200d":
            continue
        wide = unicodedata.east_asian_width(ch) in ("W", "F") or text[i + 1:i + 2] == "\ufe0f"
        width += 2 if wide else 1
    return width


def truncate(text, width):
    """``text`` cut to ``width`` columns, ending in an ellipsis when cut."""
    if display_width(text) <= width:
        return text
    text = strip_ansi(text)            # cut colour is re-applied by the renderer
    while text and display_width(text) > width - 1:
        text = text[:-1]
    return text.rstrip() + "…"


GAP = 2                 # columns between two cells of a "simple" table
MIN_WIDTH = 8           # a column is never squeezed narrower than this (or its header)
COMFORT = 20            # before a title is cut shorter than this, optional columns go
# Identifiers, times and states are never cut: a cut code or date is worse than a wrapped line.
WHOLE = {"id", "code", "escalation", "priority", "status", "when", "due", "age", "type",
         "channel", "read", "overdue", "attempts", "created_at", "starts_at", "sent_at",
         "next_attempt_at", "job", "state", "duration", "login", "clock", "action", "at",
         "late", "deliver", "lag", "outcome", "last run", "last success", "schedule", "size",
         "sha256", "content_type"}
# Cells that wrap rather than lose their end (the SLA state ends with its due time).
WRAP = {"sla": 12}


def fit_columns(table, headers, width, keys=None, comfort=None):
    """``(cells, fits)``: cells narrowed to fit ``width`` terminal columns. The widest
    free-text columns (titles, messages, names) give way first, never identifiers or times; a
    cut single-line cell ends in "…", a multi-line cell (an email on the timeline) is wrapped
    instead, so nothing of it is lost. ``fits`` is False when even that is too wide, or when
    a column of ``comfort`` (names) had to be cut below COMFORT columns."""
    import textwrap
    n = len(headers)
    keys = list(keys or headers)

    def natural(i):          # tabulate pads a header by two
        cells = [line for row in table for line in str(row[i]).split("\n")]
        return max([display_width(str(headers[i])) + 2] + [display_width(c) for c in cells])
    natural_widths = [natural(i) for i in range(n)]
    widths = list(natural_widths)
    floor = [widths[i] if keys[i] in WHOLE else
             min(widths[i], max(WRAP.get(keys[i], MIN_WIDTH), display_width(str(headers[i])) + 2))
             for i in range(n)]
    excess = sum(widths) + GAP * (n - 1) - width
    while excess > 0:
        i = max(range(n), key=lambda k: widths[k] - floor[k])
        if widths[i] <= floor[i]:
            break
        others = max((w for k, w in enumerate(widths) if k != i), default=0)
        step = min(excess, widths[i] - floor[i], max(1, widths[i] - others))
        widths[i] -= step
        excess -= step

    def cell(value, width, key=None):
        if not isinstance(value, str) and display_width(str(value)) <= width:
            return value                   # numbers stay numbers (right-aligned)
        text = str(value)
        if "\n" in text or key in WRAP:
            lines = []
            for line in text.split("\n"):
                lines.extend(textwrap.wrap(line, width, break_long_words=True) or [""])
            return "\n".join(lines)
        return truncate(text, width)
    cells = [[cell(row[i], widths[i], keys[i]) if widths[i] < natural_widths[i] else row[i]
              for i in range(n)] for row in table]
    cramped = any(widths[i] < min(natural_widths[i], COMFORT)
                  for i in range(n) if keys[i] in (comfort or ()))
    return cells, excess <= 0 and not cramped


def fit_terminal(table, headers, keys, width, optional=()):
    """Fit a table to the terminal, leaving out the ``optional`` columns (in that order) when
    squeezing is not enough or would cut the other text columns (a title) below COMFORT
    columns: a narrow terminal shows fewer columns, not broken lines or stubs of titles."""
    table, headers, keys = [list(r) for r in table], list(headers), list(keys)
    comfort = [k for k in keys if k not in WHOLE and k not in optional] if optional else ()
    for drop in [None, *optional]:
        if drop is not None and drop in keys:
            i = keys.index(drop)
            for row in table:
                del row[i]
            del headers[i], keys[i]
        fitted, fits = fit_columns(table, headers, width, keys, comfort)
        if fits:
            break
    return fitted, headers, keys


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


FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value):
    """A CSV cell for a spreadsheet: text that a spreadsheet would run as a formula
    (``=HYPERLINK(...)`` typed into a title) is kept as text with a leading quote, as OWASP
    advises; numbers stay numbers."""
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        value = json.dumps(value, ensure_ascii=False)
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def render(rows, fmt, columns=None, headers=None, empty="Nothing to show.", out=None,
           optional=()):
    """Write ``rows`` (an iterable of dicts) to ``out`` in ``fmt``. On a terminal a table
    fits its width (``optional`` columns are left out first when it is narrow)."""
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
            writer.writerow([csv_cell(r.get(c)) for c in columns])
        return
    if not rows:
        out.write(empty + "\n")
        return
    from tabulate import tabulate
    colour = color_enabled(out)
    headers = headers or columns
    table = [[_cell(r.get(c)) for c in columns] for r in rows]
    if _is_terminal(out):
        import shutil
        table, headers, columns = fit_terminal(table, headers, columns,
                                               shutil.get_terminal_size().columns, optional)
    table = [[_styled(c, v, colour) for c, v in zip(columns, row)] for row in table]
    text = tabulate(table, headers=headers, tablefmt="simple", disable_numparse=True)
    if out is sys.stdout:
        page(text)
    else:
        out.write(terminal_safe(text) + "\n")


def _is_terminal(out):
    try:
        return out is sys.stdout and out.isatty()
    except (AttributeError, ValueError):
        return False


def _styled(column, value, colour):
    if not colour or not isinstance(value, str) or "\x1b[" in value:
        return value
    if column == "priority":
        return paint(value, value.lower(), True)
    if column == "sla" and ("breach" in value.lower() or value.startswith("⚠")):
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
            out.write(terminal_safe(f"{k.ljust(width)}  {_cell(v)}") + "\n")


def json_line(obj, out=None):
    (out or sys.stdout).write(json.dumps(obj, ensure_ascii=False, default=str, sort_keys=True) + "\n")
