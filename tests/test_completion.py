"""Shell completion: commands, options, codes, logins, teams, pods, accounts and templates,
through click's protocol for each shell and through a real bash running the script."""
import os
import pathlib
import subprocess
import sys

import pytest

CODE = "ESC-2024-11-28-001"


def complete(run, shell, words, user="sarah.martinez", env=None):
    """What the completion protocol of ``shell`` offers for the last of ``words``."""
    e = {"_ESCALATE_COMPLETE": f"{shell}_complete", "COMP_WORDS": " ".join(words),
         # bash and zsh pass the index of the word; fish passes the word itself
         "COMP_CWORD": words[-1] if shell == "fish" else str(len(words) - 1)}
    e.update(env or {})
    out = run(user=user, env=e).stdout
    if shell == "bash":
        return [line.split(",", 1)[1] for line in out.splitlines()]
    if shell == "zsh":                      # type, value, help: three lines per item
        lines = out.splitlines()
        return [lines[i + 1] for i in range(0, len(lines), 3)]
    return [line.split(",", 1)[1].split("\t")[0] for line in out.splitlines()]   # fish


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_every_shell_completes_commands_options_and_codes(run, demo, shell):
    assert complete(run, shell, ["escalate", "cl"]) == ["claim"]
    assert "--status" in complete(run, shell, ["escalate", "list", "--st"])
    assert complete(run, shell, ["escalate", "show", "ESC"]) == [CODE]
    assert complete(run, shell, ["escalate", "--as", "sar"]) == ["sarah.martinez"]


def test_template_names_for_the_client_email(run, demo, tmp_path):
    words = ["escalate", "email", CODE, "--template", ""]
    assert complete(run, "bash", words) == ["client-apology", "client-followup"]
    folder = tmp_path / "org-templates"
    folder.mkdir()
    for part in ("subject", "txt"):
        (folder / f"credit-note.{part}.j2").write_text("Credit note\n")
    (folder / "client-apology.subject.j2").write_text("Our apologies\n")     # an override
    names = complete(run, "bash", words, env={"ESCALATE_TEMPLATES": str(folder)})
    assert names == ["client-apology", "client-followup", "credit-note"]
    assert complete(run, "bash", ["escalate", "email", "new", CODE, "-t", "client-f"]) == \
        ["client-followup"]


def test_people_teams_pods_and_accounts(run, demo):
    assignees = complete(run, "bash", ["escalate", "task", CODE, "--assign", ""])
    assert assignees[0] == "finance" and "maria.lopez" in assignees and "john.smith" in assignees
    assert complete(run, "bash", ["escalate", "task", "list", "--team", "f"]) == ["finance"]
    assert complete(run, "bash", ["escalate", "assign", CODE, "--to", "oli"]) == ["olivia.park"]
    assert complete(run, "bash", ["escalate", "list", "--owner", "sar"]) == ["sarah.martinez"]
    assert complete(run, "bash", ["escalate", "list", "--pod", "Rec"]) == ["Recruiting Pod A"]
    assert complete(run, "bash", ["escalate", "create", "--account", "Goo"]) == ["Google Inc."]
    assert complete(run, "bash", ["escalate", "team", "add", "legal", "--member", "dav"],
                    user="admin") == ["david.kim"]


def test_completion_never_breaks_the_shell(run, tmp_path):
    """No database, no user: nothing offered, no error, exit 0."""
    env = {"ESCALATE_DB": f"sqlite:///{tmp_path}/missing/none.db"}
    for words in (["escalate", "show", "ESC"], ["escalate", "--as", "s"],
                  ["escalate", "email", CODE, "--template", "x"]):
        e = {"_ESCALATE_COMPLETE": "bash_complete", "COMP_WORDS": " ".join(words),
             "COMP_CWORD": str(len(words) - 1), **env}
        r = run(env=e)
        assert r.exit_code == 0 and r.stdout.strip() == "" and r.stderr == ""


def test_the_bash_script_completes_in_a_real_bash(run, demo, base_env, tmp_path):
    """The script `escalate completion bash` prints, sourced by bash, calling the installed
    command as bash does when the user presses TAB."""
    script = tmp_path / "escalate.bash"
    script.write_text(run("completion", "bash").stdout)
    env = dict(os.environ)
    env.update({k: v for k, v in base_env.items() if v})
    env["ESCALATE_USER"] = "sarah.martinez"
    env["PATH"] = str(pathlib.Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    probe = r'''
source "$1"
complete -p escalate
tab() { COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); COMPREPLY=()
        _escalate_completion escalate "${COMP_WORDS[-1]}" "${COMP_WORDS[-2]}"
        printf '%s|' "${COMPREPLY[@]}"; echo; }
tab escalate sho
tab escalate show ESC-2024
tab escalate email ESC-2024-11-28-001 --template client-a
tab escalate task ESC-2024-11-28-001 --assign fin
'''
    r = subprocess.run(["bash", "-c", probe, "bash", str(script)], env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "complete -o nosort -F _escalate_completion escalate"
    assert lines[1:] == ["show|", f"{CODE}|", "client-apology|", "finance|"]
