"""Full-text search over escalations and activities, on either store.

Two steps, so that the cost follows what is found, not what is stored:

1. **Matching** is the store's: FTS5 (porter stemmer) on SQLite, a weighted ``tsvector``
   with a GIN index on PostgreSQL (migration 0006). The store hands over the ids of the
   newest matches the user may see, at most a pool of them. Two plans: for someone who
   sees much (leaders, managers of big pods) the index's matches are walked newest first
   and checked for visibility; for someone who sees little (an IC), the few escalations
   they may see are checked against the index. PostgreSQL's planner picks between the
   same two by itself.
2. **Ranking** is BM25F (Okapi BM25 over weighted fields: title 4, category 2,
   description 1, assessment and resolution notes 0.5; activities: subject 2, body 1;
   k1 = 1.2, b = 0.75), computed here over the pool, with document frequencies taken in
   the pool. The stores' own rankings were measured and set aside: FTS5's ``bm25()``
   counts every match of every term to weigh it (0.6 s for a 30-word similarity query at a
   million escalations, and seconds when combined with a visibility filter), and
   PostgreSQL has no BM25 (``ts_rank_cd`` ignores how rare a word is). Ranking the pool in
   Python costs milliseconds, ranks the same on both stores, and BM25 is the standard
   relevance function: rarer words weigh more, repeated words saturate, long texts are
   normalised.

A rare word is ranked over all its matches; a common one over its newest ``POOL`` matches.

Queries are words (all must match, stemmed, English stopwords ignored), "quoted phrases"
and prefixes (``invoic*``); the syntax is never passed to the store raw.
"""
import collections
import functools
import math
import re

import peewee as pw

from .db import is_postgres
from .domain import sees_internal, visible_clause
from .errors import UsageError
from .models import Activity, Escalation

POOL = 500               # newest matches ranked by search
RESTRICTED = 6000        # up to this many visible escalations, match from what the user sees
RESTRICTED_ACTIVITIES = 20000   # ... checking at most this many of their newest activities
RARE = 5000              # PostgreSQL: fewer matches than this are fetched from the GIN index
K1, B = 1.2, 0.75

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
_SUFFIXES = ("ations", "ation", "ings", "ing", "edly", "ied", "ies", "ed", "es", "ly", "s")

ESCALATION_FIELDS = (("title", 4.0), ("category", 2.0), ("description", 1.0),
                     ("assessment", 0.5), ("resolution", 0.5))
PROBLEM_FIELDS = (("title", 4.0), ("category", 2.0), ("description", 1.0))
ACTIVITY_FIELDS = (("subject", 2.0), ("body", 1.0))
PROBLEM_COLUMNS = ("title", "category", "subcategory", "description")


def words(text):
    """Lower-case words of ``text``, without punctuation."""
    return [w.lower() for w in _TOKEN.findall(text or "")]


@functools.lru_cache(maxsize=65536)
def stem(word):
    """A light, consistent English stemmer ("invoices", "invoiced", "invoicing" -> "invoic").

    It only counts what the store's own stemmer already matched, so it need be consistent,
    not linguistically complete.
    """
    w = word.lower()
    for suffix in _SUFFIXES:
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            if suffix == "s" and w.endswith(("ss", "us", "is")):
                break
            w = w[: -len(suffix)] + ("y" if suffix in ("ies", "ied") else "")
            break
    if w.endswith("e") and len(w) > 4:
        w = w[:-1]
    return w


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


# -- step 1: matching ---------------------------------------------------------------------

def _chunks(ids, size=900):
    for i in range(0, len(ids), size):
        yield ids[i:i + size]


def sees_little(app, where=None):
    """The ids of the escalations the user may see (under ``where``), newest first, if they
    see few (at most ``RESTRICTED``); else None.

    The candidates come from one indexed lookup per way of seeing an escalation (reported,
    owned, consulted, in a managed pod), because both planners misjudge the combined OR
    (PostgreSQL guesses half the table for its sub-select) and scan. The domain's
    :func:`~escalate_cli.domain.visible_clause` then has the last word on each id.
    """
    from .domain import managed_pod_ids
    from .models import Consulted
    actor = app.actor
    if actor.role in ("coo", "ceo", "admin"):
        return None
    ways = [Escalation.select(Escalation.id).where(Escalation.reporter == actor.id),
            Escalation.select(Escalation.id).where(Escalation.owner == actor.id),
            Consulted.select(Consulted.escalation).where(Consulted.user == actor.id)]
    if actor.role == "manager":
        pods = managed_pod_ids(actor)
        if pods:
            ways.append(Escalation.select(Escalation.id).where(Escalation.pod.in_(pods)))
    ids = set()
    for query in ways:
        ids.update(row[0] for row in query.limit(RESTRICTED + 1).tuples())
        if len(ids) > RESTRICTED:
            return None
    condition = visible_clause(actor) & (where if where is not None else pw.SQL("1 = 1"))
    kept = []
    for chunk in _chunks(sorted(ids)):
        kept.extend(r[0] for r in Escalation.select(Escalation.id).where(
            Escalation.id.in_(chunk) & condition).tuples())
    return sorted(kept, reverse=True)


def _tsquery(expr):
    return pw.SQL('"t1"."search_tsv" @@ to_tsquery(\'english\', %s)', [expr])


def _pg_newest_first(app, model, expr):
    """ORDER BY for PostgreSQL: newest first, and through the GIN index when matches are rare.

    The planner cannot tell a rare word from a common one (it guesses a few thousand
    matches either way) and walks the primary key backwards, which for a rare word means
    the whole table. A bounded count (a few milliseconds either way) tells, and ``id + 0``
    keeps the planner off that walk.
    """
    table = model._meta.table_name
    n = app.db.execute_sql(
        f'SELECT count(*) FROM (SELECT 1 FROM "{table}" WHERE "search_tsv" @@ '
        f'to_tsquery(\'english\', %s) LIMIT {RARE + 1}) AS "s"', (expr,)).fetchone()[0]
    if n <= RARE:
        return pw.SQL('("t1"."id" + 0) DESC')
    return model.id.desc()


def _check(app, model, expr, ids, pool):
    """Of ``ids`` (rows of ``model``), those matching ``expr``, newest first."""
    found = []
    table = model._meta.table_name
    for chunk in _chunks(ids, 900):
        if is_postgres(app.db):
            query = model.select(model.id).where(model.id.in_(chunk) & _tsquery(expr))
            found.extend(r[0] for r in query.tuples())
        else:
            listed = ",".join(str(int(x)) for x in chunk)
            found.extend(r[0] for r in app.db.execute_sql(
                f'SELECT rowid FROM "{table}_fts" WHERE "{table}_fts" MATCH ? '
                f'AND rowid IN ({listed})', (expr,)))
    return sorted(found, reverse=True)[:pool]


_UNKNOWN = object()


def match_escalations(app, expr, where=None, pool=POOL, few=_UNKNOWN):
    """Ids of the newest escalations the user may see that match ``expr`` (at most ``pool``).

    ``few`` is :func:`sees_little` of ``where`` when the caller has it already.
    """
    few = sees_little(app, where) if few is _UNKNOWN else few
    if few is not None:
        return _check(app, Escalation, expr, few, pool)
    where = where if where is not None else pw.SQL("1 = 1")
    if is_postgres(app.db):
        query = (Escalation.select(Escalation.id)
                 .where(_tsquery(expr) & visible_clause(app.actor) & where)
                 .order_by(_pg_newest_first(app, Escalation, expr)).limit(pool))
        return [r[0] for r in query.tuples()]
    query = (Escalation.select(Escalation.id)
             .from_(pw.SQL('"escalation_fts"'), Escalation)
             .where(pw.SQL('"escalation_fts" MATCH ?', [expr])
                    & pw.SQL('"escalation_fts"."rowid" = "t1"."id"')
                    & visible_clause(app.actor) & where)
             .order_by(pw.SQL('"escalation_fts"."rowid" DESC')).limit(pool))
    return [r[0] for r in query.tuples()]


def match_activities(app, expr, esc_where=None, act_where=None, pool=POOL, few=_UNKNOWN):
    """Ids of the newest activities the user may read that match ``expr``.

    Internal investigation notes only for those who may see them (managers and leaders).
    """
    act_where = act_where if act_where is not None else pw.SQL("1 = 1")
    actor = app.actor
    if not sees_internal(actor):
        act_where = act_where & (Activity.internal == False)  # noqa: E712
    few = sees_little(app, esc_where) if few is _UNKNOWN else few
    if few is not None:
        ids = []
        for chunk in _chunks(few):
            ids.extend(r[0] for r in Activity.select(Activity.id).where(
                Activity.escalation.in_(chunk) & act_where).tuples())
        ids = sorted(ids, reverse=True)[:RESTRICTED_ACTIVITIES]
        return _check(app, Activity, expr, ids, pool)
    esc_where = esc_where if esc_where is not None else pw.SQL("1 = 1")
    allowed = visible_clause(actor) & esc_where & act_where
    if is_postgres(app.db):
        query = (Activity.select(Activity.id)
                 .join(Escalation, on=(Activity.escalation == Escalation.id))
                 .where(_tsquery(expr) & allowed)
                 .order_by(_pg_newest_first(app, Activity, expr)).limit(pool))
        return [r[0] for r in query.tuples()]
    query = (Activity.select(Activity.id)
             .from_(pw.SQL('"activity_fts"'), Activity)
             .join(Escalation, on=(Activity.escalation == Escalation.id))
             .where(pw.SQL('"activity_fts" MATCH ?', [expr])
                    & pw.SQL('"activity_fts"."rowid" = "t1"."id"') & allowed)
             .order_by(pw.SQL('"activity_fts"."rowid" DESC')).limit(pool))
    return [r[0] for r in query.tuples()]


# -- step 2: ranking ----------------------------------------------------------------------

class Matcher:
    """How many times each query term occurs in a text (stemmed words, prefixes, phrases)."""

    def __init__(self, terms):
        self.terms = terms
        self.keys = [(kind, stem(v) if kind == "word" else
                      (tuple(stem(w) for w in v if w not in STOPWORDS) if kind == "phrase"
                       else v)) for kind, v in terms]

    def counts(self, text):
        ws = words(text)
        stems = [stem(w) for w in ws]
        tally = collections.Counter(stems)
        content = [s for w, s in zip(ws, stems) if w not in STOPWORDS]
        out = []
        for kind, key in self.keys:
            if kind == "word":
                out.append(tally[key])
            elif kind == "prefix":
                out.append(sum(1 for w in ws if w.startswith(key)))
            elif not key:
                out.append(0)
            else:
                n = len(key)
                out.append(sum(1 for i in range(len(content) - n + 1)
                               if tuple(content[i:i + n]) == key))
        return out, len(ws)

    def hits(self, word):
        lw = word.lower()
        s = stem(lw)
        for kind, key in self.keys:
            if (kind == "word" and s == key) or (kind == "prefix" and lw.startswith(key)) or \
                    (kind == "phrase" and s in key):
                return True
        return False


def bm25f(docs, terms, fields):
    """``{id: score}`` of ``docs`` (``{id: {field: text}}``) for ``terms``, BM25F.

    Field term frequencies and lengths are weighted and summed before BM25's saturation;
    document frequencies and the average length are those of ``docs``.
    """
    if not docs:
        return {}
    matcher = Matcher(terms)
    stats = {}
    for doc_id, texts in docs.items():
        tf = [0.0] * len(terms)
        length = 0.0
        for name, weight in fields:
            counts, n = matcher.counts(texts.get(name) or "")
            length += weight * n
            for i, c in enumerate(counts):
                tf[i] += weight * c
        stats[doc_id] = (tf, length)
    n_docs = len(docs)
    avg = sum(length for _, length in stats.values()) / n_docs or 1.0
    df = [sum(1 for tf, _ in stats.values() if tf[i] > 0) for i in range(len(terms))]
    idf = [math.log(1 + (n_docs - d + 0.5) / (d + 0.5)) for d in df]
    scores = {}
    for doc_id, (tf, length) in stats.items():
        norm = K1 * (1 - B + B * length / avg)
        scores[doc_id] = sum(idf[i] * t * (K1 + 1) / (t + norm) for i, t in enumerate(tf) if t)
    return scores


def escalation_texts(esc, fields=ESCALATION_FIELDS):
    texts = {"title": esc.title, "category": f"{esc.category} {esc.subcategory or ''}",
             "description": esc.description, "assessment": esc.assessment,
             "resolution": esc.resolution_notes}
    return {name: texts[name] for name, _ in fields}


# -- search -------------------------------------------------------------------------------

ACTIVITY_KINDS = {"email": "email", "call": "call", "meeting": "call", "message": "message",
                  "attachment": "attachment", "info_requested": "message",
                  "escalated": "escalation note"}
NOT_SEARCHED = ("created", "notification")     # they only repeat the title, or say nothing


def search(app, text, statuses=None, limit=20):
    """Escalations matching ``text`` in their own fields, notes or activities, best first.

    One result per escalation the acting user may see: ranked by its best match (BM25F),
    then by how many of its items match, then newest first. Each result is a dict: rank,
    score, code, title, status, created_at, matched (where it matched), snippet (of the best
    match) and matches (every match: kind, field, activity id, snippet, score). Internal
    notes are searched only for those who may read them.
    """
    terms = parse_query(text)
    if not terms:
        raise UsageError("Nothing to search for: give at least one word (common words such as "
                         "'the' are ignored)")
    where = Escalation.status.in_(list(statuses)) if statuses else None
    expr = match_expression(app, terms)
    few = sees_little(app, where)
    esc_ids = match_escalations(app, expr, where=where, few=few)
    act_ids = match_activities(app, expr, esc_where=where,
                               act_where=~Activity.type.in_(list(NOT_SEARCHED)), few=few)
    escs = {e.id: e for e in _escalations(esc_ids)}
    acts = {a.id: a for a in Activity.select().where(Activity.id.in_(act_ids or [-1]))}
    esc_scores = bm25f({i: escalation_texts(escs[i]) for i in esc_ids}, terms, ESCALATION_FIELDS)
    act_scores = bm25f({i: {"subject": acts[i].subject, "body": acts[i].body} for i in act_ids},
                       terms, ACTIVITY_FIELDS)
    matcher = Matcher(terms)
    found = {}
    for esc_id, score in esc_scores.items():
        e = escs[esc_id]
        field, snippet = _snippet([(n, t) for n, t in escalation_texts(e).items()], matcher)
        found.setdefault(esc_id, []).append({"kind": "escalation", "field": field,
                                             "activity_id": None, "snippet": snippet,
                                             "score": score})
    for act_id, score in act_scores.items():
        a = acts[act_id]
        kind = "note" if a.internal else ACTIVITY_KINDS.get(a.type, "activity")
        field, snippet = _snippet([("subject", a.subject), ("body", a.body)], matcher)
        found.setdefault(a.escalation_id, []).append({"kind": kind, "field": field,
                                                      "activity_id": a.id, "snippet": snippet,
                                                      "score": score})
    missing = [i for i in found if i not in escs]
    escs.update({e.id: e for e in _escalations(missing)})
    results = []
    for esc_id, items in found.items():
        e = escs[esc_id]
        items.sort(key=lambda i: (-i["score"], i["activity_id"] or 0))
        for i in items:
            i["score"] = round(i["score"], 4)
        results.append({
            "score": items[0]["score"], "code": e.code, "title": e.title, "status": e.status,
            "created_at": e.created_at,
            "matched": list(dict.fromkeys(
                (i["field"] if i["kind"] == "escalation" else i["kind"]) for i in items)),
            "snippet": items[0]["snippet"], "matches": items})
    results.sort(key=lambda r: (-r["score"], -len(r["matches"]), -r["created_at"].timestamp(),
                                r["code"]))
    results = results[:limit]
    for i, r in enumerate(results, 1):
        r["rank"] = i
    return results


def _escalations(ids):
    if not ids:
        return []
    return list(Escalation.select(
        Escalation.id, Escalation.code, Escalation.title, Escalation.status,
        Escalation.category, Escalation.subcategory, Escalation.description,
        Escalation.assessment, Escalation.resolution_notes, Escalation.created_at).where(
        Escalation.id.in_(list(ids))))


def _snippet(fields, matcher, width=90):
    """(field, text around the first match with [brackets]) of the first field that matches."""
    for name, text in fields:
        if not text:
            continue
        flat = " ".join(text.split())
        marks = [m for m in _TOKEN.finditer(flat) if matcher.hits(m.group(0))]
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
