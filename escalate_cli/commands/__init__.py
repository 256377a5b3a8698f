"""Command modules. Each imports only click at module level; services load in the bodies."""


def register(group):
    if group.commands:
        return group
    from . import admin, comms, contract, core, insight, jobs, lifecycle
    for module in (core, lifecycle, comms, jobs, contract, insight, admin):
        for command in module.COMMANDS:
            group.add_command(command)
    return group
