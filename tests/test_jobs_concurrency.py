"""Sweeps racing as real processes, on both stores: every warning and breach told once."""
import pytest

from jobs_helpers import at, create, proc_env, query, settle_demo, spawn

pytestmark = pytest.mark.slow


def race(base_env, n, *args):
    procs = [spawn(proc_env(base_env), *args) for _ in range(n)]
    results = [(p.wait(timeout=120), *p.communicate()) for p in procs]
    assert all(code == 0 for code, _, _ in results), results
    return results


def counts(db_url):
    acts = query(db_url, 'SELECT "escalation_id", "type", COUNT(*) AS "n" FROM "activity" '
                         'WHERE "type" IN (\'sla_warning\', \'sla_breach\') '
                         'GROUP BY "escalation_id", "type"')
    notes = query(db_url, 'SELECT "kind", COUNT(*) AS "n" FROM "notification" '
                          'WHERE "kind" LIKE ? GROUP BY "kind"', "sla.%")
    evs = query(db_url, 'SELECT "name", COUNT(*) AS "n" FROM "event" '
                        'WHERE "name" LIKE ? GROUP BY "name"', "escalation.sla_%")
    mails = query(db_url, 'SELECT "template", COUNT(*) AS "n" FROM "outbox" '
                          'WHERE "template" LIKE ? GROUP BY "template"', "sla-%")
    return ({(a["escalation_id"], a["type"]): a["n"] for a in acts},
            {n["kind"]: n["n"] for n in notes}, {e["name"]: e["n"] for e in evs},
            {m["template"]: m["n"] for m in mails})


@pytest.mark.parametrize("lock", [True, False], ids=["locked", "no-lock"])
def test_concurrent_sweeps_tell_everyone_exactly_once(run, demo, db_url, base_env, config_file, lock):
    config_file.write_text(config_file.read_text() + "[jobs]\nbatch = 3\n")   # many small batches
    settle_demo(run)
    for i in range(6):
        create(run, f"Critical {i}", "critical", at("2024-12-02 09:00"))
    for i in range(4):
        create(run, f"High {i}", "high", at("2024-12-02 09:00"))
    extra = [] if lock else ["--no-lock"]
    race(base_env, 3, "jobs", "sla-sweep", "--now", at("2024-12-02 09:50"), *extra)
    race(base_env, 3, "jobs", "sla-sweep", "--now", at("2024-12-02 10:05"), *extra)
    race(base_env, 3, "jobs", "sla-sweep", "--now", at("2024-12-02 12:05"), *extra)
    race(base_env, 3, "jobs", "sla-sweep", "--now", at("2024-12-02 13:05"), *extra)
    acts, notes, evs, mails = counts(db_url)
    assert set(acts.values()) == {1} and len(acts) == 20      # 10 warnings + 10 breaches
    assert evs == {"escalation.sla_warning": 10, "escalation.sla_breached": 10}
    # warnings: Sarah (pod manager) x 10; breaches: Sarah + CEO x 6, Sarah + COO x 4
    assert notes == {"sla.warning": 10, "sla.breached": 20}
    assert mails == {"sla-warning": 10, "sla-breach": 20}
    sms = query(db_url, 'SELECT COUNT(*) AS "n" FROM "outbox" WHERE "channel" = ? '
                        'AND "key" LIKE ?', "sms", "sms:sla-%")
    assert sms[0]["n"] == 6 + 12                              # critical: warnings and breaches
