"""SLA reports, computed in the database.

For the escalations created in a period that the acting user may see, grouped by category,
pod, priority, owner or account:

* ``escalations``, ``open`` (pending, in progress, on hold, escalated) and ``breached_now``
  (open ones past an SLA at the report's "now", as ``escalate list --breached`` says);
* response within SLA: of the escalations whose response is decided (answered, or not
  answered and past due), the share answered by the due time. Answered means claimed or
  assigned, or resolved by the IC before a manager acted;
* resolution within SLA: of those whose resolution is decided (resolved or escalated
  further, or still in progress past due; on hold is undecided), the share resolved or
  escalated by the due time (the due time includes paused time);
* median and 90th percentile wall-clock time to respond and to resolve, interpolated as
  ``percentile_cont`` does (PostgreSQL's own; a window-function equivalent on SQLite).

Shares are fractions (0..1) and times seconds in JSON and CSV; ``None`` when nothing is
decided yet. The weekly trend buckets escalations by the week (Monday, company zone) they
were created in.
"""
import datetime as dt

import peewee as pw

from .db import is_postgres
from .domain import OPEN_STATUSES, visible_clause
from .models import Account, Escalation, Pod, User

GROUPS = ("category", "pod", "priority", "owner", "account")
NONE_LABEL = {"pod": "(no pod)", "owner": "(unowned)", "account": "(no account)",
              "category": "(none)", "priority": "(none)"}


def _group_key(by):
    """(key expression, joins) for ``--by``."""
    if by == "category":
        return Escalation.category, []
    if by == "priority":
        return Escalation.priority, []
    if by == "pod":
        return Pod.name, [(Pod, Escalation.pod == Pod.id)]
    if by == "owner":
        return User.login, [(User, Escalation.owner == User.id)]
    if by == "account":
        return Account.name, [(Account, Escalation.account == Account.id)]
    return pw.Value("all"), []


def _seconds_between(app, later, earlier):
    if is_postgres(app.db):
        return pw.NodeList((pw.SQL("EXTRACT(EPOCH FROM ("), later, pw.SQL("-"), earlier,
                            pw.SQL("))")), glue="")
    return (pw.Cast(pw.fn.strftime("%s", later), "INTEGER")
            - pw.Cast(pw.fn.strftime("%s", earlier), "INTEGER"))


def _definitions(now_db):
    E = Escalation
    by_ic = E.resolved_by_ic == True  # noqa: E712
    response_at = pw.fn.COALESCE(E.claimed_at, pw.Case(None, [(by_ic, E.resolved_at)], None))
    resolution_end = pw.fn.COALESCE(E.escalated_at,
                                    pw.Case(None, [(E.status == "resolved", E.resolved_at)], None))
    is_open = E.status.in_(list(OPEN_STATUSES))
    breached = is_open & (
        (E.response_due < pw.fn.COALESCE(response_at, now_db))
        | (E.status.in_(["pending", "in_progress"]) & (E.resolution_due < now_db))
        | ((E.status == "escalated") & (E.escalated_at > E.resolution_due)))
    resp_decided = response_at.is_null(False) | (E.response_due < now_db)
    resp_met = response_at.is_null(False) & (E.response_due.is_null()
                                              | (response_at <= E.response_due))
    res_decided = resolution_end.is_null(False) | (
        E.status.in_(["pending", "in_progress"]) & (E.resolution_due < now_db))
    res_met = resolution_end.is_null(False) & (E.resolution_due.is_null()
                                               | (resolution_end <= E.resolution_due))
    return {
        "response_at": response_at, "is_open": is_open, "breached": breached,
        "resp_decided": resp_decided, "resp_met": resp_met,
        "res_decided": res_decided, "res_met": res_met,
    }


def _count(cond):
    return pw.fn.SUM(pw.Case(None, [(cond, 1)], 0))


def _base(app, since, until, key, joins, columns):
    query = Escalation.select(key.alias("g"), *columns)
    for model, on in joins:
        query = query.join(model, pw.JOIN.LEFT_OUTER, on=on).switch(Escalation)
    return query.where(visible_clause(app.actor) & (Escalation.created_at >= since)
                       & (Escalation.created_at < until))


def _flag(cond):
    return pw.Case(None, [(cond, 1)], 0)


GROUP_COLUMN = {True: '"g"', False: "NULL"}
FLAGS = ("is_open", "breached", "resp_decided", "resp_met", "resolved", "res_decided",
         "res_met")


def _per_row(app, since, until, by):
    """One row per escalation of the period: group, flags (0/1) and durations (seconds)."""
    key, joins = _group_key(by)
    d = _definitions(Escalation.created_at.db_value(app.now))
    d["resolved"] = Escalation.status == "resolved"
    columns = [Escalation.priority_rank.alias("rank")]
    columns += [_flag(d[name]).alias(name) for name in FLAGS]
    columns += [_seconds_between(app, d["response_at"], Escalation.created_at).alias("resp_x"),
                pw.Case(None, [(Escalation.status == "resolved", Escalation.resolution_seconds)],
                        None).alias("res_x")]
    return _base(app, since, until, key, joins, columns)


def _aggregate(app, since, until, by):
    """``[(is_total, group, counts..., percentiles...)]`` in one statement, one table read.

    PostgreSQL: one GROUP BY with grouping sets and ``percentile_cont``. SQLite: the period's
    rows materialised once, counted, and their percentiles interpolated as
    ``percentile_cont`` does (window functions: position p * (n - 1) between two ranks).
    """
    sql, params = _per_row(app, since, until, by).sql()
    sums = ", ".join(f'SUM("{f}")' for f in FLAGS)
    if is_postgres(app.db):
        pct = ", ".join(f'percentile_cont({p}) WITHIN GROUP (ORDER BY "{x}")'
                        for x in ("resp_x", "res_x") for p in (0.5, 0.9))
        grouping = 'GROUPING SETS (("g"), ())' if by else "()"
        total = 'GROUPING("g")' if by else "1"
        g = '"g"' if by else "NULL"
        query = (f'SELECT {total}, {g}, COUNT(*), {sums}, MIN("rank"), {pct} '
                 f'FROM ({sql}) AS "d" GROUP BY {grouping}')
        return app.db.execute_sql(query, params).fetchall()
    import sqlite3
    materialized = "MATERIALIZED " if sqlite3.sqlite_version_info >= (3, 35) else ""

    def interpolated(p):
        pos = f'({p} * ("n" - 1))'
        lo = f"CAST({pos} AS INTEGER)"
        return (f'SUM(CASE WHEN "i" = {lo} THEN "x" * (1 - ({pos} - {lo})) '
                f'WHEN "i" = {lo} + 1 THEN "x" * ({pos} - {lo}) ELSE 0 END)')

    def percentiles(x, per_group):
        part = 'PARTITION BY "g" ' if per_group else ""
        g = GROUP_COLUMN[per_group]
        return (f'SELECT {0 if per_group else 1} AS "t", {g} AS "g", {interpolated(0.5)} AS "p50", '
                f'{interpolated(0.9)} AS "p90" FROM (SELECT "g", "{x}" AS "x", '
                f'ROW_NUMBER() OVER ({part}ORDER BY "{x}") - 1 AS "i", '
                f'COUNT(*) OVER ({part.strip()}) AS "n" FROM "d" WHERE "{x}" IS NOT NULL)'
                + (' GROUP BY "g"' if per_group else ""))

    levels = [False, True] if by else [False]
    counts = " UNION ALL ".join(
        f'SELECT {0 if per_group else 1} AS "t", {GROUP_COLUMN[per_group]} AS "g", '
        f'COUNT(*) AS "n", {sums}, MIN("rank") AS "rank" FROM "d"'
        + (' GROUP BY "g"' if per_group else "") for per_group in levels)
    p1 = " UNION ALL ".join(percentiles("resp_x", per_group) for per_group in levels)
    p2 = " UNION ALL ".join(percentiles("res_x", per_group) for per_group in levels)
    query = (f'WITH "d" AS {materialized}({sql}), "c" AS ({counts}), "p1" AS ({p1}), '
             f'"p2" AS ({p2}) '
             f'SELECT "c".*, "p1"."p50", "p1"."p90", "p2"."p50", "p2"."p90" FROM "c" '
             f'LEFT JOIN "p1" ON "p1"."t" = "c"."t" AND "p1"."g" IS "c"."g" '
             f'LEFT JOIN "p2" ON "p2"."t" = "c"."t" AND "p2"."g" IS "c"."g"')
    return app.db.execute_sql(query, params).fetchall()


def _rows(app, since, until, by):
    """(group rows, total row) of the report."""
    groups, total = [], None
    for rec in _aggregate(app, since, until, by):
        is_total, g, n = rec[0], rec[1], rec[2]
        (is_open, breached, rd, rm, resolved, sd, sm), rank = rec[3:10], rec[10]
        r_med, r_p90, s_med, s_p90 = rec[11:15]
        row = {
            "group": g if g is not None else NONE_LABEL.get(by, "(none)"),
            "escalations": int(n), "open": int(is_open or 0),
            "breached_now": int(breached or 0),
            "response_decided": int(rd or 0), "response_met": int(rm or 0),
            "response_within_sla": _share(rm, rd),
            "resolved": int(resolved or 0),
            "resolution_decided": int(sd or 0), "resolution_met": int(sm or 0),
            "resolution_within_sla": _share(sm, sd),
            "median_response_seconds": _secs(r_med), "p90_response_seconds": _secs(r_p90),
            "median_resolution_seconds": _secs(s_med), "p90_resolution_seconds": _secs(s_p90),
        }
        if is_total:
            total = row
        else:
            groups.append((rank, row))
    if by == "priority":
        groups.sort(key=lambda rr: rr[0])
    else:
        groups.sort(key=lambda rr: (rr[1]["group"].startswith("("), rr[1]["group"].lower()))
    return [row for _, row in groups], total


def _share(met, decided):
    decided = int(decided or 0)
    return round(int(met or 0) / decided, 4) if decided else None


def _secs(value):
    return None if value is None else int(round(float(value)))


def sla_report(app, since, until, by=None):
    """The report as a dict: period, grouping, one row per group and the total."""
    if by is not None and by not in GROUPS:
        raise ValueError(by)
    zone = app.get_settings().zone
    groups, total = _rows(app, since, until, by)
    if total is None or total["escalations"] == 0:
        total = _empty_row()
    total["group"] = "TOTAL" if by else "all"
    return {"since": since.astimezone(zone).isoformat(),
            "until": until.astimezone(zone).isoformat(), "by": by, "groups": groups,
            "total": total}


def _empty_row():
    return {"escalations": 0, "open": 0, "breached_now": 0, "response_decided": 0,
            "response_met": 0, "response_within_sla": None, "resolved": 0,
            "resolution_decided": 0, "resolution_met": 0, "resolution_within_sla": None,
            "median_response_seconds": None, "p90_response_seconds": None,
            "median_resolution_seconds": None, "p90_resolution_seconds": None}


# -- the weekly trend ---------------------------------------------------------------------

def week_starts(since, until, zone):
    """Monday 00:00 (company zone) of every week overlapping [since, until), as UTC."""
    day = since.astimezone(zone).date()
    monday = day - dt.timedelta(days=day.weekday())
    out = []
    while True:
        start = dt.datetime.combine(monday, dt.time(0), tzinfo=zone).astimezone(dt.timezone.utc)
        if start >= until:
            break
        out.append(start)
        monday += dt.timedelta(days=7)
    return out


def weekly_trend(app, since, until):
    """One row per week: escalations created in it and their SLA compliance."""
    zone = app.get_settings().zone
    starts = week_starts(since, until, zone)
    if not starts:
        return []
    week = pw.Case(None, [(Escalation.created_at < s, i - 1) for i, s in enumerate(starts[1:], 1)],
                   len(starts) - 1)
    d = _definitions(Escalation.created_at.db_value(app.now))
    query = _base(app, since, until, week, [], [
        pw.fn.COUNT(Escalation.id).alias("n"),
        _count(d["resp_decided"]).alias("rd"), _count(d["resp_met"]).alias("rm"),
        _count(d["res_decided"]).alias("sd"), _count(d["res_met"]).alias("sm"),
    ]).group_by(week).dicts()
    found = {row["g"]: row for row in query}
    rows = []
    for i, start in enumerate(starts):
        row = found.get(i, {})
        rows.append({"week": start.astimezone(zone).date().isoformat(),
                     "escalations": int(row.get("n") or 0),
                     "response_within_sla": _share(row.get("rm"), row.get("rd")),
                     "resolution_within_sla": _share(row.get("sm"), row.get("sd"))})
    return rows


def text_chart(weeks, width=20):
    """The weekly trend as bars a terminal shows."""
    lines = ["SLA compliance by week (escalations created that week)",
             f"{'week of':<11} {'n':>4}  {'response':<{width + 6}} resolution"]

    def bar(share):
        if share is None:
            return f"{'-':<{width}}    -"
        filled = int(round(share * width))
        return "█" * filled + "░" * (width - filled) + f" {share * 100:3.0f}%"

    for w in weeks:
        lines.append(f"{w['week']:<11} {w['escalations']:>4}  {bar(w['response_within_sla'])}  "
                     f"{bar(w['resolution_within_sla'])}")
    return lines


def svg_chart(weeks, width=640, height=220, pad=36):
    """An inline SVG line chart of the weekly shares (no scripts, no external files)."""
    if not weeks:
        return ""
    n = len(weeks)
    step = (width - 2 * pad) / max(1, n - 1)

    def xy(i, share):
        return pad + i * step, height - pad - share * (height - 2 * pad)

    def path(key):
        points, parts = [], []
        for i, w in enumerate(weeks):
            if w[key] is None:
                continue
            x, y = xy(i, w[key])
            parts.append(f"{'M' if not parts else 'L'}{x:.1f},{y:.1f}")
            points.append((x, y, w[key]))
        return " ".join(parts), points

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'role="img" aria-label="SLA compliance by week">']
    for share in (0, 0.5, 1):
        _, y = xy(0, share)
        out.append(f'<line x1="{pad}" y1="{y:.1f}" x2="{width - pad}" y2="{y:.1f}" '
                   f'stroke="#ddd"/><text x="4" y="{y + 4:.1f}" font-size="11">'
                   f'{share * 100:.0f}%</text>')
    for i, w in enumerate(weeks):
        x, _ = xy(i, 0)
        out.append(f'<text x="{x:.1f}" y="{height - 8}" font-size="10" text-anchor="middle">'
                   f'{w["week"][5:]}</text>')
    for key, colour in (("response_within_sla", "#1f77b4"), ("resolution_within_sla", "#d62728")):
        d, points = path(key)
        if d:
            out.append(f'<path d="{d}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for x, y, share in points:
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3" fill="{colour}">'
                       f'<title>{share * 100:.0f}%</title></circle>')
    out.append("</svg>")
    return "\n".join(out)


def html_report(app, report, weeks):
    """The report as one self-contained HTML page (template ``report.html.j2``)."""
    from jinja2 import Environment, PackageLoader, select_autoescape
    from markupsafe import Markup
    env = Environment(loader=PackageLoader("escalate_templates", ""),
                      autoescape=select_autoescape(["html", "j2"]))
    return env.get_template("report.html.j2").render(
        company=app.get_settings().company, report=report, weeks=weeks,
        chart=Markup(svg_chart(weeks)), rows=report["groups"] + [report["total"]],
        fmt_share=lambda s: "-" if s is None else f"{s * 100:.0f}%",
        fmt_secs=lambda s: "-" if s is None else _duration(s))


def _duration(seconds):
    from .fmt import duration_short
    return duration_short(seconds)
