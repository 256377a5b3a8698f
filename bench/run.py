"""Time whole processes of the installed ``escalate`` beside their floors, on both stores.

    python bench/run.py --sizes 10000,100000 --stores sqlite,postgres

For each store and size it generates the data once (bench/data/, reused on later runs),
then times every command as a user runs it: a new process of the console script next to
this interpreter, one warm-up, then ``--runs`` timed runs (median, min, max), alternating
with its floor measured the same way in the same run, so the ratio survives a noisy
machine. Peak memory is the child's maximum resident set size from the OS (``wait4``).
Commands that change data find the same state at every run (see store.Snapshot). Commands
not on this branch yet are skipped with a note. The table goes to stdout, the figures to
bench/results/latest.json.
"""
import argparse
import datetime as dt
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import generate  # noqa: E402
from store import Snapshot, Store  # noqa: E402

BIN = os.path.dirname(sys.executable)
PY = sys.executable
ESCALATE = os.path.join(BIN, "escalate")
DEFAULT_PG = "postgresql://postgres@127.0.0.1:5432"
DELIVER_MESSAGES = 1000
TARGETS = {   # what the issue asks, for the table's verdict column
    "--help": ("ratio", 1.2), "show": ("ratio", 1.2), "list": ("ratio", 1.2),
    "claim": ("ratio", 1.2), "create": ("ratio", 1.2), "search": ("seconds", 1.0),
    "report": ("seconds", 1.0), "jobs sla-sweep": ("ratio", 3.0),
}
PEAK_MB_TARGET = 100


# -- one process, timed ---------------------------------------------------------------------

def timed(argv, env):
    """Run ``argv``; return (wall seconds, peak RSS MB, exit code, stdout, stderr, CPU seconds).

    Through launch.py, a small process, so that the runner's memory is not counted.
    """
    with tempfile.TemporaryDirectory() as tmp:
        out, err = os.path.join(tmp, "out"), os.path.join(tmp, "err")
        result = subprocess.run([PY, os.path.join(HERE, "launch.py"), out, err] + list(argv),
                                env=env, capture_output=True, text=True, check=True)
        r = json.loads(result.stdout)
        with open(out, "rb") as o, open(err, "rb") as e:
            return (r["wall"], r["maxrss_kb"] / 1024.0, r["rc"],
                    o.read().decode(errors="replace"), e.read().decode(errors="replace"), r["cpu"])


def summary(samples):
    walls = [s[0] for s in samples]
    return {"median": statistics.median(walls), "min": min(walls), "max": max(walls),
            "runs": [round(w, 4) for w in walls], "peak_mb": round(max(s[1] for s in samples), 1),
            "cpu_median": round(statistics.median(s[5] for s in samples), 4)}


# -- what is measured -----------------------------------------------------------------------

class Bench:
    """One store at one size: its URL, manifest, environment and reusable state."""

    def __init__(self, store, n, url, manifest, config, smtp_port):
        self.store, self.n, self.url, self.m = store, n, url, manifest
        self.raw = Store(url)
        # A user's install has its bytecode compiled (pip does it): never time compilation.
        self.env = {k: v for k, v in os.environ.items()
                    if not k.startswith("ESCALATE_") and k != "PYTHONDONTWRITEBYTECODE"}
        self.env.update(ESCALATE_DB=url, ESCALATE_CONFIG=config, ESCALATE_NOW=manifest["now"],
                        NO_COLOR="1", ESCALATE_SMTP_HOST="127.0.0.1",
                        ESCALATE_SMTP_PORT=str(smtp_port or 2525))
        self.now = dt.datetime.fromisoformat(manifest["now"]).astimezone(dt.timezone.utc).replace(tzinfo=None)
        self.now_sql = self.now.isoformat(" ")
        self._codes = {}

    def as_user(self, login):
        return dict(self.env, ESCALATE_USER=login)

    def code(self, which):
        """A code to show (an owned one of the manager's pod) or to claim (a pending one)."""
        if which not in self._codes:
            status, owner = ("pending", "IS NULL") if which == "claim" else ("in_progress", "IS NOT NULL")
            rows = self.raw.query(
                f'SELECT e."code" FROM "escalation" e JOIN "pod" p ON p."id" = e."pod_id" '
                f'WHERE p."name" = ? AND e."status" = ? AND e."owner_id" {owner} ORDER BY e."id"',
                (self.m["pod"], status))
            if not rows:
                raise RuntimeError(f"no {status} escalation in {self.m['pod']} to {which}")
            self._codes[which] = rows[len(rows) // 2][0]
        return self._codes[which]

    def queue_env(self):
        """The environment of the list floor: the candidate SQL escalate runs for this manager."""
        from types import SimpleNamespace
        from escalate_cli.queue import candidate_ids
        login = self.m["manager"]
        uid, role, pod_id = self.raw.query('SELECT "id", "role", "pod_id" FROM "user" WHERE "login" = ?',
                                           (login,))[0]
        pods = [r[0] for r in self.raw.query('SELECT "id" FROM "pod" WHERE "manager_id" = ?', (uid,))]
        if pod_id and pod_id not in pods:
            pods.append(pod_id)
        sql, params = candidate_ids(SimpleNamespace(id=uid, role=role),
                                    ["pending", "in_progress", "on_hold", "escalated"], pods, None, 200,
                                    "postgres" if self.raw.pg else "sqlite")
        return {"BENCH_QUEUE_SQL": json.dumps([sql, params])}

    def due_counts(self):
        return (self.raw.value('SELECT count(*) FROM "sla_clock" WHERE "next_check_at" <= ?', (self.now_sql,)),
                self.raw.value('SELECT count(*) FROM "escalation" WHERE "status" = \'on_hold\' '
                               'AND "hold_until" <= ?', (self.now_sql,)))

    def queue_outbox(self, count):
        """``count`` rendered emails waiting for the deliverer."""
        rows = [(f"bench:{i}:{time.time_ns()}", "email", json.dumps({"to": [f"person{i}@example.com"],
                                                                     "cc": [], "bcc": []}),
                 f"Benchmark message {i}", f"Hello {i},\n\nThis is benchmark message {i}.\n",
                 "queued", 0, self.now_sql if not self.raw.pg else self.now,
                 self.now_sql if not self.raw.pg else self.now) for i in range(count)]
        self.raw.write([('INSERT INTO "outbox" ("key", "channel", "recipients", "subject", "body_text", '
                         '"status", "attempts", "next_attempt_at", "created_at") '
                         'VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)', rows)])


class Command:
    def __init__(self, name, argv, user, floor=None, probe=None, touched=None, mutates=False,
                 setup=None, check=None, env=None, note=""):
        self.name, self.argv, self.user, self.floor, self.extra_env = name, argv, user, floor, env
        self.probe = probe if probe is not None else name.split()
        self.touched, self.mutates, self.setup, self.check, self.note = touched, mutates, setup, check, note


def commands():
    app = [PY, os.path.join(HERE, "floor_app.py")]
    raw = [PY, os.path.join(HERE, "floor_raw.py")]
    esc_rows = lambda code: [("escalation", f"SELECT \"id\" FROM \"escalation\" WHERE \"code\" = '{code}'"),  # noqa: E731
                             ("sla_clock", f"SELECT c.\"id\" FROM \"sla_clock\" c JOIN \"escalation\" e "
                                           f"ON e.\"id\" = c.\"escalation_id\" WHERE e.\"code\" = '{code}'")]

    def sweep_rows(b):
        due = (f"SELECT \"escalation_id\" FROM \"sla_clock\" WHERE \"next_check_at\" <= '{b.now_sql}' "
               f"UNION SELECT \"id\" FROM \"escalation\" WHERE \"status\" = 'on_hold' "
               f"AND \"hold_until\" <= '{b.now_sql}'")
        return [("escalation", due),
                ("sla_clock", f"SELECT \"id\" FROM \"sla_clock\" WHERE \"escalation_id\" IN ({due})")]

    def create_args(b):
        return ["create", "--title", "Client disputes the overtime rate on the December invoice",
                "--category", "Client Complaint", "--priority", "high", "--account", b.m["account"],
                "--description", "Client says overtime was billed at 1.5x without approval."]

    return [
        Command("--help", lambda b: ["--help"], None, floor=lambda b: [PY, "-c", "import click"],
                probe=[]),
        Command("show", lambda b: ["show", b.code("show")], "manager",
                floor=lambda b: app + ["show", b.code("show")]),
        Command("list", lambda b: ["list"], "manager", floor=lambda b: app + ["list"],
                env=lambda b: b.queue_env(), note="manager's queue"),
        Command("claim", lambda b: ["claim", b.code("claim")], "manager",
                floor=lambda b: app + ["claim", b.code("claim")],
                touched=lambda b: esc_rows(b.code("claim")), mutates=True),
        Command("create", create_args, "ic",
                floor=lambda b: app + create_args(b),
                mutates=True),
        Command("search", lambda b: ["search", "invoice overtime"], "manager"),
        Command("report", lambda b: ["report"], "coo"),
        Command("jobs sla-sweep", lambda b: ["jobs", "sla-sweep"], "admin",
                floor=lambda b: raw + ["sweep"], touched=sweep_rows, mutates=True,
                check=lambda b: b.due_counts()),
        Command("jobs digest", lambda b: ["jobs", "digest"], "admin", mutates=True),
        Command("jobs deliver", lambda b: ["jobs", "deliver"], "admin",
                floor=lambda b: raw + ["deliver"], mutates=True,
                setup=lambda b: b.queue_outbox(DELIVER_MESSAGES),
                note=f"{DELIVER_MESSAGES} messages to a local SMTP server"),
    ]


def available(cmd, env):
    """Is the command on this branch? (``--help`` of a missing one exits 2.)"""
    if not cmd.probe:
        return True
    result = subprocess.run([ESCALATE] + cmd.probe + ["--help"], capture_output=True, env=env)  # also compiles
    return result.returncode == 0


def measure(b, cmd, runs, warmup, log):
    """Time the command and its floor alternately; return a result dict."""
    user = b.m.get(cmd.user) if cmd.user else None
    env = b.as_user(user) if user else dict(b.env)
    if cmd.extra_env:
        env.update(cmd.extra_env(b))
    row = {"command": cmd.name, "store": b.store, "n": b.n, "note": cmd.note}
    if not available(cmd, env):
        row.update(status="skipped", note="not on this branch yet")
        return row
    argv = [ESCALATE] + cmd.argv(b)
    floor = cmd.floor(b) if cmd.floor else None
    snap = Snapshot(b.raw, cmd.touched(b) if cmd.touched else ()) if cmd.mutates else None
    before = cmd.check(b) if cmd.check else None
    samples, floor_samples, outputs = [], [], []
    smtp_counts = []
    for i in range(warmup + runs):
        for which in (("floor", "cmd") if i % 2 else ("cmd", "floor")):
            target = argv if which == "cmd" else floor
            if target is None:
                continue
            if snap:
                snap.take()
            if cmd.setup:
                cmd.setup(b)
            received = SMTP.count if SMTP else 0
            result = timed(target, env)
            if SMTP:
                smtp_counts.append((which, SMTP.count - received))
            after = cmd.check(b) if (cmd.check and which == "cmd" and i == 0) else None
            if snap:
                snap.restore()
            if result[2] != 0:
                what = "command" if which == "cmd" else "floor"
                line = (result[4].strip().splitlines() or ["(no message)"])[-1]
                row.update(status="error", note=f"{what} exit {result[2]}: {line[:160]}")
                log(f"    {cmd.name}: {row['note']}")
                return row
            if i >= warmup:
                (samples if which == "cmd" else floor_samples).append(result)
            if which == "cmd" and i == 0:
                outputs.append(result[3][-400:])
                if after is not None:
                    row["acted_on"] = {"due_clocks": before[0], "hold_resumes": before[1],
                                       "left_due_after_run": list(after)}
    if cmd.check:
        now_counts = cmd.check(b)
        if list(now_counts) != list(before):
            row["reset_warning"] = f"due counts {before} -> {now_counts} after the runs"
    row.update(status="ok", **summary(samples))
    if floor_samples:
        f = summary(floor_samples)
        row["floor"] = {k: f[k] for k in ("median", "min", "max", "runs", "peak_mb", "cpu_median")}
        row["ratio"] = round(row["median"] / f["median"], 2)
        # CPU time of the process (not of the PostgreSQL server): steadier on a busy machine
        row["cpu_ratio"] = round(row["cpu_median"] / f["cpu_median"], 2) if f["cpu_median"] else None
    if smtp_counts:
        row["smtp_received"] = sorted({c for w, c in smtp_counts if w == "cmd"})
    row["median"], row["min"], row["max"] = (round(row[k], 4) for k in ("median", "min", "max"))
    target = TARGETS.get(cmd.name)
    if target:
        kind, limit = target
        value = row.get("ratio") if kind == "ratio" else row["median"]
        row["target"] = f"{'ratio' if kind == 'ratio' else 'median'} <= {limit}"
        row["met"] = bool(value is not None and value <= limit and row["peak_mb"] < PEAK_MB_TARGET)
    return row


# -- the SMTP server the deliverer talks to ---------------------------------------------------

class _Smtp:
    def __init__(self):
        from aiosmtpd.controller import Controller

        class Handler:
            async def handle_DATA(inner, server, session, envelope):  # noqa: N805
                self.count += 1
                return "250 OK"

        import socket
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.count = 0
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)
        self.controller.start()

    def stop(self):
        self.controller.stop()


SMTP = None


# -- stores ---------------------------------------------------------------------------------

def store_url(store, n, data_dir, pg_base):
    if store == "sqlite":
        return f"sqlite:///{os.path.abspath(os.path.join(data_dir, f'sqlite-{n}.db'))}"
    return f"{pg_base.rstrip('/')}/escalate_bench_{n}"


def ensure_store(url, n, regenerate, due, log):
    manifest = None
    if not regenerate:
        try:
            s = Store(url)
            try:
                rows = s.query('SELECT "key", "value" FROM "bench_manifest"')
                manifest = {k: json.loads(v) for k, v in rows}
            finally:
                s.close()
        except Exception:  # noqa: BLE001 - no such file, database or table: generate it
            manifest = None
    if manifest and manifest.get("n") == n and (due is None or manifest.get("due_clocks") == due):
        generate.init_schema(url, os.environ)      # migrations merged since it was generated
        return manifest
    log(f"generating {n:,} escalations at {url}")
    return generate.generate(url, n, due=due, force=True, log=lambda m: log("  " + m))


def machine():
    model = ""
    try:
        with open("/proc/cpuinfo") as fh:
            model = next((line.split(":", 1)[1].strip() for line in fh if line.startswith("model name")), "")
    except OSError:
        pass
    return {"cpu": model, "cores": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform(), "date": dt.datetime.now().isoformat(timespec="seconds"),
            "interpreter": sys.executable}


# -- output ---------------------------------------------------------------------------------

def fmt_s(v):
    return "-" if v is None else (f"{v * 1000:.0f} ms" if v < 1 else f"{v:.2f} s")


def table(rows):
    head = ["command", "store", "N", "median", "min-max", "floor", "ratio", "cpu ratio", "peak MB",
            "target", "note"]
    lines = []
    for r in rows:
        if r["status"] != "ok":
            lines.append([r["command"], r["store"], f"{r['n']:,}", "-", "-", "-", "-", "-", "-", "-",
                          f"{r['status']}: {r['note']}"])
            continue
        floor = r.get("floor", {}).get("median")
        verdict = "" if "met" not in r else ("met" if r["met"] else "MISSED")
        note = r.get("note", "")
        if r.get("acted_on"):
            note = (note + "; " if note else "") + f"acts on {r['acted_on']['due_clocks']} due clocks"
        lines.append([r["command"], r["store"], f"{r['n']:,}", fmt_s(r["median"]),
                      f"{fmt_s(r['min'])}-{fmt_s(r['max'])}", fmt_s(floor),
                      f"{r['ratio']:.2f}" if "ratio" in r else "-",
                      f"{r['cpu_ratio']:.2f}" if r.get("cpu_ratio") else "-", f"{r['peak_mb']:.0f}",
                      verdict, note])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *lines)]
    out = ["  ".join(str(x).ljust(w) for x, w in zip(head, widths)).rstrip(),
           "  ".join("-" * w for w in widths)]
    out += ["  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip() for line in lines]
    return "\n".join(out)


def markdown(rows):
    out = ["| command | store | N | median | min-max | floor | ratio | cpu ratio | peak MB | target |",
           "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        if r["status"] != "ok":
            out.append(f"| {r['command']} | {r['store']} | {r['n']:,} | - | - | - | - | - | - | "
                       f"{r['status']}: {r['note']} |")
            continue
        floor = r.get("floor", {}).get("median")
        verdict = "" if "met" not in r else ("met" if r["met"] else "**missed**")
        if r.get("acted_on"):
            verdict += f" ({r['acted_on']['due_clocks']} due)"
        ratio = f"{r['ratio']:.2f}" if "ratio" in r else "-"
        cpu = f"{r['cpu_ratio']:.2f}" if r.get("cpu_ratio") else "-"
        out.append(f"| {r['command']} | {r['store']} | {r['n']:,} | {fmt_s(r['median'])} | "
                   f"{fmt_s(r['min'])}-{fmt_s(r['max'])} | {fmt_s(floor)} | {ratio} | {cpu} | "
                   f"{r['peak_mb']:.0f} | {verdict.strip()} |")
    return "\n".join(out)


def main(argv=None):
    global SMTP
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sizes", default="10000,100000", help="escalation counts [10000,100000]")
    p.add_argument("--stores", default="sqlite,postgres", help="sqlite,postgres")
    p.add_argument("--commands", default=None, help="only these (comma-separated names)")
    p.add_argument("--runs", type=int, default=5, help="timed runs per command [5]")
    p.add_argument("--warmup", type=int, default=1, help="untimed runs first [1]")
    p.add_argument("--data-dir", default=os.path.join(HERE, "data"))
    p.add_argument("--pg", default=os.environ.get("ESCALATE_BENCH_PG", DEFAULT_PG),
                   help=f"PostgreSQL server URL without database [{DEFAULT_PG}]")
    p.add_argument("--url", action="append", default=[],
                   help="benchmark this generated store instead of --sizes/--stores (repeatable)")
    p.add_argument("--due", type=int, default=None, help="generate with this many due clocks")
    p.add_argument("--regenerate", action="store_true", help="generate the data again")
    p.add_argument("--out", default=os.path.join(HERE, "results", "latest.json"))
    p.add_argument("--merge", action="store_true",
                   help="keep the other rows of --out, replacing those measured now")
    p.add_argument("--markdown", action="store_true", help="also print the table as Markdown")
    args = p.parse_args(argv)
    log = lambda m: print(m, file=sys.stderr, flush=True)  # noqa: E731
    if not os.path.exists(ESCALATE):
        raise SystemExit(f"no escalate console script next to {sys.executable}: pip install . first")
    os.makedirs(args.data_dir, exist_ok=True)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    wanted = set(args.commands.split(",")) if args.commands else None
    cmds = [c for c in commands() if wanted is None or c.name in wanted]
    if any(c.name == "jobs deliver" for c in cmds):
        try:
            SMTP = _Smtp()
        except ImportError:
            log("aiosmtpd is not installed: jobs deliver will be skipped")
            cmds = [c for c in cmds if c.name != "jobs deliver"]
    config = os.path.join(tempfile.mkdtemp(prefix="escalate-bench-"), "config.toml")
    with open(config, "w") as fh:
        fh.write('company = "InTime"\ntimezone = "America/New_York"\n'
                 f'[smtp]\nhost = "127.0.0.1"\nport = {SMTP.port if SMTP else 2525}\n')
    gen_env = {"ESCALATE_CONFIG": config}
    os.environ.update(gen_env)
    targets = []
    if args.url:
        for url in args.url:
            targets.append((url, None))
    else:
        for store in args.stores.split(","):
            for n in (int(x) for x in args.sizes.split(",")):
                targets.append((store_url(store, n, args.data_dir, args.pg), n))
    results = []
    try:
        for url, n in targets:
            if n is None:
                s = Store(url)
                manifest = {k: json.loads(v) for k, v in s.query('SELECT "key", "value" FROM "bench_manifest"')}
                s.close()
            else:
                manifest = ensure_store(url, n, args.regenerate, args.due, log)
            store = "postgres" if generate.is_postgres(url) else "sqlite"
            b = Bench(store, manifest["n"], url, manifest, config, SMTP.port if SMTP else None)
            log(f"{store} {manifest['n']:,} escalations ({manifest['open']:,} open, "
                f"{manifest['due_clocks']:,} clocks due at {manifest['now']})")
            for cmd in cmds:
                t = time.perf_counter()
                row = measure(b, cmd, args.runs, args.warmup, log)
                results.append(row)
                log(f"  {cmd.name:<16} {row['status']:<8} "
                    f"{fmt_s(row.get('median')) if row['status'] == 'ok' else row['note']} "
                    f"({time.perf_counter() - t:.0f}s)")
            b.raw.close()
    finally:
        if SMTP:
            SMTP.stop()
    rows = results
    if args.merge and os.path.exists(args.out):
        with open(args.out) as fh:
            old = json.load(fh).get("results", [])
        keys = {(r["command"], r["store"], r["n"]) for r in results}
        rows = [r for r in old if (r["command"], r["store"], r["n"]) not in keys] + results
    order = {c.name: i for i, c in enumerate(commands())}
    rows.sort(key=lambda r: (r["n"], r["store"] != "sqlite", order.get(r["command"], 99)))
    doc = {"machine": machine(), "runs": args.runs, "warmup": args.warmup, "results": rows}
    with open(args.out, "w") as fh:
        json.dump(doc, fh, indent=1, default=str)
        fh.write("\n")
    print(table(rows))
    if args.markdown:
        print()
        print(markdown(rows))
    return doc


if __name__ == "__main__":
    main()
