"""The README's walk-through is a real terminal session, so it cannot rot.

Every ```console block of README.md is a piece of one session: lines starting with "$ " are
commands (continued by lines starting with "> "), the lines under a command are what it
printed. This test runs those commands with bash in a fresh store, in a pseudo-terminal as
wide as ``COLUMNS`` (so stdout and stderr interleave as a reader sees them; NO_COLOR, so no
colour codes), against a local SMTP server, and compares what each command printed with the
README. A ```text block right after an HTML comment ``<!-- mail to ADDRESS: SUBJECT -->`` is
the plain-text part of the email the SMTP server received with that subject.

After a deliberate change of output, regenerate the README's outputs with:

    python tests/test_readme.py --update
"""
import difflib
import os
import pathlib
import re
import shlex
import sys
from dataclasses import dataclass, field

HERE = pathlib.Path(__file__).resolve().parent
README = HERE.parent / "README.md"
COLUMNS = 140                       # the terminal the session is recorded in
README_DB = "sqlite:///tmp/escalate-walkthrough.db"
README_DB_FILE = "/tmp/escalate-walkthrough.db"
README_SMTP_PORT = "8025"
MARK = "@@escalate-readme-command@@"
MAIL = re.compile(r"<!-- mail to (\S+): (.+?) -->\s*\n```text\n(.*?)```", re.S)


@dataclass
class Command:
    text: str                       # as typed, with its continuation lines
    expected: list = field(default_factory=list)
    line: int = 0                   # where it starts in README.md (1-based)


def parse(readme):
    """The commands of every ```console block, in order, with the output printed under each."""
    commands, inside = [], False
    for number, line in enumerate(readme.splitlines(), 1):
        if line.startswith("```"):
            inside = line.strip() == "```console" if not inside else False
            continue
        if not inside:
            continue
        if line.startswith("$ "):
            commands.append(Command(line[2:], line=number))
        elif line.startswith("> ") and commands and not commands[-1].expected:
            commands[-1].text += "\n" + line[2:]
        elif commands:
            commands[-1].expected.append(line.rstrip())
    return commands


def mails(readme):
    """(recipient, subject, text) of each mail block."""
    return [(to, subject, text) for to, subject, text in MAIL.findall(readme)]


def _localise(text, db_url, smtp_port, db_file):
    """A README command as run here: this test's store and SMTP server."""
    text = text.replace(README_DB, shlex.quote(db_url))
    text = text.replace(README_DB_FILE, shlex.quote(db_file))
    return re.sub(r"\bESCALATE_SMTP_PORT=" + README_SMTP_PORT + r"\b",
                  f"ESCALATE_SMTP_PORT={smtp_port}", text)


def run_session(commands, env, workdir, db_url, smtp_port):
    """Run the commands in one bash in a pseudo-terminal; each command's output, as lines."""
    import pexpect
    from escalate_cli.db import redact_url
    script = ["set -u"]
    for i, command in enumerate(commands):
        script.append(f"printf '%s\\n' '{MARK}{i}'")
        script.append(_localise(command.text, db_url, smtp_port, str(workdir / "walkthrough.db")))
    path = workdir / "session.sh"
    path.write_text("\n".join(script) + "\n")
    child = pexpect.spawn("bash", ["--noprofile", "--norc", str(path)], env=env,
                          cwd=str(workdir), dimensions=(60, COLUMNS), encoding="utf-8",
                          timeout=300)
    child.expect(pexpect.EOF)
    child.close()
    text = child.before.replace("\r\n", "\n").replace(redact_url(db_url), README_DB)
    outputs = {}
    for chunk in text.split(MARK)[1:]:
        number, _, body = chunk.partition("\n")
        outputs[int(number)] = [line.rstrip() for line in body.split("\n")]
    for lines in outputs.values():
        while lines and not lines[-1]:
            lines.pop()
    assert child.exitstatus == 0, f"the session stopped: {text[-3000:]}"
    return [outputs.get(i, []) for i in range(len(commands))]


def session_env(base_env, tmp_path):
    env = dict(os.environ)
    env.update({k: v for k, v in base_env.items() if v})
    for key in ("ESCALATE_USER", "ESCALATE_NOW", "ESCALATE_DB", "ESCALATE_SMTP_HOST",
                "ESCALATE_SMTP_PORT", "ESCALATE_SMS_URL", "ESCALATE_TEMPLATES", "COLUMNS",
                "LINES"):
        env.pop(key, None)
    env.update({"NO_COLOR": "1", "PAGER": "cat", "TERM": "xterm", "EDITOR": "false",
                "HOME": str(tmp_path),
                "PATH": str(pathlib.Path(sys.executable).parent) + os.pathsep + env["PATH"]})
    return env


def received(smtp, to, subject):
    found = [m for m in smtp.messages if to in m.rcpt_tos and m.subject.startswith(subject)]
    assert len(found) == 1, (to, subject, [m.subject for m in smtp.messages])
    return found[0].text("text/plain")


def test_readme_walkthrough_is_a_real_session(db_url, base_env, tmp_path, smtp):
    readme = README.read_text()
    commands = parse(readme)
    assert len(commands) > 20 and any(c.text.startswith("escalate jobs digest") for c in commands)
    outputs = run_session(commands, session_env(base_env, tmp_path), tmp_path, db_url,
                          smtp.port)
    problems = []
    for command, actual in zip(commands, outputs):
        if actual != command.expected:
            diff = "\n".join(difflib.unified_diff(command.expected, actual, "README.md", "actual",
                                                  lineterm=""))
            problems.append(f"README.md line {command.line}: $ {command.text}\n{diff}")
    for to, subject, text in mails(readme):
        got = received(smtp, to, subject)
        if got.rstrip("\n") != text.rstrip("\n"):
            diff = "\n".join(difflib.unified_diff(text.splitlines(), got.splitlines(),
                                                  "README.md", "received", lineterm=""))
            problems.append(f"mail to {to}: {subject}\n{diff}")
    assert not problems, ("The README's session differs from what the commands print "
                          "(python tests/test_readme.py --update):\n\n" + "\n\n".join(problems))


# -- regenerating the README's outputs ---------------------------------------------------------

def update(readme_path=README):
    """Run the session on a fresh SQLite store and write every output back into the README."""
    import tempfile
    sys.path.insert(0, str(HERE))
    from smtp_server import SmtpServer
    readme = readme_path.read_text()
    commands = parse(readme)
    server = SmtpServer().start()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            tmp = pathlib.Path(tmp)
            config = tmp / "config.toml"
            config.write_text('company = "InTime"\ntimezone = "America/New_York"\n')
            db_url = f"sqlite:///{tmp}/walkthrough.db"
            base = {"ESCALATE_CONFIG": str(config), "XDG_DATA_HOME": str(tmp / "data"),
                    "ESCALATE_SMTP_HOST": "127.0.0.1"}
            outputs = run_session(commands, session_env(base, tmp), tmp, db_url, server.port)
        lines = readme.splitlines()
        for command, output in sorted(zip(commands, outputs), key=lambda p: -p[0].line):
            start = command.line - 1 + command.text.count("\n") + 1
            end = start + len(command.expected)
            lines[start:end] = output
        readme = "\n".join(lines) + "\n"
        for to, subject, text in mails(readme):
            got = received(server, to, subject)
            readme = readme.replace(f"<!-- mail to {to}: {subject} -->\n```text\n{text}```",
                                    f"<!-- mail to {to}: {subject} -->\n```text\n"
                                    f"{got.rstrip()}\n```")
    finally:
        server.stop()
    readme_path.write_text(readme)


if __name__ == "__main__":
    if sys.argv[1:] != ["--update"]:
        sys.exit("usage: python tests/test_readme.py --update")
    update()
    print(f"updated {README}")
