"""The one exception family of escalate.

Every error a user can cause is an :class:`EscalateError` carrying the exit code of the
command-line contract and a message written for the user. The CLI turns it into one line on
stderr; the domain never prints.
"""
from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0
    REFUSED = 1
    USAGE = 2
    NOT_FOUND = 3
    CONFLICT = 4


NOT_FOUND_MESSAGE = "Escalation not found or you don't have access"


class EscalateError(Exception):
    exit_code = ExitCode.REFUSED

    def __init__(self, message):
        super().__init__(message)
        self.message = message


class Refused(EscalateError):
    """Validation, permission or business rule said no."""


class IllegalTransition(Refused):
    pass


class DeliveryFailed(Refused):
    pass


class NotFound(EscalateError):
    exit_code = ExitCode.NOT_FOUND

    def __init__(self, message=NOT_FOUND_MESSAGE):
        super().__init__(message)


class Conflict(EscalateError):
    exit_code = ExitCode.CONFLICT


class UsageError(EscalateError):
    exit_code = ExitCode.USAGE


class ConfigError(EscalateError):
    """The settings, database URL or identity cannot be used."""


class StoreBusy(EscalateError):
    exit_code = ExitCode.CONFLICT

    def __init__(self, message="the database is busy; try again"):
        super().__init__(message)
