"""Packaging: the wheel that `pip install .` (or `pipx install .`) builds holds the package,
its commands, the jobs and every template, declares the `escalate` command and pinned
dependencies, and works on its own, away from the source tree."""
import pathlib
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
SKIP = {".git", ".venv", "venv", "build", "dist", "__pycache__", ".pytest_cache", ".hypothesis",
        "data", "results"}


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """``pip wheel . --no-deps`` of a copy of the source tree (so the build leaves nothing
    in the working tree)."""
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    shutil.copytree(ROOT, src, ignore=lambda folder, names: [
        n for n in names if n in SKIP or n.endswith((".egg-info", ".db", ".db-wal", ".db-shm"))])
    out = tmp / "dist"
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", ".", "--no-deps", "-q",
                        "-w", str(out)], cwd=src, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    (built,) = out.glob("escalate-*.whl")
    return built


def _names(wheel):
    with zipfile.ZipFile(wheel) as z:
        return set(z.namelist())


def _metadata(wheel, name):
    with zipfile.ZipFile(wheel) as z:
        (path,) = [n for n in z.namelist() if n.endswith(f".dist-info/{name}")]
        return z.read(path).decode()


def test_the_wheel_holds_package_commands_jobs_and_templates(wheel):
    names = _names(wheel)
    for folder, pattern in (("escalate_cli", "*.py"), ("escalate_cli/commands", "*.py"),
                            ("jobs", "*.py"), ("templates", "*.j2")):
        expected = {p.name for p in (ROOT / folder).glob(pattern)}
        target = "escalate_templates" if folder == "templates" else folder
        packed = {n.rsplit("/", 1)[1] for n in names if n.rsplit("/", 1)[0] == target}
        assert expected and expected <= packed, (folder, expected - packed)
    assert "escalate_templates/__init__.py" in names
    assert not any(n.startswith(("tests/", "bench/", "docs/")) for n in names)
    entry_points = _metadata(wheel, "entry_points.txt")
    assert re.search(r"^escalate = escalate_cli\.cli:main$", entry_points, re.M)


def test_dependencies_are_pinned_with_ranges(wheel):
    requires = [line.split(":", 1)[1].strip() for line in _metadata(wheel, "METADATA").splitlines()
                if line.startswith("Requires-Dist:")]
    runtime = [r for r in requires if "extra ==" not in r]
    named = {re.split(r"[<>=!~ ;\[]", r, 1)[0].lower() for r in runtime}
    assert {"click", "peewee", "tabulate", "jinja2", "schedule", "yagmail"} <= named
    for requirement in requires:
        assert ">=" in requirement, f"no lower bound: {requirement}"
        if not requirement.startswith("tzdata"):       # time zone data must never be held back
            assert "<" in requirement, f"no upper bound: {requirement}"


def test_the_wheel_works_away_from_the_source(wheel, tmp_path):
    """Unpacked, with the source tree out of reach: the command, its templates and its jobs."""
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        z.extractall(site)
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HOME": str(work),
           "ESCALATE_DB": f"sqlite:///{work}/e.db", "ESCALATE_CONFIG": str(work / "none.toml"),
           "ESCALATE_NOW": "2024-11-29T08:15:00-05:00", "NO_COLOR": "1", "LANG": "C.UTF-8"}

    def escalate(*args):
        r = subprocess.run([sys.executable, "-m", "escalate_cli", *args], cwd=work, env=env,
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, (args, r.stderr)
        return r.stdout
    where = subprocess.run([sys.executable, "-c", "import escalate_cli, escalate_templates, jobs; "
                            "print(escalate_cli.__file__, escalate_templates.__file__, "
                            "jobs.__file__)"], cwd=work, env=env, capture_output=True, text=True)
    assert where.stdout.split() and all(p.startswith(str(site)) for p in where.stdout.split()), \
        where.stdout + where.stderr
    from escalate_cli import __version__
    assert escalate("--version").strip() == f"escalate, version {__version__}"
    escalate("init", "--demo")
    preview = escalate("--as", "sarah.martinez", "email", "ESC-2024-11-28-001", "--template",
                       "client-apology", "--preview", "--var", "billed_rate=120",
                       "--var", "hours=160")
    assert preview.startswith("Subject: Re: Invoice Issue - Sarah Chen Contract\n\nHi Jane,")
    plan = escalate("jobs", "sla-sweep", "--dry-run", "--format", "json",
                    "--now", "2024-11-29T09:05:00-05:00")
    assert '"action": "breach"' in plan
    assert "completion" in escalate("--help")
