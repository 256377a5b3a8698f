"""Command modules. Each imports only click at module level; services load in the bodies."""


def register(group):
    if group.commands:
        return group
    from . import core, lifecycle
    for module in (core, lifecycle):
        for command in module.COMMANDS:
            group.add_command(command)
    return group
