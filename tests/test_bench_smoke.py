"""The benchmark runs end to end at a smoke size (no timing asserted): bench/README in the
main README's "Performance" section tells how to run it at 10k, 100k and 1M."""
import json
import os
import sys

import pytest

BENCH = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "bench")


@pytest.fixture
def bench_modules():
    sys.path.insert(0, BENCH)
    try:
        import generate
        import run
        yield generate, run
    finally:
        sys.path.remove(BENCH)


def test_generate_then_run_every_command_once(db_url, config_file, tmp_path, bench_modules):
    generate, run = bench_modules
    env = dict(os.environ, ESCALATE_CONFIG=str(config_file))
    manifest = generate.generate(db_url, 300, pods=2, log=lambda m: None, env=env)
    assert manifest["rows"] == {"escalation": 300, "sla_clock": 600,
                                "activity": manifest["rows"]["activity"]}
    assert 5 * 300 <= manifest["rows"]["activity"] <= 7 * 300
    assert manifest["due_clocks"] >= 1

    out = tmp_path / "results.json"
    doc = run.main(["--url", db_url, "--runs", "1", "--warmup", "0", "--out", str(out)])

    rows = {r["command"]: r for r in json.loads(out.read_text())["results"]}
    assert rows == {r["command"]: r for r in json.loads(json.dumps(doc["results"], default=str))}
    for name in ("--help", "show", "list", "claim", "create"):
        assert rows[name]["status"] == "ok", rows[name]
        assert rows[name]["floor"]["median"] > 0 and rows[name]["peak_mb"] > 0
    for name in ("search", "report", "jobs sla-sweep", "jobs digest", "jobs deliver"):
        assert rows[name]["status"] in ("ok", "skipped"), rows[name]
    sweep = rows["jobs sla-sweep"]
    if sweep["status"] == "ok":
        assert sweep["acted_on"]["due_clocks"] == manifest["due_clocks"]
        assert "reset_warning" not in sweep
