"""Recommended actions: the handling guide, what resolved similar escalations, and when to
escalate further.

:func:`recommend` is what the detail screen's RECOMMENDED ACTIONS panel shows:

1. the "escalate further if..." checks of the escalation's guide entry that fire (only while
   the escalation is open), each with the ``escalate escalate`` command to run and why;
2. the typical actions of its guide entry (``guide.toml``, editable: see that file);
3. what resolved the most similar resolved escalations, each citing that escalation's code.

Similarity: the store's full-text index finds the resolved escalations the viewer may see
that share words with this one's title, category and description; BM25F ranks them
(:mod:`escalate_cli.fulltext` says how and why). Everything a check reads is what the viewer
may read: internal notes count only for those who see them.
"""
import re
import shlex
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from .errors import ConfigError

OPEN_FOR_CHECKS = ("pending", "in_progress", "on_hold")
CHECKS = ("refund_over", "percent_over", "negative_margin", "phrases", "clients_affected")
SIMILAR = 3              # resolved escalations cited
SIMILAR_POOL = 500       # newest matching resolved escalations ranked for similarity
ACTIONS_PER_SIMILAR = 2
# A similar escalation shares this many descriptive words (more across categories), and
# scores at least this share of the best one: a stray common word is not similarity.
MIN_SHARED_WORDS = 2
MIN_SHARED_WORDS_ACROSS = 4
MIN_RELATIVE_SCORE = 0.3


# -- the guide ----------------------------------------------------------------------------

@dataclass
class GuideEntry:
    key: str
    name: str
    category: str
    subcategories: tuple = ()
    actions: tuple = ()
    escalate_if: tuple = ()


@dataclass
class Guide:
    entries: list

    def lookup(self, category, subcategory=None):
        """The entry for ``subcategory`` of ``category``, else the category's general one."""
        sub = (subcategory or "").strip().lower()
        general = None
        for e in self.entries:
            if e.category.lower() != (category or "").lower():
                continue
            if sub and sub in (s.lower() for s in e.subcategories):
                return e
            if not e.subcategories and general is None:
                general = e
        if general is None:
            for e in self.entries:
                if e.category.lower() == (category or "").lower():
                    return e
        return general


def _shipped_guide():
    import tomllib
    from importlib.resources import files
    return tomllib.loads(files("escalate_cli").joinpath("guide.toml").read_text("utf-8"))


def load_guide(settings):
    """The shipped guide, or ``[insight] guide_file``, with ``[guide.KEY]`` overrides."""
    data = _shipped_guide()
    guide_file = (settings.insight or {}).get("guide_file")
    if guide_file:
        import os
        import tomllib
        try:
            with open(os.path.expanduser(str(guide_file)), "rb") as fh:
                data = tomllib.load(fh)
        except OSError as exc:
            raise ConfigError(f"cannot read the handling guide {guide_file}: {exc.strerror}")
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(f"the handling guide {guide_file} is not valid TOML: {exc}")
    for key, override in (settings.guide or {}).items():
        if not isinstance(override, dict):
            raise ConfigError(f"settings: [guide.{key}] must be a table")
        data[key] = dict(data.get(key) or {}, **override)
    entries = []
    for key, raw in data.items():
        if not isinstance(raw, dict) or raw.get("enabled", True) is False:
            continue
        entries.append(_entry(key, raw))
    return Guide(entries)


def _entry(key, raw):
    where = f"handling guide entry '{key}'"
    if not raw.get("category"):
        raise ConfigError(f"{where} needs a category")
    rules = []
    for rule in raw.get("escalate_if") or ():
        check = rule.get("check") if isinstance(rule, dict) else None
        if check not in CHECKS:
            raise ConfigError(f"{where}: unknown check {check!r}; use one of {', '.join(CHECKS)}")
        if rule.get("to", "coo") not in ("coo", "ceo"):
            raise ConfigError(f"{where}: 'to' must be coo or ceo")
        if check == "phrases":
            try:
                rule = dict(rule, _compiled=[re.compile(rf"(?<!\w)(?:{p})(?!\w)", re.I)
                                             for p in rule.get("phrases") or ()])
            except re.error as exc:
                raise ConfigError(f"{where}: bad phrase pattern: {exc}")
        rules.append(rule)
    return GuideEntry(key=key, name=str(raw.get("name") or key), category=str(raw["category"]),
                      subcategories=tuple(raw.get("subcategories") or ()),
                      actions=tuple(str(a) for a in raw.get("actions") or ()),
                      escalate_if=tuple(rules))


# -- recommendations ----------------------------------------------------------------------

@dataclass
class Recommendation:
    kind: str                     # escalate / guide / similar
    text: str
    source: str                   # the guide entry's name, or the code it came from
    command: str | None = None
    reason: str | None = None
    score: float | None = None

    def __str__(self):
        if self.kind == "similar":
            return f"{self.text} (what resolved {self.source})"
        if self.kind == "escalate" and self.command:
            return f"{self.text}\n$ {self.command}"
        return self.text

    def to_dict(self):
        d = {"kind": self.kind, "text": self.text, "source": self.source}
        if self.command:
            d["command"] = self.command
        if self.reason:
            d["reason"] = self.reason
        if self.score is not None:
            d["score"] = round(self.score, 4)
        return d


class Recommendations(list):
    """The panel's steps, with the line that says where they come from."""
    intro = ""


def recommend(app, esc):
    """The RECOMMENDED ACTIONS of ``esc`` for the acting user (see the module docstring)."""
    entry = load_guide(app.get_settings()).lookup(esc.category, esc.subcategory)
    recs = Recommendations()
    if entry is not None and esc.status in OPEN_FOR_CHECKS:
        from .domain import can_manage
        evidence = Evidence(app, esc)
        manages = can_manage(app.actor, esc)
        for rule in entry.escalate_if:
            found = run_check(rule, evidence)
            if found:
                # The note goes on the timeline, which the reporter reads: never quote an
                # internal note there.
                public = run_check(rule, evidence.public()) if manages else None
                note = (f"{rule.get('label')}: {public}" if public
                        else f"{rule.get('label')} (see the internal notes)")
                to = rule.get("to", "coo")
                recs.append(Recommendation(
                    "escalate", (f"Escalate further: {rule.get('label')} ({found})" if manages
                                 else f"Ask your manager to escalate further to the "
                                      f"{to.upper()}: {rule.get('label')} ({found})"),
                    source=entry.name, reason=found,
                    command=(f"escalate escalate {esc.code} --to {to} --note {shlex.quote(note)}"
                             if manages else None)))
    if entry is not None:
        recs.extend(Recommendation("guide", a, source=entry.name) for a in entry.actions)
    similar = similar_actions(app, esc, [r.text for r in recs if r.kind == "guide"])
    recs.extend(similar)
    basis = []
    if entry is not None:
        basis.append(f"the {entry.name} guide")
    codes = list(dict.fromkeys(r.source for r in similar))
    if codes:
        basis.append("similar resolved escalations (" + ", ".join(codes) + ")")
    recs.intro = ("Based on " + " and ".join(basis) + ":") if basis else \
        "No guide entry or similar resolved escalation yet."
    return recs


# -- what resolved similar escalations ----------------------------------------------------

def similar_resolved(app, esc, limit=SIMILAR):
    """``[(escalation, score)]``: the resolved escalations most like ``esc``, best first.

    The store finds the newest resolved escalations the viewer may see sharing at least one
    descriptive word (title, category or description); BM25F ranks them (see
    :mod:`escalate_cli.fulltext`).
    """
    from . import fulltext
    from .models import Escalation
    words = _descriptive_words(esc)
    if not words:
        return []
    terms = [("word", w) for w in words]
    expr = fulltext.match_expression(app, terms, any_=True, problem_only=True)
    where = ((Escalation.status == "resolved") & (Escalation.id != esc.id)
             & Escalation.resolution_notes.is_null(False))
    few = fulltext.sees_little(app, where)
    if few is not None:      # nearly all share a common word: BM25F alone tells them apart
        ids = few[:SIMILAR_POOL]
    else:
        ids = fulltext.match_escalations(app, expr, where=where, pool=SIMILAR_POOL, few=None)
    if not ids:
        return []
    rows = {e.id: e for e in Escalation.select(
        Escalation.id, Escalation.code, Escalation.title, Escalation.category,
        Escalation.subcategory, Escalation.description, Escalation.resolution_notes).where(
        Escalation.id.in_(ids))}
    scores = fulltext.bm25f({i: fulltext.escalation_texts(rows[i], fulltext.PROBLEM_FIELDS)
                             for i in ids}, terms, fulltext.PROBLEM_FIELDS)
    ranked = sorted(((i, sc) for i, sc in scores.items() if sc > 0),
                    key=lambda kv: (-kv[1], -kv[0]))
    if not ranked:
        return []
    mine = {fulltext.stem(w) for w in words} - _category_words(esc)
    best = ranked[0][1]
    out = []
    for esc_id, score in ranked:
        other = rows[esc_id]
        theirs = {fulltext.stem(w) for w in fulltext.words(
            f"{other.title} {other.subcategory or ''} {other.description}")}
        shared = len(mine & theirs)
        same_kind = other.category == esc.category
        if score >= MIN_RELATIVE_SCORE * best and shared >= (
                MIN_SHARED_WORDS if same_kind else MIN_SHARED_WORDS_ACROSS):
            out.append((other, score))
        if len(out) == limit:
            break
    return out


def similar_actions(app, esc, known=()):
    """The actions that resolved the most similar escalations, not already in ``known``."""
    recs = []
    seen = [_word_set(k) for k in known]
    for other, score in similar_resolved(app, esc):
        taken = 0
        for action in resolution_actions(other.resolution_notes):
            ws = _word_set(action)
            if not ws or any(_overlap(ws, s) >= 0.6 for s in seen):
                continue
            seen.append(ws)
            recs.append(Recommendation("similar", action, source=other.code, score=score))
            taken += 1
            if taken == ACTIONS_PER_SIMILAR:
                break
    return recs


def _descriptive_words(esc, cap=32):
    from .fulltext import STOPWORDS, words
    text = f"{esc.title} {esc.category} {esc.subcategory or ''} {esc.description}"
    out = []
    for w in words(text):
        if w in STOPWORDS or w.isdigit() or len(w) < 3 or w in out:
            continue
        out.append(w)
        if len(out) == cap:
            break
    return out


def _category_words(esc):
    from .fulltext import stem, words
    return {stem(w) for w in words(f"{esc.category} {esc.subcategory or ''}")}


def _word_set(text):
    from .fulltext import STOPWORDS, stem, words
    return {stem(w) for w in words(text) if w not in STOPWORDS}


def _overlap(a, b):
    return len(a & b) / max(1, min(len(a), len(b)))


_BULLET = re.compile(r"^\s*(?:\d+[.)]|[-*•✅✔☑]|\[[ xX]\])\s*(?:[✅✔☑]\s*)?")
_HEADER = re.compile(r"^\s*(?:actions?(?:\s+taken)?|what (?:we|i) did|resolution|"
                     r"steps?(?:\s+taken)?)\s*:\s*$", re.I)


def resolution_actions(notes):
    """The steps a resolution took: its "Actions Taken:" list, else its first sentences."""
    lines = (notes or "").splitlines()
    for i, line in enumerate(lines):
        if _HEADER.match(line):
            items = []
            for item in lines[i + 1:]:
                if not item.strip():
                    if items:
                        break
                    continue
                if not _BULLET.match(item):
                    break
                items.append(_clean_action(item))
            if items:
                return [x for x in items if x]
    flat = " ".join((notes or "").split())
    inline = _inline_list(flat)
    if inline:
        return inline
    bullets = [_clean_action(x) for x in lines if _BULLET.match(x)]
    if bullets:
        return [x for x in bullets if x]
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", flat) if s.strip()]
    return [_clean_action(s) for s in sentences[:2]]


_INLINE = re.compile(r"\b(?:actions?(?:\s+taken)?|steps?(?:\s+taken)?|what (?:we|i) did)"
                     r"\s*:\s*(1[.)]\s.+)", re.I)
_NEXT_HEADING = re.compile(r"(?<=[.!?;])\s+[A-Z][\w ]{0,24}:\s")


def _inline_list(flat):
    """'Actions Taken: 1. Reviewed ... 2. Asked Finance ...' typed on one line."""
    m = _INLINE.search(flat)
    if not m:
        return []
    items = [p for p in re.split(r"(?:^|\s)\d+[.)]\s+", m.group(1)) if p.strip()]
    if len(items) < 2:
        return []
    last = _NEXT_HEADING.search(items[-1])          # "... Outcome: client happy."
    if last:
        items[-1] = items[-1][:last.start()]
    return [x for x in (_clean_action(i) for i in items) if x]


def _clean_action(text):
    text = _BULLET.sub("", text).strip()
    text = re.sub(r"\s*\((?:email|call|done|due)[^)]*\)\s*$", "", text, flags=re.I)
    text = text.rstrip(" .;")
    return text[:1].upper() + text[1:] if text else text


# -- evidence for the "escalate further if" checks ----------------------------------------

_SKIP_TYPES = {"status_change", "notification", "escalation_claimed", "escalation_assigned",
               "attachment", "created"}


class Evidence:
    """What the checks read: the escalation, its contract and the text the viewer may read."""

    def __init__(self, app, esc):
        from . import domain
        self.app = app
        self.esc = esc
        parts = [esc.title, esc.description, esc.assessment or ""]
        public = list(parts)
        for act in domain.timeline(app, esc):
            if act.type not in _SKIP_TYPES:
                parts.extend([act.subject or "", act.body or ""])
                if not act.internal:
                    public.extend([act.subject or "", act.body or ""])
        self._set_text(parts)
        self._public_parts = public if len(public) < len(parts) else None

    def _set_text(self, parts):
        self.text = "\n".join(p for p in parts if p)
        self.sentences = [s for s in re.split(r"(?<=[.!?])\s+|\n+", self.text) if s.strip()]

    def public(self):
        """The same evidence without internal notes: what may be quoted where ICs read."""
        if self._public_parts is None:
            return self
        import copy
        other = copy.copy(self)
        other._public_parts = None
        other._set_text(self._public_parts)
        return other

    @property
    def contract(self):
        return self.esc.contract if self.esc.contract_id else None

    def invoices(self):
        from .models import Invoice
        if not self.esc.contract_id:
            return []
        return list(Invoice.select().where(Invoice.contract == self.esc.contract_id))


NEGATIONS = {"no", "not", "never", "without", "nor", "cannot", "none", "neither"}
_MONEY = re.compile(r"(?:\$|usd\s?)\s?(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d{1,2}))?"
                    r"\s*(k|m|thousand|million)?\b", re.I)
_HOURLY = re.compile(r"^\s*(?:/\s*(?:hr|hour|h)\b|(?:an|per|a)\s+hour\b)", re.I)
_PERCENT = re.compile(r"(\d+(?:\.\d+)?)\s*(?:%|percent\b|per cent\b)", re.I)
_REFUND = re.compile(r"\b(?:refund\w*|reimburs\w*|money back|pay(?:ing)? (?:us|them|it) back|"
                     r"charge-?backs?|credit(?:ed)? back)\b", re.I)
_RAISE = re.compile(r"\b(?:raise|increase|bump|hike|more|demand\w*|ask\w*|want\w*|request\w*|"
                    r"expect\w*|insist\w*)\b", re.I)
_DEMAND = re.compile(r"\b(?:demand\w*|ask\w*|want\w*|request\w*|expect\w*|insist\w*|"
                     r"won't accept|will not accept|raise to|increase to)\b", re.I)
_NUMBER_WORDS = {"two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
                 "nine": 9, "ten": 10, "several": 3, "multiple": 2, "many": 3, "all": 99,
                 "both": 2}
_CLIENTS = re.compile(r"\b(\d+|two|three|four|five|six|seven|eight|nine|ten|several|multiple|"
                      r"many|all|both)\s+(?:(?:of\s+)?(?:our|the|other|affected|active|major|"
                      r"key)\s+)*(?:clients|accounts|customers)\b", re.I)


def negated(sentence, start):
    """True if one of the four words before ``start`` in its clause negates what follows."""
    clause = re.split(r"[,;:()]", sentence[:start])[-1]
    before = [w.lower() for w in re.findall(r"[\w']+", clause)][-4:]
    return any(w in NEGATIONS or w.endswith("n't") for w in before)


def money_amounts(sentence):
    """Dollar amounts in ``sentence`` that are not hourly rates."""
    out = []
    for m in _MONEY.finditer(sentence):
        if _HOURLY.match(sentence[m.end():]):
            continue
        out.append(_money(m))
    return out


def hourly_rates(sentence):
    return [_money(m) for m in _MONEY.finditer(sentence) if _HOURLY.match(sentence[m.end():])]


def _money(m):
    try:
        value = Decimal(m.group(1).replace(",", "") + (f".{m.group(2)}" if m.group(2) else ""))
    except InvalidOperation:
        return Decimal(0)
    scale = (m.group(3) or "").lower()
    if scale in ("k", "thousand"):
        value *= 1000
    elif scale in ("m", "million"):
        value *= 1000000
    return value


def _dollars(value):
    value = Decimal(value)
    sign, value = ("-" if value < 0 else ""), abs(value)
    return sign + (f"${value:,.0f}" if value == value.to_integral_value() else f"${value:,.2f}")


def run_check(rule, ev):
    """The evidence that makes ``rule`` fire on ``ev``, or None."""
    return _CHECK_FUNCS[rule["check"]](rule, ev)


def check_refund_over(rule, ev):
    limit = Decimal(str(rule.get("amount", 5000)))
    asked = Decimal(0)
    for s in ev.sentences:
        m = _REFUND.search(s)
        if m and not negated(s, m.start()):
            asked = max([asked] + money_amounts(s))
    owed = Decimal(0)
    contract = ev.contract
    if contract is not None:
        for inv in ev.invoices():
            if inv.bill_rate > contract.bill_rate and not _approved(contract, inv.bill_rate):
                owed += (inv.bill_rate - contract.bill_rate) * inv.hours
    if asked > limit:
        return f"refund of {_dollars(asked)} demanded, over {_dollars(limit)}"
    if owed > limit:
        return (f"{_dollars(owed)} billed above the contract rate of "
                f"{_dollars(contract.bill_rate)}/hr, over {_dollars(limit)}")
    return None


def _approved(contract, rate):
    from .models import RateApproval
    return RateApproval.select().where((RateApproval.contract == contract.id)
                                       & (RateApproval.bill_rate == rate)).exists()


def check_percent_over(rule, ev):
    limit = Decimal(str(rule.get("percent", 20)))
    best, how = Decimal(0), ""
    pay = ev.contract.pay_rate if ev.contract is not None else None
    for s in ev.sentences:
        if "margin" in s.lower():
            continue
        raise_word = _RAISE.search(s)
        if raise_word and not negated(s, raise_word.start()):
            for m in _PERCENT.finditer(s):
                value = Decimal(m.group(1))
                if value > best:
                    best, how = value, f"{value.normalize():f}% increase asked"
        demand = _DEMAND.search(s)
        rates = hourly_rates(s)
        if demand and rates and not negated(s, demand.start()):
            base = pay if pay else (min(rates) if len(rates) > 1 else None)
            asked = max(rates)
            if base and asked > base:
                value = (asked - base) * 100 / base
                if value > best:
                    best = value
                    how = (f"{_dollars(asked)}/hr asked against {_dollars(base)}/hr: "
                           f"{value:.1f}% increase")
    if best > limit:
        return f"{how}, over {limit.normalize():f}%"
    return None


def check_negative_margin(rule, ev):
    c = ev.contract
    if c is not None and c.pay_rate > c.bill_rate:
        return (f"contract {c.code} bills {_dollars(c.bill_rate)}/hr and pays "
                f"{_dollars(c.pay_rate)}/hr: margin {_dollars(c.bill_rate - c.pay_rate)}/hr")
    for inv in ev.invoices():
        if inv.pay_rate is not None and inv.pay_rate > inv.bill_rate:
            return (f"invoice {inv.number} bills {_dollars(inv.bill_rate)}/hr and pays "
                    f"{_dollars(inv.pay_rate)}/hr")
    for s in ev.sentences:
        bill = re.search(r"\bbill(?:ing|ed)?\s+(?:rate\s+)?(?:of\s+|at\s+|is\s+|=\s*)?"
                         r"(\$\s?[\d,]+(?:\.\d+)?)", s, re.I)
        pay = re.search(r"\bpa(?:y|id)(?:ing)?\s+(?:rate\s+)?(?:of\s+|at\s+|is\s+|=\s*)?"
                        r"(\$\s?[\d,]+(?:\.\d+)?)", s, re.I)
        if bill and pay:
            b = Decimal(bill.group(1).strip("$ ").replace(",", ""))
            p = Decimal(pay.group(1).strip("$ ").replace(",", ""))
            if p > b:
                return f"bill rate {_dollars(b)}/hr below pay rate {_dollars(p)}/hr"
        m = re.search(r"\bnegative margin\b", s, re.I)
        if m and not negated(s, m.start()):
            return f"\"{s.strip()[:80]}\""
    return None


def check_phrases(rule, ev):
    for s in ev.sentences:
        for pattern in rule.get("_compiled") or ():
            for m in pattern.finditer(s):
                if not negated(s, m.start()):
                    return f"\"{_excerpt(s, m)}\""
    return None


def _excerpt(sentence, m, width=120):
    s = " ".join(sentence.split())
    if len(s) <= width:
        return s
    i = s.lower().find(m.group(0).lower())
    start = max(0, i - width // 2)
    return ("…" if start else "") + s[start:start + width].strip() + "…"


def check_clients_affected(rule, ev):
    import datetime as dt
    from .models import Escalation
    need = int(rule.get("min_clients", 2))
    days = int(rule.get("window_days", 14))
    esc = ev.esc
    window = dt.timedelta(days=days)
    query = Escalation.select(Escalation.account).distinct().where(
        (Escalation.category == esc.category) & Escalation.account.is_null(False)
        & (Escalation.created_at >= esc.created_at - window)
        & (Escalation.created_at <= esc.created_at + window))
    if esc.subcategory:
        query = query.where(Escalation.subcategory == esc.subcategory)
    accounts = query.count()
    if accounts >= need:
        return f"{esc.category} escalations on {accounts} accounts within {days} days"
    for s in ev.sentences:
        for m in _CLIENTS.finditer(s):
            word = m.group(1).lower()
            n = int(word) if word.isdigit() else _NUMBER_WORDS[word]
            if n >= need and not negated(s, m.start()):
                return f"\"{_excerpt(s, m)}\""
    return None


_CHECK_FUNCS = {"refund_over": check_refund_over, "percent_over": check_percent_over,
                "negative_margin": check_negative_margin, "phrases": check_phrases,
                "clients_affected": check_clients_affected}
