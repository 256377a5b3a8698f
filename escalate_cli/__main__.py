from escalate_cli.cli import main

main(prog_name="escalate")
