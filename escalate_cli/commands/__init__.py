"""Command modules. Each imports only click at module level; services load in the bodies."""


def register(group):
    if group.commands:
        return group
    from . import admin, core, lifecycle
    for module in (core, lifecycle, admin):
        for command in module.COMMANDS:
            group.add_command(command)
    return group
