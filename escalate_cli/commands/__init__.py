"""Command modules. Each imports only click at module level; services load in the bodies."""


def register(group):
    if group.commands:
        return group
    from . import core, insight, lifecycle
    for module in (core, lifecycle, insight):
        for command in module.COMMANDS:
            group.add_command(command)
    return group
