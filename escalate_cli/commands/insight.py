"""Insight: search, SLA reports and the handling guide."""
import click

from ..output import output_options, render
from .common import pass_app, parse_when

SEARCH_STATUS = click.Choice(["pending", "in_progress", "on_hold", "escalated", "resolved",
                              "open", "all"], case_sensitive=False)


@click.command()
@click.argument("text", nargs=-1, required=True)
@click.option("--status", "statuses", multiple=True, type=SEARCH_STATUS,
              help="Only escalations in these statuses (repeatable; 'open' for every open one; "
                   "default: all).")
@click.option("--limit", type=click.IntRange(1, 1000), default=20, show_default=True)
@output_options
@pass_app
def search(app, text, statuses, limit, fmt):
    """Search escalations, notes and activities, best match first.

    Every word must match (stemmed: "invoices" finds "invoice"); "quoted words" match as a
    phrase; a trailing * matches a prefix. Common words such as "the" are ignored. You only
    find what you may read: internal notes only if you are a manager or a leader.

    \b
    Examples:
      escalate search corrected invoice
      escalate search '"rate increase"' --status open
      escalate search invoic* --format json | jq '.[0].code'
    """
    from .. import domain, fulltext
    chosen = set(s.lower() for s in statuses)
    if "all" in chosen:
        chosen = set()
    if "open" in chosen:
        chosen = (chosen - {"open"}) | set(domain.OPEN_STATUSES)
    hits = fulltext.search(app, " ".join(text), statuses=sorted(chosen) or None, limit=limit)
    zone = app.get_settings().zone
    if fmt == "table":
        rows = [{"rank": h["rank"], "code": h["code"],
                 "status": domain.STATUS_LABEL.get(h["status"], h["status"]),
                 "title": h["title"] if len(h["title"]) <= 36 else h["title"][:35] + "…",
                 "matched": ", ".join(h["matched"]), "snippet": h["snippet"]} for h in hits]
        render(rows, fmt, columns=["rank", "code", "status", "title", "matched", "snippet"],
               empty="No matches.")
        return
    for h in hits:
        h["created_at"] = h["created_at"].astimezone(zone).isoformat()
    columns = ["rank", "score", "code", "title", "status", "created_at", "matched", "snippet"]
    if fmt == "json":
        columns.append("matches")
    render([{c: h[c] for c in columns} for h in hits], fmt, columns=columns,
           empty="No matches.")


@click.command()
@click.option("--since", metavar="DATE",
              help="From this date or time (default: 30 days before --until).")
@click.option("--until", metavar="DATE", help="Up to this date (inclusive) or time (default: now).")
@click.option("--by", type=click.Choice(["category", "pod", "priority", "owner", "account"]),
              help="One row per category, pod, priority, owner or account, plus the total.")
@click.option("--chart", is_flag=True,
              help="Add the weekly SLA-compliance trend (bars; JSON: 'weekly').")
@click.option("--html", "html_file", type=click.Path(dir_okay=False, writable=True), metavar="FILE",
              help="Also write an HTML report with a chart of the weekly trend.")
@output_options
@pass_app
def report(app, since, until, by, chart, html_file, fmt):
    """SLA compliance and times to respond and resolve, for a period.

    Over the escalations created in the period that you may see: counts, open and
    breached now, the share responded to and resolved within SLA, and the median and
    90th percentile time to respond and to resolve. Dates are in the company zone; a
    bare --until date includes that whole day.

    \b
    Examples:
      escalate report --since 2024-11-01 --until 2024-11-30 --by pod
      escalate report --by priority --format csv > sla.csv
      escalate report --since 2024-09-01 --chart
      escalate report --since 2024-09-01 --by category --html sla.html
    """
    import datetime as dt
    from .. import reports
    until_t = _day_end(app, until) if until else app.now
    since_t = parse_when(app, since, "--since") if since else until_t - dt.timedelta(days=30)
    if since_t >= until_t:
        raise click.BadParameter("--since must be before --until", param_hint="--since")
    data = reports.sla_report(app, since_t, until_t, by)
    weeks = reports.weekly_trend(app, since_t, until_t) if (chart or html_file) else None
    if html_file:
        with open(html_file, "w", encoding="utf-8") as fh:
            fh.write(reports.html_report(app, data, weeks))
        click.echo(f"HTML report written to {html_file}", err=True)
    if fmt == "json":
        if weeks is not None and chart:
            data["weekly"] = weeks
        render_json(data)
        return
    rows = data["groups"] + [data["total"]]
    if fmt == "csv":
        render(rows, "csv", columns=["group"] + [k for k in rows[0] if k != "group"])
        return
    render([_table_row(r) for r in rows], "table", columns=list(_table_row(rows[0]).keys()),
           headers=[by or "", "escalations", "open", "breached", "resp SLA", "resol SLA",
                    "med respond", "p90 respond", "med resolve", "p90 resolve"])
    if chart:
        click.echo("")
        click.echo("\n".join(reports.text_chart(weeks)))


def render_json(data):
    import json
    click.echo(json.dumps(data, indent=2, ensure_ascii=False))


def _table_row(r):
    from ..fmt import duration_short

    def share(s):
        return "-" if s is None else f"{s * 100:.0f}%"

    def secs(s):
        return "-" if s is None else duration_short(s)

    return {"group": r["group"], "escalations": str(r["escalations"]), "open": str(r["open"]),
            "breached": str(r["breached_now"]), "resp": share(r["response_within_sla"]),
            "resol": share(r["resolution_within_sla"]),
            "mr": secs(r["median_response_seconds"]), "pr": secs(r["p90_response_seconds"]),
            "ms": secs(r["median_resolution_seconds"]), "ps": secs(r["p90_resolution_seconds"])}


def _day_end(app, text):
    """A bare date means the end of that day (company zone); anything else is a time."""
    import datetime as dt
    import re
    if re.fullmatch(r"\s*\d{4}-\d{2}-\d{2}\s*", text):
        try:
            day = dt.date.fromisoformat(text.strip())
        except ValueError:
            raise click.BadParameter(f"{text!r} is not a date", param_hint="--until")
        zone = app.get_settings().zone
        return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0),
                                   tzinfo=zone).astimezone(dt.timezone.utc)
    return parse_when(app, text, "--until")


@click.command()
@click.option("--category", metavar="CATEGORY", help="Only this category's entries.")
@output_options
@pass_app
def guide(app, category, fmt):
    """The handling guide in force: typical actions and "escalate further if" checks.

    It ships with the package and is edited in the settings file: a [guide.KEY] table
    replaces the fields it names (for example `actions = [...]`), and
    `[insight] guide_file = "/path/guide.toml"` replaces the whole guide.

    \b
    Examples:
      escalate guide
      escalate guide --category "Client Complaint" --format json
    """
    from ..domain import normalise_category
    from ..insight import load_guide
    entries = load_guide(app.get_settings()).entries
    if category:
        wanted = normalise_category(category).lower()
        entries = [e for e in entries if e.category.lower() == wanted]
    rows = [{"key": e.key, "name": e.name, "category": e.category,
             "subcategories": list(e.subcategories), "actions": list(e.actions),
             "escalate_if": [{k: v for k, v in r.items() if not k.startswith("_")}
                             for r in e.escalate_if]} for e in entries]
    if fmt != "table":
        render(rows, fmt, columns=["key", "name", "category", "subcategories", "actions",
                                   "escalate_if"])
        return
    out = []
    for r in rows:
        subs = f" ({', '.join(r['subcategories'])})" if r["subcategories"] else ""
        out.append(f"{r['name']} [{r['key']}] - {r['category']}{subs}")
        out.extend(f"  {i}. {a}" for i, a in enumerate(r["actions"], 1))
        for rule in r["escalate_if"]:
            params = ", ".join(f"{k}={v}" for k, v in rule.items()
                               if k not in ("check", "label", "to", "phrases"))
            out.append(f"  escalate further to {rule.get('to', 'coo').upper()} if: "
                       f"{rule.get('label', rule['check'])} ({rule['check']}"
                       + (f": {params}" if params else "") + ")")
        out.append("")
    click.echo("\n".join(out).rstrip() if out else "No guide entries.")


COMMANDS = [search, report, guide]
