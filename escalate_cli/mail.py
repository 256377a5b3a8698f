"""Mail is render -> enqueue -> deliver. This module renders and transports; the outbox
(:mod:`escalate_cli.outbox`) decides what to send and when.

Rendering: a message named N is three Jinja2 templates, ``N.subject.j2`` (one line),
``N.txt.j2`` (plain text) and ``N.html.j2`` (HTML, autoescaped, usually extending
``base.html.j2``). An organisation's folder (``[templates] folder`` or
``ESCALATE_TEMPLATES``) is searched before the packaged ``escalate_templates``, so any template
can be overridden without touching the package. Undefined variables are errors that name
the variable.

Transport: SMTP through yagmail's connection handling (SSL, STARTTLS, login or none), with
the message itself built by the standard ``email`` package (see :class:`SmtpTransport` for
why); SMS through Apprise.
"""
import datetime as dt
import hashlib
import re
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation

from .errors import Refused

_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
ADDRESS_RE = re.compile(rf"^[A-Za-z0-9.!#$%&'*+/=?^_`{{|}}~-]+@{_LABEL}(?:\.{_LABEL})+$")
# Variables computed from others: a missing one is reported as the one it comes from.
DERIVED = {"corrected_total": "hours", "billed_total": "hours"}


class TemplateProblem(Refused):
    """A template is missing, broken, or needs a variable nobody gave it."""


class HeaderInjection(Refused):
    pass


# -- checks -------------------------------------------------------------------------------

def has_line_break(value):
    return value is not None and any(c in str(value) for c in "\r\n\x00\u2028\u2029\x0b\x0c\x85")


def check_header(value, what):
    """Refuse a header value that could start a new header (CR/LF injection)."""
    if has_line_break(value):
        raise HeaderInjection(f"Invalid {what}: line breaks are not allowed in email headers")
    return value


def one_line(value):
    """Line breaks and control characters as spaces, runs of spaces as one."""
    return " ".join(re.sub(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]", " ", value or "").split())


def bare_address(addr):
    """'Jane Doe <jane@google.com>' -> 'jane@google.com'."""
    from email.utils import parseaddr
    return parseaddr(addr)[1] if "<" in (addr or "") else (addr or "").strip()


def valid_address(addr):
    if not addr or has_line_break(addr) or len(addr) > 254:
        return False
    return bool(ADDRESS_RE.match(bare_address(addr)))


def mail_domain(settings):
    return bare_address(settings.mail_from).rpartition("@")[2] or "localhost"


# -- rendering ----------------------------------------------------------------------------

_ENVIRONMENTS = {}


def environment(settings):
    """The Jinja2 environment: the organisation's folder first, then the packaged templates."""
    key = settings.template_dir or ""
    env = _ENVIRONMENTS.get(key)
    if env is not None:
        return env
    import jinja2
    loaders = []
    if settings.template_dir:
        loaders.append(jinja2.FileSystemLoader(settings.template_dir))
    loaders.append(jinja2.PackageLoader("escalate_templates", ""))
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        undefined=jinja2.StrictUndefined,
        autoescape=lambda name: bool(name) and name.endswith((".html.j2", ".html")),
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=False,
    )
    env.filters.update(money=money, num=num, sentence=sentence, first_name=first_name,
                       nl2br=nl2br)
    _ENVIRONMENTS[key] = env
    return env


def _defined(value):
    import jinja2
    if isinstance(value, jinja2.Undefined):
        value._fail_with_undefined_error()
    return value


MONEY_LIMIT = Decimal("1e15")


def _decimal(value):
    """An amount, or None for what is not one (also infinities and absurd magnitudes, which
    would not format: a typed value like 'INF' or '1e999999' is then shown as typed)."""
    value = _defined(value)
    if not isinstance(value, Decimal):
        try:
            value = Decimal(str(value).replace("$", "").replace(",", "").strip())
        except InvalidOperation:
            return None
    if not value.is_finite() or abs(value) >= MONEY_LIMIT:
        return None
    return value


def money(value):
    """110 -> '$110'; '17600' -> '$17,600'; 12.5 -> '$12.50'."""
    d = _decimal(value)
    if d is None:
        return str(value)
    if d == d.to_integral_value():
        return f"${int(d):,}"
    return f"${d:,.2f}"


def num(value):
    """Decimal('160.00') -> '160'."""
    d = _decimal(value)
    if d is None:
        return str(value)
    return f"{int(d)}" if d == d.to_integral_value() else f"{d.normalize()}"


def sentence(value):
    text = str(_defined(value) or "")
    return text[:1].upper() + text[1:].lower()


def first_name(value):
    return (str(_defined(value) or "").split() or [""])[0]


def nl2br(value):
    from markupsafe import Markup, escape
    return Markup("<br>\n").join(escape(line) for line in str(_defined(value)).split("\n"))


@dataclass
class Rendered:
    subject: str
    text: str
    html: str


def render(settings, name, context, one_line_subject=False):
    """Render message ``name`` with ``context``; raises TemplateProblem with a clear message.

    A subject with a line break is refused (HeaderInjection), unless ``one_line_subject``:
    for the messages the system sends from stored records, where a line break that slipped
    into a name or a title must not cost the recipient the message, it is made one line.
    """
    import jinja2
    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", name or "") or ".." in name:
        raise TemplateProblem(f"Unknown template '{name}'")
    env = environment(settings)
    ctx = dict(context)
    ctx.setdefault("company", settings.company)
    try:
        text_template = env.get_template(f"{name}.txt.j2")
        text = text_template.render(ctx)
        subject = env.get_template(f"{name}.subject.j2").render(ctx).strip()
        ctx.setdefault("subject", subject)
        html_template = _html_template(env, settings, name, text_template)
        html = html_template.render(ctx) if html_template is not None \
            else text_to_html(settings, text, ctx)
    except jinja2.TemplateNotFound as exc:
        where = f"{settings.template_dir} or the packaged templates" if settings.template_dir \
            else "the packaged templates"
        raise TemplateProblem(f"Unknown template '{name}': no {exc.name} in {where}")
    except jinja2.UndefinedError as exc:
        raise TemplateProblem(_undefined_message(name, exc))
    except jinja2.TemplateSyntaxError as exc:
        raise TemplateProblem(f"Template {exc.name or name} line {exc.lineno}: {exc.message}")
    if one_line_subject:
        subject = one_line(subject)
    check_header(subject, "subject")
    if not subject:
        raise TemplateProblem(f"Template {name}.subject.j2 rendered an empty subject")
    return Rendered(subject=subject, text=text.rstrip() + "\n", html=html)


def _html_template(env, settings, name, text_template):
    """N.html.j2 from the folder N.txt.j2 came from: an organisation that rewrites the text
    of a message without giving its HTML gets the HTML made from its text, not ours."""
    import os

    import jinja2
    try:
        html_template = env.get_template(f"{name}.html.j2")
    except jinja2.TemplateNotFound:
        return None
    if settings.template_dir:
        folder = os.path.realpath(settings.template_dir)

        def inside(t):
            return bool(t.filename) and os.path.realpath(t.filename).startswith(folder + os.sep)
        if inside(text_template) != inside(html_template):
            return None
    return html_template


def _undefined_message(name, exc):
    m = re.search(r"'([^']+)' is undefined", str(exc)) or \
        re.search(r"has no attribute '([^']+)'", str(exc))
    var = m.group(1) if m else str(exc)
    var = DERIVED.get(var, var)
    return f"Template {name} needs a value for '{var}' (pass --var {var}=...)"


def text_to_html(settings, text, context):
    """The HTML alternative of a plain-text body (after --edit): escaped, in the layout."""
    env = environment(settings)
    ctx = dict(context)
    ctx.setdefault("company", settings.company)
    paragraphs = [p.strip("\n") for p in re.split(r"\n\s*\n", text.strip()) if p.strip()]
    return env.get_template("_text.html.j2").render(dict(ctx, paragraphs=paragraphs))


# -- messages -----------------------------------------------------------------------------

def message_id(settings, row_id, key):
    """Stable per outbox row, so a retry after a crash carries the same Message-ID and the
    recipient's mail program can drop the duplicate."""
    digest = hashlib.sha1(key.encode()).hexdigest()[:16]
    return f"<escalate.{row_id}.{digest}@{mail_domain(settings)}>"


def thread_root(settings, esc):
    """The per-escalation root every email about it refers to, so they thread together."""
    return f"<escalation.{esc.code.lower()}.{esc.id}@{mail_domain(settings)}>"


@dataclass
class Outgoing:
    from_addr: str
    to: list
    subject: str
    text: str
    html: str | None = None
    cc: list = field(default_factory=list)
    bcc: list = field(default_factory=list)
    reply_to: str | None = None
    message_id: str | None = None
    thread_root: str | None = None
    date: dt.datetime | None = None
    attachments: list = field(default_factory=list)     # (name, content_type, bytes)
    calendar: str | None = None
    calendar_method: str | None = None
    auto_submitted: bool = False
    envelope_from: str | None = None

    skip: frozenset = frozenset()     # bare lower-case addresses already done (a retry)

    @property
    def recipients(self):
        seen, out = set(self.skip), []
        for addr in list(self.to) + list(self.cc) + list(self.bcc):
            bare = bare_address(addr).lower()
            if bare and bare not in seen:
                seen.add(bare)
                out.append(bare_address(addr))
        return out


def build_message(m):
    """An RFC 5322 message: text and HTML alternatives (and a text/calendar part for an
    invite), attachments with their types, threading headers; Bcc only in the envelope."""
    from email.message import EmailMessage
    from email.policy import SMTP
    from email.utils import format_datetime
    check_header(m.subject, "subject")
    for what, values in (("sender", [m.from_addr]), ("recipient", m.to + m.cc + m.bcc),
                         ("Reply-To", [m.reply_to] if m.reply_to else [])):
        for v in values:
            if not valid_address(v):
                raise HeaderInjection(f"Invalid {what} address {v!r}")
    msg = EmailMessage(policy=SMTP)
    msg["From"] = m.from_addr
    msg["To"] = ", ".join(m.to)
    if m.cc:
        msg["Cc"] = ", ".join(m.cc)
    if m.reply_to:
        msg["Reply-To"] = m.reply_to
    msg["Subject"] = m.subject
    msg["Date"] = format_datetime(m.date or dt.datetime.now(dt.timezone.utc))
    if m.message_id:
        msg["Message-ID"] = m.message_id
    if m.thread_root:
        msg["In-Reply-To"] = m.thread_root
        msg["References"] = m.thread_root
    if m.auto_submitted:
        msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(m.text)
    if m.html:
        msg.add_alternative(m.html, subtype="html")
    if m.calendar:
        msg.add_alternative(m.calendar, subtype="calendar",
                            params={"method": m.calendar_method or "REQUEST"})
    for name, ctype, data in m.attachments:
        maintype, _, subtype = (ctype or "application/octet-stream").partition("/")
        msg.add_attachment(bytes(data), maintype=maintype, subtype=subtype or "octet-stream",
                           filename=name)
    if m.calendar:
        msg.add_attachment(m.calendar.encode(), maintype="application", subtype="ics",
                           filename="invite.ics" if m.calendar_method != "CANCEL" else "cancel.ics")
    return msg


# -- transports ---------------------------------------------------------------------------

class TransportError(Exception):
    """``permanent``: retrying cannot help (5xx). ``connection``: nothing else can go now."""

    def __init__(self, message, permanent=False, connection=False, refused=None):
        super().__init__(message)
        self.permanent = permanent
        self.connection = connection
        self.refused = refused or {}


def _smtp_text(resp):
    if isinstance(resp, bytes):
        resp = resp.decode("utf-8", "replace")
    return " ".join(str(resp).split())


class SmtpTransport:
    """One SMTP connection for a delivery run.

    yagmail opens it (SSL, STARTTLS, login, or none with ``smtp_skip_login`` for a local
    relay) and we send on its underlying ``smtplib`` connection. We do not use
    ``yagmail.send``: it builds its own MIME (the plain text is derived from the HTML, there
    is no room for a text/calendar part, the Message-ID is its own, and headers are not
    checked for line breaks), it retries with ``time.sleep`` and swallows the SMTP error
    into ``unsent``, and it asks the keyring or a terminal for a missing password. The
    outbox needs the exact message, the exact SMTP reply code (4xx retry, 5xx permanent)
    and the recipients refused, so the message is built with ``email`` and sent here.
    """

    def __init__(self, settings):
        self.settings = settings
        self._yag = None
        self.smtp = None

    def connect(self):
        import smtplib
        import yagmail
        s = self.settings
        if s.smtp_user and not s.smtp_password:
            raise TransportError("SMTP user is set but no password (ESCALATE_SMTP_PASSWORD)",
                                 connection=True)
        try:
            self._yag = yagmail.SMTP(
                user=s.smtp_user or bare_address(s.mail_from), password=s.smtp_password,
                host=s.smtp_host, port=s.smtp_port, smtp_starttls=bool(s.smtp_starttls),
                smtp_ssl=bool(s.smtp_ssl), smtp_skip_login=not s.smtp_user,
                soft_email_validation=False, timeout=s.smtp_timeout)
            self._yag.set_logging(None)
            self._yag.login()
        except smtplib.SMTPAuthenticationError as exc:
            raise TransportError(f"SMTP login refused: {exc.smtp_code} "
                                 f"{_smtp_text(exc.smtp_error)}", connection=True)
        except (smtplib.SMTPException, OSError) as exc:
            raise TransportError(f"SMTP server {s.smtp_host}:{s.smtp_port} unavailable: "
                                 f"{_describe(exc)}", connection=True)
        self.smtp = self._yag.smtp
        return self

    def send(self, outgoing, message):
        """Send; return the recipients refused ({addr: (code, text)}) when others accepted."""
        import smtplib
        from email.policy import SMTP
        if self.smtp is None:
            self.connect()
        sender = bare_address(outgoing.envelope_from or outgoing.from_addr)
        try:
            refused = self.smtp.sendmail(sender, outgoing.recipients, message.as_bytes(policy=SMTP))
        except smtplib.SMTPRecipientsRefused as exc:
            refused = {a: (code, _smtp_text(text)) for a, (code, text) in exc.recipients.items()}
            permanent = all(code >= 500 for code, _ in refused.values())
            raise TransportError("all recipients refused: " + _refusals(refused),
                                 permanent=permanent, refused=refused)
        except smtplib.SMTPSenderRefused as exc:
            raise TransportError(f"sender {sender} refused: {exc.smtp_code} "
                                 f"{_smtp_text(exc.smtp_error)}")
        except smtplib.SMTPResponseException as exc:
            raise TransportError(f"SMTP error {exc.smtp_code} {_smtp_text(exc.smtp_error)}",
                                 permanent=500 <= exc.smtp_code < 600)
        except (smtplib.SMTPException, OSError) as exc:
            self.smtp = None
            raise TransportError(f"SMTP connection lost: {_describe(exc)}", connection=True)
        return {a: (code, _smtp_text(text)) for a, (code, text) in (refused or {}).items()}

    def close(self):
        if self._yag is not None:
            try:
                self._yag.close()
            except Exception:  # noqa: BLE001 - closing a dead connection is not news
                pass
        self._yag = self.smtp = None


def _describe(exc):
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _refusals(refused):
    return "; ".join(f"{a} ({code} {text})" for a, (code, text) in refused.items())


def send_sms(settings, to, text):
    """Send one SMS through the Apprise URL in the settings; ``{to}`` in it is the number.

    For example ``twilio://SID:TOKEN@+15550000000/{to}`` or, for a local gateway,
    ``json://127.0.0.1:8080/sms?:to={to}``. Raises TransportError; the URL (a secret) is
    never part of an error message.
    """
    from urllib.parse import quote
    if not settings.sms_url:
        raise TransportError("no SMS gateway configured (ESCALATE_SMS_URL or [sms] url)")
    import logging

    import apprise
    url = settings.sms_url.replace("{to}", quote(to, safe=""))
    sender = apprise.Apprise()
    if not sender.add(url):
        raise TransportError("the SMS gateway URL is not one Apprise understands", permanent=True)
    with apprise.LogCapture(level=logging.WARNING, fmt="%(message)s") as log:
        ok = sender.notify(body=text)
    if not ok:
        detail = " ".join(log.getvalue().split())[:300] or "the gateway did not accept it"
        raise TransportError(f"SMS to {to} failed: {detail}")


def template_names(settings, for_clients=False):
    """The names of the messages one can send: every N with an ``N.subject.j2``, in the
    organisation's folder or the package. ``for_clients``: leave out the package's own
    notifications to staff (``email --template`` completes the client templates, and any
    an organisation added)."""
    import os
    package = os.path.dirname(__import__("escalate_templates").__file__)

    def names_in(folder):
        try:
            return {e[:-len(".subject.j2")] for e in os.listdir(folder)
                    if e.endswith(".subject.j2") and not e.startswith("_")}
        except OSError:
            return set()
    packaged = names_in(package)
    names = packaged | (names_in(settings.template_dir) if settings.template_dir else set())
    if for_clients:
        names = {n for n in names if n.startswith("client-") or n not in packaged}
    return sorted(names)
