"""Progress bars for long work, on a terminal only.

A command that may work through many rows (an import, a sweep, a delivery run, the digests)
turns bars on with :func:`on_terminal`; the code doing the work asks :func:`bar` for one
with the number of rows it expects. The bar goes to stderr, and only when stderr is a
terminal and there are enough rows to be worth watching, so stdout stays clean for pipes and
cron (which gets the usual one line, or nothing) never sees a bar. Jobs run by the in-process
scheduler (``escalate jobs run``) never show one either: they never turn bars on.
"""
import contextlib
import sys

MIN_ROWS = 20           # below this the work is over before a bar is worth drawing

_enabled = False


def stderr_is_terminal():
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


@contextlib.contextmanager
def on_terminal():
    """Within this block, :func:`bar` draws on stderr when it is a terminal."""
    global _enabled
    previous, _enabled = _enabled, stderr_is_terminal()
    try:
        yield _enabled
    finally:
        _enabled = previous


class _Quiet:
    def update(self, n=1):
        pass

    def finish(self):
        pass


class _Bar:
    def __init__(self, label, total):
        import click
        self.bar = click.progressbar(length=total, label=label, file=sys.stderr,
                                     show_eta=True, show_pos=True, width=30)
        self.bar.__enter__()

    def update(self, n=1):
        self.bar.update(n)

    def finish(self):
        self.bar.__exit__(None, None, None)


def bar(label, total):
    """A bar for ``total`` rows, or a stand-in that draws nothing; call ``update(n)`` as rows
    are done and ``finish()`` at the end (or use it as a context manager)."""
    if _enabled and total >= MIN_ROWS:
        return _Bar(label, total)
    return _Quiet()


@contextlib.contextmanager
def tracking(label, total):
    b = bar(label, total)
    try:
        yield b
    finally:
        b.finish()


def enabled():
    return _enabled
