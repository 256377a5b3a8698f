"""Run the real ``escalate`` command many times in one process (a client that scripts it),
so that a few processes can put a store under a load of hundreds of commands without paying
a process start per command.

    python tests/workers.py create COUNT PREFIX      # COUNT escalations, titles PREFIX-i

Settings come from the environment (ESCALATE_DB, ESCALATE_USER, ESCALATE_NOW, ...), as for
the command. Prints one line per command (its stdout); exits with the first failure's code.
"""
import sys


def escalate(*args):
    from escalate_cli.cli import cli
    try:
        cli.main(list(args), prog_name="escalate", standalone_mode=False)
    except SystemExit as exc:
        if exc.code:
            raise


def create(count, prefix):
    for i in range(int(count)):
        escalate("create", "--title", f"{prefix}-{i}", "--category", "Candidate Issue",
                 "--subcategory", "Ghosting", "--priority", "medium",
                 "--description", f"Load test escalation {prefix}-{i}")
        sys.stdout.flush()


if __name__ == "__main__":
    {"create": create}[sys.argv[1]](*sys.argv[2:])
