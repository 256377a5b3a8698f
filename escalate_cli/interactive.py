"""Keyboard mode of ``escalate show CODE -i``: the detail screen and the use case's shortcuts.

    t  take ownership      e  email the client     c  schedule a call
    m  message the IC      r  mark resolved        q  quit      Esc  close the current prompt

Each key runs the same service as its command (``claim``, ``email``, ``call schedule``,
``message``, ``resolve``), asks for what that needs on the bottom lines, and redraws the
screen. An error is shown on the status line, never as a traceback, and the screen stays.

The terminal is put in cbreak mode (keys arrive one by one, Ctrl-C still interrupts) and
restored on the way out, whatever happens.
"""
import os
import select
import sys

from .errors import EscalateError, UsageError

ESC = "\x1b"
HELP = ("Keys: t take ownership · e email client · c schedule call · m message IC · "
        "r resolve · q quit")
CLEAR = "\x1b[H\x1b[2J"


class Cancelled(Exception):
    """Esc pressed in a prompt."""


class Terminal:
    """Keys and line prompts on a real terminal (file descriptors, not Python's buffers)."""

    def __init__(self, fd_in=None, out=None):
        self.fd = sys.stdin.fileno() if fd_in is None else fd_in
        self.out = out or sys.stdout
        self._saved = None
        import codecs
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")

    def __enter__(self):
        import termios
        import tty
        self._saved = termios.tcgetattr(self.fd)
        tty.setcbreak(self.fd)
        return self

    def __exit__(self, *exc):
        self.restore()
        return False

    def restore(self):
        import termios
        if self._saved is not None:
            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)

    def suspend(self):
        """Cooked mode for a while (an editor); cbreak again afterwards."""
        term = self

        class _Suspended:
            def __enter__(self):
                term.restore()

            def __exit__(self, *exc):
                import tty
                tty.setcbreak(term.fd)
                return False
        return _Suspended()

    def write(self, text):
        self.out.write(text)
        self.out.flush()

    def _ready(self, timeout):
        return bool(select.select([self.fd], [], [], timeout)[0])

    def key(self):
        """One key: a character, ESC, or None for a terminal sequence (arrows) we ignore."""
        while True:
            data = os.read(self.fd, 1)
            if not data:
                raise EOFError
            text = self._decoder.decode(data)
            if not text:
                continue                        # the middle of a multi-byte character
            if text != ESC:
                return text
            if not self._ready(0.05):
                return ESC
            self._swallow_sequence()
            return None

    def _swallow_sequence(self):
        first = os.read(self.fd, 1)
        if first not in (b"[", b"O"):
            return
        while self._ready(0.05):
            ch = os.read(self.fd, 1)
            if ch.isalpha() or ch == b"~":
                return

    def prompt(self, label, default=None):
        """A line of input; Esc cancels (:class:`Cancelled`); Enter accepts."""
        shown = f" [{default}]" if default else ""
        self.write(f"\n{label}{shown}: ")
        buf = []
        while True:
            k = self.key()
            if k is None:
                continue
            if k == ESC:
                self.write("\n")
                raise Cancelled()
            if k in ("\r", "\n"):
                self.write("\n")
                text = "".join(buf).strip()
                return text or (default or "")
            if k in ("\x7f", "\b"):
                if buf:
                    buf.pop()
                    self.write("\b \b")
                continue
            if k == "\x15":                     # Ctrl-U: clear the line
                self.write("\b \b" * len(buf))
                buf.clear()
                continue
            if k == "\x04" and not buf:         # Ctrl-D on an empty line
                raise Cancelled()
            if k.isprintable():
                buf.append(k)
                self.write(k)


# -- the keys -----------------------------------------------------------------------------

def take_ownership(app, term, esc):
    from . import domain
    domain.claim(app, esc.code)
    return f"Owner: You ✓ ({esc.code} is IN PROGRESS)"


def resolve(app, term, esc):
    from . import domain
    from .fmt import duration_short
    if esc.status == "resolved":
        raise EscalateError(f"Cannot resolve {esc.code}: it is already RESOLVED")
    if esc.owner_id != app.actor.id and not (esc.status == "pending"
                                            and esc.reporter_id == app.actor.id):
        raise EscalateError("You must take ownership first")
    notes = term.prompt("Resolution notes (50+ characters; Enter on an empty line opens "
                        "$EDITOR; Esc cancels)")
    if not notes:
        notes = _edit(term, "RESOLUTION SUMMARY:\n\n")
    notes = domain.validate_resolution_notes(notes)
    roles = term.prompt("Notify (ic, coo, ceo, comma-separated, or none)", "ic")
    roles = [r.strip().lower() for r in roles.split(",") if r.strip()]
    bad = [r for r in roles if r not in ("ic", "coo", "ceo", "none")]
    if bad:
        raise EscalateError(f"Unknown role(s) {', '.join(bad)}: use ic, coo, ceo or none")
    done = domain.resolve(app, esc.code, notes, [r for r in roles if r != "none"])
    if done.resolved_by_ic:
        return f"{done.code}: resolved by IC; awaiting manager approval"
    return (f"Escalation marked as resolved ✓ (resolution time "
            f"{duration_short(done.resolution_seconds)})")


def _edit(term, template, unchanged_ok=False):
    import click
    with term.suspend():
        text = click.edit(template)
    if text is None and unchanged_ok:
        return template
    if text is None or not text.strip() or (text.strip() == template.strip()
                                            and not unchanged_ok):
        raise Cancelled()
    return text


# e, c and m call the communication services of escalate_cli.comms (the comms branch):
# key -> (function, what it does, the command to use instead when it is missing).
COMMS = {
    "e": ("compose_email", "Emailing the client",
          "escalate email {code} --template client-apology"),
    "c": ("schedule_call", "Scheduling a call", "escalate call schedule {code} --at WHEN"),
    "m": ("send_message", "Messaging the IC", "escalate message {code} TEXT"),
}


def comms_function(name):
    """``escalate_cli.comms.<name>``, or None when this build has no such service."""
    try:
        from . import comms
    except ImportError:
        return None
    return getattr(comms, name, None)


def _unavailable(key, esc):
    name, what, command = COMMS[key]
    return (f"{what} is not available in this build (escalate_cli.comms.{name} is missing); "
            f"use: {command.format(code=esc.code)}")


def email_client(app, term, esc):
    fn = comms_function(COMMS["e"][0])
    if fn is None:
        return _unavailable("e", esc)
    template = term.prompt("Template", "client-apology")
    to = term.prompt("To", esc.contact.email if esc.contact_id else None)
    variables = _variables(term.prompt("Template variables (KEY=VALUE ...; Enter for none)"))
    edit = term.prompt("Edit it in $EDITOR before sending? (y/n)", "n").lower().startswith("y")
    editor = (lambda text: _edit(term, text, unchanged_ok=True)) if edit else None
    sent = fn(app, esc.code, template, to=to or None, variables=variables or None,
              editor=editor)
    if getattr(sent, "outcome", True) is None:
        return f"Email queued (outbox #{sent.row.id}); a deliverer is sending it"
    return "Email sent successfully ✓"


def _variables(text):
    import shlex
    try:
        pairs = shlex.split(text)
    except ValueError as exc:
        raise UsageError(f"Cannot read the variables: {exc}")
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"Variables are KEY=VALUE, not {pair!r}")
        out[key] = value
    return out


def schedule_call(app, term, esc):
    from .fmt import when
    from .timeparse import parse_when
    fn = comms_function(COMMS["c"][0])
    if fn is None:
        return _unavailable("c", esc)
    raw = term.prompt("When (e.g. 'tomorrow 9am', '2024-11-29 09:00')")
    try:
        at = parse_when(raw, app.get_settings().zone, app.now)
    except ValueError as exc:
        raise UsageError(str(exc))
    minutes = term.prompt("Duration in minutes", "30")
    if not minutes.isdigit() or not 0 < int(minutes) <= 480:
        raise UsageError("The duration must be a number of minutes between 1 and 480")
    kind = term.prompt("Type (phone, video, in-person)", "phone")
    agenda = term.prompt("Agenda")
    fn(app, esc.code, at, duration=int(minutes), type_=kind, agenda=agenda or None)
    return f"Call scheduled for {when(at, app.get_settings().zone)} ✓"


def message_ic(app, term, esc):
    fn = comms_function(COMMS["m"][0])
    if fn is None:
        return _unavailable("m", esc)
    text = term.prompt(f"Message to {esc.reporter.name}")
    if not text:
        raise UsageError("Please write a message")
    tone = term.prompt("Tone (formal, professional, casual)", "professional")
    fn(app, esc.code, text, tone=tone)
    return f"Message sent to {esc.reporter.name.split()[0]} ✓"


ACTIONS = {"t": take_ownership, "e": email_client, "c": schedule_call, "m": message_ic,
           "r": resolve}


def run(app, code):
    """The interactive detail screen of ``code`` until q (or Ctrl-C, Ctrl-D)."""
    from . import domain, screens
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("Interactive mode needs a terminal; in scripts use the commands "
                         "(claim, email, call schedule, message, resolve)")
    status = ""
    with Terminal() as term:
        try:
            while True:
                esc = domain.get_escalation(app, code)
                recs = _recommendations(app, esc)
                term.write(CLEAR + "\n".join(screens.detail(app, esc, recommendations=recs))
                           + "\n" + HELP + "\n" + (status + "\n" if status else ""))
                key = term.key()
                if key is None or key == ESC:
                    status = ""
                    continue
                if key in ("q", "Q", "\x04"):
                    break
                action = ACTIONS.get(key.lower())
                if action is None:
                    status = f"Unknown key {key!r}."
                    continue
                try:
                    status = action(app, term, esc)
                except Cancelled:
                    status = "Cancelled."
                except EscalateError as exc:
                    status = f"Error: {exc.message}"
        except (KeyboardInterrupt, EOFError):
            pass
    term.write("\n")


def _recommendations(app, esc):
    try:
        from .insight import recommend
    except ImportError:
        return None
    return recommend(app, esc)
