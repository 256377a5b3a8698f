"""Reading a file a user named: its bytes, or one clear error (never a traceback)."""
from .errors import Refused


def read_user_file(path, limit=None, kind="file"):
    """The bytes of ``path``; refused when missing, a folder, unreadable or over ``limit``."""
    try:
        with open(path, "rb") as fh:
            data = fh.read(limit + 1 if limit is not None else -1)
    except FileNotFoundError:
        raise Refused(f"{path}: no such file")
    except IsADirectoryError:
        raise Refused(f"{path}: is a folder, not a {kind}")
    except OSError as exc:
        raise Refused(f"{path}: {exc.strerror}")
    if limit is not None and len(data) > limit:
        raise Refused(f"{path}: too large (the limit is {limit:,} bytes)")
    return data
