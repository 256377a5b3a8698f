"""Races with real processes, on both stores."""
import os
import subprocess
import sys

CODE = "ESC-2024-11-28-001"


def spawn(env, *args):
    return subprocess.Popen([sys.executable, "-m", "escalate_cli", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def proc_env(base_env, user):
    env = dict(os.environ)
    env.update({k: v for k, v in base_env.items() if v})
    env["ESCALATE_USER"] = user
    env.pop("ESCALATE_NOW", None)
    return env


def test_simultaneous_claims_exactly_one_wins(run, demo, base_env):
    """Twenty claims at once (seventeen managers of the pod, the COO, the CEO and an admin):
    one winner; the nineteen others exit 4 naming the owner; one event."""
    managers = []
    for i in range(16):
        login = f"mgr{i}"
        r = run("user", "add", login, "--name", f"Manager {i}", "--email", f"m{i}@intime.com",
                "--role", "manager", "--pod", "Recruiting Pod A", user="admin")
        assert r.exit_code == 0, r.stderr
        managers.append(login)
    claimants = ["sarah.martinez", "olivia.park", "david.kim", "admin"] + managers
    assert len(claimants) == 20
    procs = [spawn(proc_env(base_env, login), "claim", CODE) for login in claimants]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    winners = [i for i, (code, out, err) in enumerate(results) if code == 0]
    assert len(winners) == 1, results
    owner = claimants[winners[0]]
    losers = [r for r in results if r[0] != 0]
    assert all(code == 4 for code, _, _ in losers), losers
    import json
    shown = json.loads(run("show", CODE, "--format", "json", user="admin").stdout)
    assert shown["owner"] == owner
    name = {"sarah.martinez": "Sarah Martinez", "olivia.park": "Olivia Park",
            "david.kim": "David Kim", "admin": "Escalate Admin"}.get(owner, f"Manager {owner[3:]}")
    for _, _, err in losers:
        assert err.strip() == f"Error: This escalation is already being handled by {name}", err
    events = [json.loads(x) for x in run("events", "--name", "escalation.assigned", user="admin").stdout.splitlines()]
    assert len(events) == 1


def test_simultaneous_creates_get_unique_sequential_codes(run, demo, base_env):
    env = proc_env(base_env, "john.smith")
    env["ESCALATE_NOW"] = "2024-12-02T10:00:00-05:00"
    procs = [spawn(env, "create", "--title", f"Issue {i}", "--category", "Candidate Issue",
                   "--priority", "medium", "--description", "Concurrent creation") for i in range(8)]
    outs = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    assert all(code == 0 for code, _, _ in outs), outs
    codes = sorted(out.strip() for _, out, _ in outs)
    assert codes == [f"ESC-2024-12-02-{n:03d}" for n in range(1, 9)]
