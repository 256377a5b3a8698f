"""Fill a store with N escalations of realistic shape, fast, for the benchmark.

    python bench/generate.py --db sqlite:///$PWD/bench/data/sqlite-100000.db -n 100000
    python bench/generate.py --db postgresql://postgres@127.0.0.1:5432/escalate_bench_100000 -n 100000

``sqlite:///`` is followed by an absolute path, as escalate reads it. The schema is the one
``escalate init`` creates (the installed command is run first), so the data follows every
migration merged so far. Shape: several pods with a manager and
ICs, hundreds of accounts with contacts and contracts, statuses, priorities and categories
in plausible proportions (older escalations are mostly resolved), about five activities and
one internal note per escalation, SLA clock rows consistent with the escalation's stored due
times, and, at the pinned ``--now``, 1% of the open escalations due for a warning or a
breach (``--due N`` pins the number instead) plus 1% of those on hold due to resume.

The people, pods and CRM records go through the models; the three big tables (escalation,
sla_clock, activity) go in with ``executemany`` on SQLite and ``COPY`` on PostgreSQL, with
their secondary indexes dropped during the load and rebuilt after it. What the benchmark
needs to know (the pinned now, the manager whose queue it lists, ...) is written to a small
``bench_manifest`` table of the generated store.
"""
import argparse
import datetime as dt
import io
import json
import os
import random
import subprocess
import sys
import time
from decimal import Decimal
from urllib.parse import unquote, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
UTC = dt.timezone.utc
DEFAULT_NOW = "2024-12-04T10:00:00-05:00"     # a Wednesday morning in the company zone
SPAN_DAYS = 730
RECENCY = 4

PRIORITIES = ("critical", "high", "medium", "low")
PRIORITY_WEIGHTS = (5, 20, 45, 30)
OPEN_STATUSES = ("pending", "in_progress", "on_hold", "escalated")
OPEN_WEIGHTS = (25, 55, 10, 10)
CATEGORIES = {
    "Client Complaint": ("Billing Dispute", "Performance", "Service Quality"),
    "Candidate Issue": ("Ghosting", "Compensation", "No-show", "Conduct"),
    "Rate Exception": ("Margin", "Bill Rate", "Pay Rate"),
    "Contract Dispute": ("Terms", "Termination", "Legal"),
    "System/Process Failure": ("Template", "Tooling", "Process"),
}
CATEGORY_WEIGHTS = (35, 30, 15, 10, 10)
TITLES = {
    "Billing Dispute": "Invoice shows {a}/hr instead of the agreed {b}/hr",
    "Performance": "Client unhappy with {cand}'s delivery on the {proj} project",
    "Service Quality": "Slow replies from the pod on {proj} requisitions",
    "Ghosting": "{cand} stopped answering before the {proj} start date",
    "Compensation": "{cand} asks for a {pct}% raise mid-assignment",
    "No-show": "{cand} did not show up on day one at {acct}",
    "Conduct": "Conduct complaint about {cand} at {acct}",
    "Margin": "Negative margin on {cand}'s placement ({a} bill vs {b} pay)",
    "Bill Rate": "Bill rate change for {cand} not approved by {acct}",
    "Pay Rate": "{cand} paid {a}/hr, timesheet says {b}/hr",
    "Terms": "{acct} disputes the notice period in the master agreement",
    "Termination": "{acct} threatens to terminate {n} contracts",
    "Legal": "{acct} legal team questions the non-solicit clause",
    "Template": "New contract template applied to an existing placement",
    "Tooling": "Timesheet tool dropped {cand}'s overtime hours",
    "Process": "Onboarding checklist skipped background check for {cand}",
}
WORDS = ("invoice timesheet overtime rate approval purchase order renewal onboarding background "
         "check client hiring manager procurement candidate recruiter margin discount credit "
         "refund apology escalation deadline weekend holiday contract amendment clause notice "
         "period payroll deposit schedule interview offer counteroffer reference compliance "
         "audit visa relocation equipment laptop access badge security manager director "
         "budget forecast headcount backfill replacement urgent callback tomorrow morning").split()
FIRST = ("Ava Ben Chloe Dan Eli Fay Gus Hana Ivan Jade Kai Lena Milo Nora Omar Pia Quinn Rosa "
         "Sam Tara Uma Vic Wes Xena Yuri Zoe Liam Emma Noah Olivia Lucas Mia Ethan Isla").split()
LAST = ("Smith Chen Garcia Patel Kim Nguyen Brown Lopez Rossi Muller Silva Khan Cohen Novak "
        "Haddad Ito Larsen Okafor Dubois Moreau Jensen Walsh Reyes Tanaka").split()
COMPANY = ("Acme Globex Initech Umbrella Hooli Stark Wayne Wonka Tyrell Cyberdyne Soylent "
           "Vandelay Pied Piper Gringotts Oscorp Aperture Massive Dynamic Monarch Nakatomi "
           "Prestige Sterling Cooper Duff Krusty Virtucon Gekko Dunder Mifflin").split()
SUFFIX = ("Inc.", "LLC", "Corp.", "Group", "Holdings", "Labs", "Partners", "Systems")

ESC_COLUMNS = (
    "id", "code", "day", "seq", "title", "category", "subcategory", "priority", "priority_rank",
    "impact", "impact_reason", "status", "substate", "reporter_id", "pod_id", "owner_id",
    "account_id", "contact_id", "contract_id", "description", "assessment", "created_at",
    "claimed_at", "escalated_at", "escalated_to", "resolved_at", "resolved_by_id",
    "resolution_notes", "resolution_seconds", "resolved_by_ic", "approval", "approved_by_id",
    "approved_at", "policy_version", "response_due", "resolution_due", "paused_seconds",
    "paused_wall_seconds", "hold_started_at", "hold_until", "hold_reason", "last_action",
    "last_action_at", "idempotency_key", "source", "source_key", "version", "updated_at")
CLOCK_COLUMNS = ("id", "escalation_id", "kind", "started_at", "warn_at", "due_at",
                 "next_check_at", "stopped_at", "met", "warned_at", "breached_at")
ACTIVITY_COLUMNS = ("id", "escalation_id", "type", "internal", "direction", "subject", "body",
                    "actor_id", "occurred_at", "created_at", "meta")
BULK_TABLES = ("escalation", "sla_clock", "activity")


# -- the store ----------------------------------------------------------------------------

def escalate_command():
    """The installed console script next to this interpreter (never a shell shim)."""
    path = os.path.join(os.path.dirname(sys.executable), "escalate")
    return [path] if os.path.exists(path) else [sys.executable, "-m", "escalate_cli"]


def is_postgres(url):
    return url.startswith(("postgres://", "postgresql://"))


def ensure_pg_database(url):
    """Create the database named in ``url`` if it does not exist yet."""
    import psycopg2
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    conn = psycopg2.connect(dbname="postgres", user=parts.username or "postgres",
                            host=parts.hostname or "127.0.0.1", port=parts.port or 5432,
                            password=parts.password)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,))
            if cur.fetchone() is None:
                cur.execute(f'CREATE DATABASE "{name}"')
    finally:
        conn.close()


def drop_store(url):
    if is_postgres(url):
        import psycopg2
        parts = urlsplit(url)
        if "search_path" in (parts.query or ""):
            raise SystemExit("--force drops a whole database; give a URL without search_path")
        name = parts.path.lstrip("/")
        conn = psycopg2.connect(dbname="postgres", user=parts.username or "postgres",
                                host=parts.hostname or "127.0.0.1", port=parts.port or 5432,
                                password=parts.password)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.close()
    else:
        path = sqlite_path(url)
        for suffix in ("", "-wal", "-shm"):
            if os.path.exists(path + suffix):
                os.remove(path + suffix)


def sqlite_path(url):
    """The file of a sqlite:/// URL, read as escalate reads it (sqlite:///abs/path.db)."""
    parts = urlsplit(url)
    return os.path.normpath((parts.netloc or "") + unquote(parts.path))


def init_schema(url, env):
    result = subprocess.run(escalate_command() + ["init"], env=dict(env, ESCALATE_DB=url),
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"escalate init failed: {result.stderr.strip()}")


def open_db(url):
    from escalate_cli.db import open_store
    db = open_store(url)
    db.connect(reuse_if_open=True)
    return db


# -- directory ----------------------------------------------------------------------------

class Directory:
    """Pods, people and CRM records, made through the models (a few thousand rows)."""

    def __init__(self, rng, pods, ics_per_pod, accounts, now):
        self.rng, self.npods, self.nics, self.naccounts, self.now = rng, pods, ics_per_pod, accounts, now

    def build(self):
        from escalate_cli.models import (Account, Contact, Contract, Pod, Team, TeamMember,
                                         User, database_proxy)
        rng, now = self.rng, self.now
        with database_proxy.atomic():
            leaders = {}
            for login, name, role in (("admin", "Escalate Admin", "admin"),
                                      ("olivia.park", "Olivia Park", "coo"),
                                      ("david.kim", "David Kim", "ceo"),
                                      ("maria.lopez", "Maria Lopez", "finance")):
                leaders[role] = User.create(login=login, name=name, email=f"{login}@intime.com",
                                            role=role, title=role.upper(), created_at=now,
                                            phone="+15550199000" if role in ("coo", "ceo") else None)
            team = Team.create(key="finance", name="Finance Team", email="finance@intime.com")
            TeamMember.create(team=team.id, user=leaders["finance"].id)
            self.pods = []
            for p in range(1, self.npods + 1):
                pod = Pod.create(name=f"Recruiting Pod {p:02d}", manager=None)
                manager = User.create(login=f"manager.p{p:02d}", name=self._person(),
                                      email=f"manager.p{p:02d}@intime.com", role="manager",
                                      title=f"Manager - Recruiting Pod {p:02d}", pod=pod.id,
                                      phone=f"+1555010{p:04d}", created_at=now)
                Pod.update(manager=manager.id).where(Pod.id == pod.id).execute()
                rows = [dict(login=f"ic.p{p:02d}.{i:03d}", name=self._person(),
                             email=f"ic.p{p:02d}.{i:03d}@intime.com", role="ic",
                             title="IC - Recruiting", pod=pod.id, created_at=now)
                        for i in range(1, self.nics + 1)]
                User.insert_many(rows).execute()
                ics = [u.id for u in User.select(User.id).where((User.pod == pod.id)
                                                               & (User.role == "ic"))]
                self.pods.append({"id": pod.id, "name": pod.name, "manager": manager.id,
                                  "manager_login": manager.login, "manager_name": manager.name,
                                  "ics": ics})
            self.leaders = {k: v.id for k, v in leaders.items()}
            self.names = {u.id: u.name for u in User.select(User.id, User.name)}
            self.accounts = []
            names = set()
            while len(names) < self.naccounts:
                names.add(f"{rng.choice(COMPANY)} {rng.choice(LAST)} {rng.choice(SUFFIX)}")
            for i, name in enumerate(sorted(names), 1):
                strategic = rng.random() < 0.1
                revenue = Decimal(rng.choice((50, 120, 400, 900, 1500, 2000, 5000))) * 1000
                acc = Account.create(name=name, strategic=strategic, annual_revenue=revenue)
                contacts = []
                for c in range(rng.randint(2, 3)):
                    person = self._person()
                    contacts.append(Contact.insert(
                        account=acc.id, name=person, title=rng.choice(("Hiring Manager", "Procurement Lead", "HR Director")),
                        email=f"{person.lower().replace(' ', '.')}.{i}.{c}@client{i}.example.com",
                        phone=f"+1650555{i:04d}").execute())
                contracts = []
                for c in range(3):
                    bill = Decimal(rng.randrange(60, 180))
                    contracts.append(Contract.insert(
                        code=f"C-2024-{(i % 12) + 1:02d}-{c + 1:02d}-A{i:04d}-{c + 1:03d}",
                        account=acc.id, candidate=self._person(), title="Consultant",
                        bill_rate=bill, pay_rate=bill - rng.randrange(10, 40),
                        start_date=dt.date(2024, (i % 12) + 1, 1)).execute())
                self.accounts.append({"id": acc.id, "name": name, "strategic": strategic,
                                      "revenue": revenue, "contacts": contacts,
                                      "contracts": contracts})
        return self

    def _person(self):
        return f"{self.rng.choice(FIRST)} {self.rng.choice(LAST)}"


# -- escalations, clocks, activities ------------------------------------------------------

class Shape:
    """Each escalation's status, and which open ones the sweep owes something at ``now``.

    Older escalations are mostly resolved: P(open) grows with recency as (k+1) x share x rank^k
    (rank 0 the oldest, 1 the newest), which keeps the mean at ``open_share``. The due ones are drawn from those with a running clock
    (pending, in progress); 1% of those on hold are past their ``hold_until``.
    """

    def __init__(self, rng, n, open_share, due, due_share):
        self.n = n
        self.status = [rng.choices(OPEN_STATUSES, OPEN_WEIGHTS)[0]
                       if rng.random() < min(0.95, (RECENCY + 1) * open_share * ((i + 0.5) / n) ** RECENCY)
                       else "resolved" for i in range(n)]
        open_ids = [i for i, s in enumerate(self.status) if s != "resolved"]
        running = [i for i in open_ids if self.status[i] in ("pending", "in_progress")]
        count = due if due is not None else (max(1, round(len(open_ids) * due_share)) if open_ids else 0)
        self.due = set(rng.sample(running, min(count, len(running))))
        held = [i for i in open_ids if self.status[i] == "on_hold"]
        self.hold_due = set(rng.sample(held, min(len(held), max(1, round(len(held) * 0.01))) if held else 0))
        self.open_count = len(open_ids)


def created_times(rng, n, now):
    """``n`` sorted creation times over the last two years, none in the last 10 minutes."""
    span = SPAN_DAYS * 86400
    offsets = sorted((rng.random() ** 0.9) * span for _ in range(n))
    start = now - dt.timedelta(seconds=span)
    out = [start + dt.timedelta(seconds=int(o)) for o in offsets]
    latest = now - dt.timedelta(minutes=10)
    return [min(t, latest) for t in out]


class Generator:
    def __init__(self, rng, directory, settings, now, shape):
        from escalate_cli import sla
        self.sla = sla
        self.rng, self.dir, self.settings, self.now, self.shape = rng, directory, settings, now, shape
        self.policies = {p: settings.policy(p) for p in PRIORITIES}
        self.zone = settings.zone
        self.warn_share = settings.warn_share
        self.day_seq = {}
        self.clock_id = 0
        self.activity_id = 0
        self.stats = {"open": 0, "due_clocks": 0, "hold_due": 0, "by_status": {}}

    def text(self, words):
        return " ".join(self.rng.choice(WORDS) for _ in range(words))

    def rows(self, index, esc_id, created):
        rng, now = self.rng, self.now
        priority = rng.choices(PRIORITIES, PRIORITY_WEIGHTS)[0]
        category = rng.choices(tuple(CATEGORIES), CATEGORY_WEIGHTS)[0]
        sub = rng.choice(CATEGORIES[category])
        pod = rng.choice(self.dir.pods)
        reporter = rng.choice(pod["ics"])
        acc = rng.choice(self.dir.accounts) if rng.random() < 0.9 else None
        contact = rng.choice(acc["contacts"]) if acc and rng.random() < 0.8 else None
        contract = rng.choice(acc["contracts"]) if acc and rng.random() < 0.6 else None
        cand = f"{rng.choice(FIRST)} {rng.choice(LAST)}"
        a = rng.randrange(60, 160)
        title = TITLES[sub].format(a=f"${a + 10}", b=f"${a}", cand=cand, pct=rng.choice((10, 15, 25)),
                                   proj=rng.choice(WORDS), acct=acc["name"] if acc else "the client",
                                   n=rng.randint(2, 6))[:300]
        description = (f"{title}. Reported by the recruiter after a call with the client: "
                       f"{self.text(18)}. Next step: {self.text(8)}.")
        assessment = f"Initial assessment: {self.text(14)}." if rng.random() < 0.7 else None
        if acc is None:
            impact, reason = "low", "No account affected"
        elif acc["strategic"] or acc["revenue"] >= 1000000:
            impact, reason = "high", f"May lose account with ${acc['revenue'] / 1000000:.1f}M annual revenue"
        elif acc["revenue"] >= 100000:
            impact, reason = "medium", f"Account with ${acc['revenue'] / 1000:.0f}K annual revenue"
        else:
            impact, reason = "low", "Limited revenue at stake"

        local_day = created.astimezone(self.zone).date()
        seq = self.day_seq.get(local_day, 0) + 1
        self.day_seq[local_day] = seq
        code = f"ESC-{local_day:%Y-%m-%d}-{seq:03d}"

        policy = self.policies[priority]
        cal = policy.calendar
        response_due = self.sla.response_due(policy, created)
        resolution_due = self.sla.resolution_due(policy, created)
        warn_response = self.sla.warn_time(cal, created, response_due, self.warn_share)
        warn_resolution = self.sla.warn_time(cal, created, resolution_due, self.warn_share)

        status = self.shape.status[index]
        is_open = status != "resolved"
        manager = pod["manager"]
        claimed_at = escalated_at = resolved_at = hold_started = hold_until = None
        owner = resolved_by = approved_by = approved_at = None
        escalated_to = approval = resolution_notes = hold_reason = None
        resolved_by_ic = False
        resolution_seconds = None
        age = (now - created).total_seconds()
        if status != "pending":
            claimed_at = created + dt.timedelta(seconds=min(age * 0.3, rng.randrange(300, 6 * 3600)))
            owner = manager
        if status == "resolved":
            if rng.random() < 0.05:
                resolved_by_ic, claimed_at, owner = True, None, None
                approval, approved_by = "approved", manager
            start = claimed_at or created
            resolved_at = start + dt.timedelta(seconds=min((now - start).total_seconds() * 0.9,
                                                           rng.randrange(1800, 5 * 86400)))
            resolved_by = reporter if resolved_by_ic else manager
            approved_at = resolved_at + dt.timedelta(hours=1) if resolved_by_ic else None
            if approved_at is not None and approved_at > now:
                approved_at = now
            resolution_seconds = int((resolved_at - created).total_seconds())
            resolution_notes = (f"Resolved: {self.text(12)}. Client confirmed; corrected "
                                f"{rng.choice(('invoice', 'timesheet', 'rate', 'schedule'))} sent.")
        elif status == "escalated":
            escalated_to = "ceo" if priority == "critical" else "coo"
            owner = self.dir.leaders[escalated_to]
            escalated_at = claimed_at + dt.timedelta(seconds=min((now - claimed_at).total_seconds() * 0.5, 7200))
        elif status == "on_hold":
            hold_started = claimed_at + dt.timedelta(seconds=(now - claimed_at).total_seconds() * 0.5)
            hold_reason = "Waiting for the client's purchase order"
            if index in self.shape.hold_due:
                hold_until = now - dt.timedelta(minutes=rng.randrange(1, 120))
                self.stats["hold_due"] += 1
            elif rng.random() < 0.3:
                hold_until = now + dt.timedelta(days=rng.randrange(1, 10))
        last_action_at = resolved_at or escalated_at or hold_started or claimed_at or created
        last_action = {"pending": "created", "in_progress": "claimed", "on_hold": "held",
                       "escalated": "escalated", "resolved": "resolved"}[status]

        # -- clocks, consistent with the stored due times ---------------------------------
        due_here = index in self.shape.due
        response_stop = claimed_at or (resolved_at if resolved_by_ic else None) or escalated_at
        resolution_stop = resolved_at or escalated_at
        clocks = []
        marked = False
        for kind, warn_at, due_at, stop in (("response", warn_response, response_due, response_stop),
                                            ("resolution", warn_resolution, resolution_due, resolution_stop)):
            self.clock_id += 1
            warned_at = breached_at = next_check = met = stopped_at = None
            if kind == "resolution" and status == "on_hold":
                due_at = next_check = None            # paused: not checked while on hold
                warned_at = warn_at if warn_at <= hold_started else None
                breached_at = resolution_due if resolution_due <= hold_started else None
            elif stop is not None:
                stopped_at, met = stop, stop <= due_at
                warned_at = warn_at if warn_at <= stop else None
                breached_at = due_at if due_at < stop else None
            elif due_here and not marked and warn_at <= now:
                marked = True                         # a warning or breach the sweep owes
                if due_at <= now and rng.random() < 0.5:
                    warned_at, next_check = warn_at, due_at
                else:
                    next_check = warn_at
                self.stats["due_clocks"] += 1
            elif warn_at > now:
                next_check = warn_at
            elif due_at > now:
                warned_at, next_check = warn_at, due_at
            else:
                warned_at, breached_at = warn_at, due_at
            clocks.append((self.clock_id, esc_id, kind, created, warn_at, due_at, next_check,
                           stopped_at, met, warned_at, breached_at))
        if due_here and not marked:
            # too young for its warning: move the running clock's warning to just before now
            k = 0 if status == "pending" else 1
            cid, eid, kind, started, _, due_at, _, _, _, _, _ = clocks[k]
            warn_at = max(started, now - dt.timedelta(minutes=5))
            clocks[k] = (cid, eid, kind, started, warn_at, due_at, warn_at, None, None, None, None)
            self.stats["due_clocks"] += 1

        esc = (esc_id, code, local_day, seq, title, category, sub, priority,
               PRIORITIES.index(priority), impact, reason, status, None, reporter, pod["id"],
               owner, acc["id"] if acc else None, contact, contract, description, assessment,
               created, claimed_at, escalated_at, escalated_to, resolved_at, resolved_by,
               resolution_notes, resolution_seconds, resolved_by_ic, approval, approved_by,
               approved_at, self.policies[priority].version, response_due, resolution_due, 0, 0,
               hold_started, hold_until, hold_reason, last_action, last_action_at, None,
               "manual", None, 2 if status != "pending" else 1, last_action_at)

        # -- about five activities and one internal note ----------------------------------
        names = self.dir.names
        acts = []

        def act(type_, body, actor, at, subject=None, direction=None, internal=False):
            self.activity_id += 1
            at = min(at, now)
            acts.append((self.activity_id, esc_id, type_, internal, direction, subject, body,
                         actor, at, at, None))

        act("created", f"{names[reporter]} escalated to manager: {title}", reporter, created)
        act("notification", f"System notified manager ({pod['manager_name']})", None, created)
        first = claimed_at or created + dt.timedelta(minutes=30)
        act("email", f"Client wrote about the {self.text(3)}: {self.text(10)}", None,
            created - dt.timedelta(hours=2), subject=f"Re: {title[:60]}", direction="inbound")
        act("call", f"Call with the client about {self.text(6)}", reporter,
            created - dt.timedelta(hours=1), subject="Call logged", direction="outbound")
        if claimed_at:
            act("escalation_claimed", f"{names[manager]} took ownership", manager, claimed_at)
        else:
            act("message", f"Follow-up from the recruiter: {self.text(8)}", reporter,
                created + dt.timedelta(minutes=20))
        act("note", f"Investigation: {self.text(16)}.", manager, first + dt.timedelta(minutes=15),
            internal=True)
        if status == "resolved":
            act("status_change", f"{names.get(resolved_by, 'Someone')} marked the escalation resolved",
                resolved_by, resolved_at, subject="RESOLVED")

        if is_open:
            self.stats["open"] += 1
        self.stats["by_status"][status] = self.stats["by_status"].get(status, 0) + 1
        return esc, clocks, acts


# -- bulk loading -------------------------------------------------------------------------

class Loader:
    """executemany on SQLite, COPY on PostgreSQL; secondary indexes rebuilt after the load."""

    def __init__(self, db, postgres):
        self.db, self.pg = db, postgres
        self.conn = db.connection()
        self.saved_indexes = []

    def begin(self):
        cur = self.conn.cursor()
        if self.pg:
            cur.execute("SET session_replication_role = replica")   # no FK triggers during the load
            cur.execute("SET maintenance_work_mem = '512MB'")
            cur.execute("SET synchronous_commit = off")
            cur.execute("""SELECT i.indexname, i.indexdef FROM pg_indexes i
                           WHERE i.schemaname = current_schema() AND i.tablename = ANY(%s)
                             AND NOT EXISTS (SELECT 1 FROM pg_constraint c
                                             WHERE c.conname = i.indexname)""",
                        (list(BULK_TABLES),))
            self.saved_indexes = cur.fetchall()
            for name, _ in self.saved_indexes:
                cur.execute(f'DROP INDEX "{name}"')
            self.conn.commit()
        else:
            if self.conn.in_transaction:
                self.conn.commit()
            cur.execute("PRAGMA journal_mode = OFF")
            cur.execute("PRAGMA synchronous = OFF")
            cur.execute("PRAGMA cache_size = -400000")
            cur.execute("PRAGMA foreign_keys = OFF")
            marks = ",".join("?" * len(BULK_TABLES))
            cur.execute(f"SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL "
                        f"AND tbl_name IN ({marks})", BULK_TABLES)
            self.saved_indexes = cur.fetchall()
            for name, _ in self.saved_indexes:
                cur.execute(f'DROP INDEX "{name}"')
            cur.execute("BEGIN")

    def insert(self, table, columns, rows):
        if not rows:
            return
        cur = self.conn.cursor()
        if self.pg:
            buf = io.StringIO()
            for row in rows:
                buf.write("\t".join(_pg_text(v) for v in row))
                buf.write("\n")
            buf.seek(0)
            cols = ", ".join(f'"{c}"' for c in columns)
            cur.copy_expert(f'COPY "{table}" ({cols}) FROM STDIN', buf)
        else:
            cols = ", ".join(f'"{c}"' for c in columns)
            marks = ", ".join("?" * len(columns))
            cur.executemany(f'INSERT INTO "{table}" ({cols}) VALUES ({marks})',
                            [tuple(_sqlite_value(v) for v in row) for row in rows])

    def chunk_done(self):
        if self.pg:
            self.conn.commit()

    def finish(self, log):
        cur = self.conn.cursor()
        if not self.pg:
            cur.execute("COMMIT")
        t = time.perf_counter()
        for name, sql in self.saved_indexes:
            cur.execute(sql)
            if self.pg:
                self.conn.commit()
        log(f"  {len(self.saved_indexes)} indexes rebuilt: {time.perf_counter() - t:.1f}s")
        if self.pg:
            for table in BULK_TABLES + ("pod", "user", "account", "contact", "contract", "team"):
                cur.execute(f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
                            f"COALESCE((SELECT max(id) FROM \"{table}\"), 1))")
            cur.execute("SET session_replication_role = DEFAULT")
            self.conn.commit()
            old = self.conn.autocommit
            self.conn.autocommit = True
            t = time.perf_counter()
            for table in BULK_TABLES + ("user", "pod", "account", "contact", "contract"):
                cur.execute(f'VACUUM ANALYZE "{table}"')       # this schema's tables only
            log(f"  vacuum analyze: {time.perf_counter() - t:.1f}s")
            self.conn.autocommit = old
        else:
            cur.execute("PRAGMA journal_mode = WAL")
            cur.execute("PRAGMA foreign_keys = ON")


def _sqlite_value(v):
    if isinstance(v, dt.datetime):
        return v.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, bool):
        return int(v)
    if isinstance(v, Decimal):
        return str(v)
    return v


def _pg_text(v):
    if v is None:
        return "\\N"
    if isinstance(v, bool):
        return "t" if v else "f"
    if isinstance(v, dt.datetime):
        return v.astimezone(UTC).replace(tzinfo=None).isoformat(" ")
    if isinstance(v, (dt.date, int, Decimal)):
        return str(v)
    s = str(v)
    if "\\" in s or "\t" in s or "\n" in s or "\r" in s:
        s = s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")
    return s


def write_manifest(db, postgres, data):
    param = "%s" if postgres else "?"
    db.execute_sql('CREATE TABLE IF NOT EXISTS "bench_manifest" ("key" VARCHAR(100) PRIMARY KEY, '
                   '"value" TEXT NOT NULL)')
    db.execute_sql('DELETE FROM "bench_manifest"')
    for k, v in data.items():
        db.execute_sql(f'INSERT INTO "bench_manifest" ("key", "value") VALUES ({param}, {param})',
                       (k, json.dumps(v, default=str)))


def read_manifest(db):
    """The generator's manifest of a store (``None`` if it was not generated)."""
    try:
        cur = db.execute_sql('SELECT "key", "value" FROM "bench_manifest"')
    except Exception:  # noqa: BLE001 - no such table: not a generated store
        if not db.is_closed() and hasattr(db.connection(), "rollback"):
            db.connection().rollback()
        return None
    return {k: json.loads(v) for k, v in cur.fetchall()}


# -- main ---------------------------------------------------------------------------------

def generate(url, n, now=DEFAULT_NOW, seed=1, pods=8, ics_per_pod=25, accounts=400,
             open_share=0.3, due=None, due_share=0.01, force=False, chunk=20000, log=print,
             env=None):
    """Fill the store at ``url`` with ``n`` escalations; return the manifest."""
    env = dict(os.environ if env is None else env)
    env.pop("ESCALATE_NOW", None)
    started = time.perf_counter()
    postgres = is_postgres(url)
    if force:
        drop_store(url)
    if postgres and "search_path" not in url:
        ensure_pg_database(url)
    init_schema(url, env)
    from escalate_cli.config import load_settings, parse_now
    settings = load_settings(env)
    pinned = parse_now(now)
    db = open_db(url)
    if db.execute_sql('SELECT count(*) FROM "escalation"').fetchone()[0]:
        raise SystemExit(f"{url} already holds escalations: use --force to start again")
    rng = random.Random(seed)
    directory = Directory(rng, pods, ics_per_pod, accounts, pinned).build()
    log(f"directory: {pods} pods, {pods * ics_per_pod} ICs, {accounts} accounts "
        f"({time.perf_counter() - started:.1f}s)")
    shape = Shape(rng, n, open_share, due, due_share)
    times = created_times(rng, n, pinned)
    gen = Generator(rng, directory, settings, pinned, shape)
    loader = Loader(db, postgres)
    loader.begin()
    t = time.perf_counter()
    escs, clocks, acts = [], [], []
    counts = {"escalation": 0, "sla_clock": 0, "activity": 0}
    for i in range(n):
        e, c, a = gen.rows(i, i + 1, times[i])
        escs.append(e)
        clocks.extend(c)
        acts.extend(a)
        if len(escs) >= chunk or i == n - 1:
            loader.insert("escalation", ESC_COLUMNS, escs)
            loader.insert("sla_clock", CLOCK_COLUMNS, clocks)
            loader.insert("activity", ACTIVITY_COLUMNS, acts)
            loader.chunk_done()
            counts["escalation"] += len(escs)
            counts["sla_clock"] += len(clocks)
            counts["activity"] += len(acts)
            escs, clocks, acts = [], [], []
            if (i + 1) % (chunk * 10) == 0 or i == n - 1:
                log(f"  {i + 1:,} escalations ({time.perf_counter() - t:.0f}s)")
    counter = [(day, last) for day, last in gen.day_seq.items()]
    cur = db.connection().cursor()
    if postgres:
        cur.executemany('INSERT INTO "code_counter" ("day", "last") VALUES (%s, %s)', counter)
    else:
        cur.executemany('INSERT INTO "code_counter" ("day", "last") VALUES (?, ?)',
                        [(d.isoformat(), last) for d, last in counter])
    log(f"rows loaded ({time.perf_counter() - t:.1f}s); rebuilding indexes")
    loader.finish(log)
    busiest = directory.pods[0]
    manifest = {
        "n": n, "seed": seed, "now": pinned.isoformat(), "store": "postgres" if postgres else "sqlite",
        "pods": pods, "accounts": accounts, "open": gen.stats["open"],
        "due_clocks": gen.stats["due_clocks"], "hold_due": gen.stats["hold_due"],
        "by_status": gen.stats["by_status"], "rows": counts,
        "manager": busiest["manager_login"], "pod": busiest["name"],
        "ic": _first_ic_login(busiest),
        "coo": "olivia.park", "admin": "admin",
        "account": directory.accounts[0]["name"],
        "generated_seconds": round(time.perf_counter() - started, 1),
    }
    write_manifest(db, postgres, manifest)
    if postgres:
        db.connection().commit()
    db.close()
    log(f"done: {n:,} escalations, {gen.stats['open']:,} open, {gen.stats['due_clocks']:,} clocks "
        f"due at {now} ({manifest['generated_seconds']}s)")
    return manifest


def _first_ic_login(pod):
    from escalate_cli.models import User
    return User.get_by_id(pod["ics"][0]).login


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--db", required=True, metavar="URL", help="sqlite:///FILE or postgresql://.../DB")
    p.add_argument("-n", "--escalations", type=int, default=10000)
    p.add_argument("--now", default=DEFAULT_NOW, help=f"the benchmark's pinned now [{DEFAULT_NOW}]")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--pods", type=int, default=8)
    p.add_argument("--ics-per-pod", type=int, default=25)
    p.add_argument("--accounts", type=int, default=400)
    p.add_argument("--open-share", type=float, default=0.3, help="share of escalations open [0.3]")
    p.add_argument("--due", type=int, default=None,
                   help="open escalations due for a warning or breach at --now [1%% of open]")
    p.add_argument("--force", action="store_true", help="drop the store first")
    args = p.parse_args(argv)
    generate(args.db, args.escalations, now=args.now, seed=args.seed, pods=args.pods,
             ics_per_pod=args.ics_per_pod, accounts=args.accounts, open_share=args.open_share,
             due=args.due, force=args.force)


if __name__ == "__main__":
    main()
