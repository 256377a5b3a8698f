"""Full-text search over escalations and activities, on either store.

Ranking uses what each store does best, over the indexes of migration 0006:

* SQLite: FTS5 with the porter stemmer, ranked by ``bm25`` (Okapi BM25: term frequency
  saturates, rare terms weigh more, long documents are normalised) with column weights
  title 10, category and subcategory 4, description 2, assessment and resolution 1.
* PostgreSQL: a stored, weighted ``tsvector`` (title A, category B, description C,
  assessment and resolution D) with a GIN index, ranked by ``ts_rank_cd`` (cover density:
  matching terms that occur close together score higher), weights {D, C, B, A}.

BM25 and cover density are both term-weighted relevance rankings computed inside the store,
next to the inverted index, so nothing is shipped to Python but the winners. Cost is bounded
at a million rows: matches are walked newest first (the index hands them over in id order)
and only the most recent ``POOL`` matches the user may see are ranked; a rare term matches
few rows and is ranked in full, a common one ranks its recent matches.

Queries are words (all must match, stemmed, English stopwords ignored), "quoted phrases"
and prefixes (``invoic*``).
"""
import re

import peewee as pw

from .db import is_postgres
from .domain import sees_internal, visible_clause
from .errors import UsageError
from .models import Activity, Escalation

POOL = 2000

# PostgreSQL's english.stop, so that both stores ignore the same words.
STOPWORDS = frozenset("""
i me my myself we our ours ourselves you your yours yourself yourselves he him his himself
she her hers herself it its itself they them their theirs themselves what which who whom
this that these those am is are was were be been being have has had having do does did
doing a an the and but if or because as until while of at by for with about against between
into through during before after above below to from up down in out on off over under again
further then once here there when where why how all any both each few more most other some
such no nor not only own same so than too very s t can will just don should now
""".split())

_TOKEN = re.compile(r"[^\W_]+")
_PART = re.compile(r'"([^"]*)"?|(\S+)')

# column weights, in the order of the FTS5 columns / the tsvector labels {D, C, B, A}
_BM25_ALL = "10.0, 4.0, 4.0, 2.0, 1.0, 1.0"
_PG_ALL = "{0.1, 0.2, 0.4, 1.0}"
_BM25_PROBLEM = "10.0, 4.0, 4.0, 2.0, 0.0, 0.0"    # similarity: what happened, not what was done
_PG_PROBLEM = "{0.0, 0.2, 0.4, 1.0}"


def words(text):
    """Lower-case words of ``text``, without punctuation."""
    return [w.lower() for w in _TOKEN.findall(text or "")]


def parse_query(text):
    """``[(kind, value)]`` with kind word, prefix or phrase; stopwords dropped."""
    terms = []
    for quoted, bare in _PART.findall(text or ""):
        if quoted:
            ws = words(quoted)
            if len(ws) == 1 and ws[0] not in STOPWORDS:
                terms.append(("word", ws[0]))
            elif len(ws) > 1:
                terms.append(("phrase", ws))
            continue
        prefix = bare.endswith("*")
        ws = [w for w in words(bare) if w not in STOPWORDS]
        for i, w in enumerate(ws):
            terms.append(("prefix" if prefix and i == len(ws) - 1 else "word", w))
    return terms


PROBLEM_COLUMNS = ("title", "category", "subcategory", "description")


def match_expression(app, terms, any_=False, problem_only=False):
    """The store's query text for ``terms``: FTS5 MATCH syntax or a to_tsquery string.

    ``any_`` ORs the terms (similarity) instead of ANDing them (search); ``problem_only``
    matches title, category and description only, not assessment and resolution.
    """
    pg = is_postgres(app.db)
    labels = "ABC" if problem_only else ""
    parts = []
    for kind, value in terms:
        if pg:
            if kind == "phrase":
                parts.append("(" + " <-> ".join(f"{w}:{labels}" if labels else w
                                                for w in value) + ")")
            elif kind == "prefix":
                parts.append(f"{value}:*{labels}")
            else:
                parts.append(f"{value}:{labels}" if labels else value)
        elif kind == "phrase":
            parts.append('"' + " ".join(value) + '"')
        elif kind == "prefix":
            parts.append(f'"{value}" *')
        else:
            parts.append(f'"{value}"')
    if pg:
        return (" | " if any_ else " & ").join(parts)
    expr = (" OR " if any_ else " AND ").join(parts)
    if problem_only:
        expr = "{" + " ".join(PROBLEM_COLUMNS) + "} : (" + expr + ")"
    return expr


def rank_escalations(app, expr, where=None, weights="all", pool=POOL, limit=20):
    """``[(escalation id, score)]`` best first: visible escalations matching ``expr``."""
    where = where if where is not None else pw.SQL("1 = 1")
    visible = visible_clause(app.actor)
    if is_postgres(app.db):
        w = _PG_ALL if weights == "all" else _PG_PROBLEM
        inner = (Escalation.select(Escalation.id, pw.SQL('"t1"."search_tsv"').alias("tsv"))
                 .where(pw.SQL('"t1"."search_tsv" @@ to_tsquery(\'english\', %s)', [expr])
                        & visible & where)
                 .order_by(Escalation.id.desc()).limit(pool))
        sql, params = inner.sql()
        outer = (f'SELECT "id", ts_rank_cd(\'{w}\', "tsv", to_tsquery(\'english\', %s)) AS "rank" '
                 f'FROM ({sql}) AS "p" ORDER BY "rank" DESC, "id" DESC LIMIT {int(limit)}')
        rows = app.db.execute_sql(outer, [expr] + list(params)).fetchall()
    else:
        w = _BM25_ALL if weights == "all" else _BM25_PROBLEM
        inner = (Escalation.select(Escalation.id,
                                   pw.SQL(f'-bm25("escalation_fts", {w})').alias("rank"))
                 .from_(pw.SQL('"escalation_fts"'), Escalation)
                 .where(pw.SQL('"escalation_fts" MATCH ?', [expr])
                        & pw.SQL('"escalation_fts"."rowid" = "t1"."id"') & visible & where)
                 .order_by(pw.SQL('"escalation_fts"."rowid" DESC')).limit(pool))
        sql, params = inner.sql()
        outer = (f'SELECT "id", "rank" FROM ({sql}) AS "p" '
                 f'ORDER BY "rank" DESC, "id" DESC LIMIT {int(limit)}')
        rows = app.db.execute_sql(outer, params).fetchall()
    return [(r[0], float(r[1])) for r in rows]


def rank_activities(app, expr, where=None, pool=POOL, limit=20):
    """``[(activity id, score)]`` best first: activities the user may read matching ``expr``.

    Internal investigation notes only for those who may see them (managers and leaders).
    """
    where = where if where is not None else pw.SQL("1 = 1")
    actor = app.actor
    allowed = visible_clause(actor)
    if not sees_internal(actor):
        allowed = allowed & (Activity.internal == False)  # noqa: E712
    if is_postgres(app.db):
        inner = (Activity.select(Activity.id, pw.SQL('"t1"."search_tsv"').alias("tsv"))
                 .join(Escalation, on=(Activity.escalation == Escalation.id))
                 .where(pw.SQL('"t1"."search_tsv" @@ to_tsquery(\'english\', %s)', [expr])
                        & allowed & where)
                 .order_by(Activity.id.desc()).limit(pool))
        sql, params = inner.sql()
        outer = (f'SELECT "id", ts_rank_cd(\'{_PG_ALL}\', "tsv", to_tsquery(\'english\', %s)) '
                 f'AS "rank" FROM ({sql}) AS "p" ORDER BY "rank" DESC, "id" DESC '
                 f'LIMIT {int(limit)}')
        rows = app.db.execute_sql(outer, [expr] + list(params)).fetchall()
    else:
        rank = pw.SQL('-bm25("activity_fts", 4.0, 1.0)')
        inner = (Activity.select(Activity.id, rank.alias("rank"))
                 .from_(pw.SQL('"activity_fts"'), Activity)
                 .join(Escalation, on=(Activity.escalation == Escalation.id))
                 .where(pw.SQL('"activity_fts" MATCH ?', [expr])
                        & pw.SQL('"activity_fts"."rowid" = "t1"."id"') & allowed & where)
                 .order_by(pw.SQL('"activity_fts"."rowid" DESC')).limit(pool))
        sql, params = inner.sql()
        outer = (f'SELECT "id", "rank" FROM ({sql}) AS "p" '
                 f'ORDER BY "rank" DESC, "id" DESC LIMIT {int(limit)}')
        rows = app.db.execute_sql(outer, params).fetchall()
    return [(r[0], float(r[1])) for r in rows]


# -- search -------------------------------------------------------------------------------

ACTIVITY_KINDS = {"email": "email", "call": "call", "meeting": "call", "message": "message",
                  "attachment": "attachment", "info_requested": "message",
                  "escalated": "escalation note"}
NOT_SEARCHED = ("created", "notification")     # they only repeat the title, or say nothing


def search(app, text, statuses=None, limit=20):
    """Escalations matching ``text`` in their own fields, notes or activities, best first.

    One result per escalation the acting user may see: ranked by its best match (store
    relevance), then by how many of its items match, then newest first. Each result is a
    dict: rank, score, code, title, status, created_at, matched (the kinds that matched),
    snippet (of the best match) and matches (every match: kind, field, activity id,
    snippet, score). Internal notes are searched only for those who may read them.
    """
    terms = parse_query(text)
    if not terms:
        raise UsageError("Nothing to search for: give at least one word (common words such as "
                         "'the' are ignored)")
    where = Escalation.status.in_(list(statuses)) if statuses else None
    expr = match_expression(app, terms)
    esc_ranked = rank_escalations(app, expr, where=where, limit=limit)
    act_where = ~Activity.type.in_(list(NOT_SEARCHED))
    if where is not None:
        act_where = act_where & where
    act_ranked = rank_activities(app, expr, where=act_where, limit=limit * 5)
    acts = {a.id: a for a in Activity.select().where(
        Activity.id.in_([i for i, _ in act_ranked] or [-1]))}
    matches = {}
    for esc_id, score in esc_ranked:
        matches.setdefault(esc_id, []).append(("escalation", None, score))
    for act_id, score in act_ranked:
        matches.setdefault(acts[act_id].escalation_id, []).append(("activity", acts[act_id], score))
    escs = {e.id: e for e in Escalation.select(
        Escalation.id, Escalation.code, Escalation.title, Escalation.status,
        Escalation.category, Escalation.subcategory, Escalation.description,
        Escalation.assessment, Escalation.resolution_notes, Escalation.created_at).where(
        Escalation.id.in_(list(matches) or [-1]))}
    results = []
    for esc_id, found in matches.items():
        e = escs[esc_id]
        items = []
        for what, act, score in sorted(found, key=lambda f: -f[2]):
            if act is None:
                field, snippet = _snippet(
                    [("title", e.title), ("category", f"{e.category} {e.subcategory or ''}"),
                     ("description", e.description), ("assessment", e.assessment),
                     ("resolution", e.resolution_notes)], terms)
                items.append({"kind": "escalation", "field": field, "activity_id": None,
                              "snippet": snippet, "score": round(score, 4)})
            else:
                kind = "note" if act.internal else ACTIVITY_KINDS.get(act.type, "activity")
                field, snippet = _snippet([("subject", act.subject), ("body", act.body)], terms)
                items.append({"kind": kind, "field": field, "activity_id": act.id,
                              "snippet": snippet, "score": round(score, 4)})
        best = items[0]
        results.append({
            "score": best["score"], "code": e.code, "title": e.title, "status": e.status,
            "created_at": e.created_at,
            "matched": list(dict.fromkeys(
                (i["field"] if i["kind"] == "escalation" else i["kind"]) for i in items)),
            "snippet": best["snippet"], "matches": items})
    results.sort(key=lambda r: (-r["score"], -len(r["matches"]), -r["created_at"].timestamp(),
                                r["code"]))
    results = results[:limit]
    for i, r in enumerate(results, 1):
        r["rank"] = i
    return results


def stem(word):
    """A crude suffix stripper, only to highlight what the store's stemmer matched."""
    for suffix in ("ations", "ation", "ings", "ing", "edly", "ed", "ies", "es", "s", "ly"):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)]
    return word


def _snippet(fields, terms, width=90):
    """(field, text around the first match with [brackets]) of the first field that matches."""
    wanted = set()
    prefixes = []
    for kind, value in terms:
        if kind == "prefix":
            prefixes.append(value)
        for w in (value if kind == "phrase" else [value]):
            wanted.add(stem(w))

    def hit(word):
        lw = word.lower()
        return stem(lw) in wanted or any(lw.startswith(p) for p in prefixes)

    for name, text in fields:
        if not text:
            continue
        flat = " ".join(text.split())
        marks = [m for m in _TOKEN.finditer(flat) if hit(m.group(0))]
        if not marks:
            continue
        start = max(0, marks[0].start() - width // 3)
        if start:
            space = flat.find(" ", start)
            start = space + 1 if 0 <= space < marks[0].start() else start
        end = min(len(flat), start + width)
        out, pos = [], start
        for m in marks:
            if m.start() < start or m.end() > end:
                continue
            out.append(flat[pos:m.start()] + "[" + m.group(0) + "]")
            pos = m.end()
        out.append(flat[pos:end])
        return name, ("…" if start else "") + "".join(out) + ("…" if end < len(flat) else "")
    return fields[0][0], (fields[0][1] or "")[:width]
