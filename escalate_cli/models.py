"""The store: small declarative models, bound at run time through ``database_proxy``.

Times are stored as naive UTC and come back as aware UTC datetimes. Money is Decimal. The
workflow rules live in :mod:`escalate_cli.domain`, not here.
"""
import datetime as dt

import peewee as pw

database_proxy = pw.DatabaseProxy()

UTC = dt.timezone.utc

ROLES = ("ic", "manager", "coo", "ceo", "admin", "finance")
LEADER_ROLES = ("coo", "ceo", "admin")
PRIORITIES = ("critical", "high", "medium", "low")
STATUSES = ("pending", "in_progress", "on_hold", "escalated", "resolved")
CATEGORIES = {
    "Client Complaint": ("Billing Dispute", "Performance", "Service Quality", "Other"),
    "Candidate Issue": ("Ghosting", "Compensation", "No-show", "Conduct", "Other"),
    "Rate Exception": ("Margin", "Bill Rate", "Pay Rate", "Other"),
    "Contract Dispute": ("Terms", "Termination", "Legal", "Other"),
    "System/Process Failure": ("Template", "Tooling", "Process", "Other"),
}


class UTCDateTimeField(pw.DateTimeField):
    """Aware datetimes in, aware UTC datetimes out; stored naive in UTC."""

    def db_value(self, value):
        if isinstance(value, dt.datetime) and value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return super().db_value(value)

    def python_value(self, value):
        value = super().python_value(value)
        if isinstance(value, dt.datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


class Money(pw.DecimalField):
    def __init__(self, **kw):
        kw.setdefault("max_digits", 14)
        kw.setdefault("decimal_places", 2)
        kw.setdefault("auto_round", True)
        super().__init__(**kw)


class BaseModel(pw.Model):
    class Meta:
        database = database_proxy
        legacy_table_names = False


class SchemaMigration(BaseModel):
    name = pw.CharField(primary_key=True, max_length=100)
    applied_at = UTCDateTimeField()

    class Meta:
        table_name = "schema_migrations"


class Pod(BaseModel):
    name = pw.CharField(unique=True, max_length=100)
    manager = pw.DeferredForeignKey("User", null=True, on_delete="SET NULL")


class User(BaseModel):
    login = pw.CharField(unique=True, max_length=100)
    name = pw.CharField(max_length=200)
    email = pw.CharField(max_length=320)
    phone = pw.CharField(null=True, max_length=50)
    role = pw.CharField(max_length=20)
    title = pw.CharField(null=True, max_length=200)
    pod = pw.ForeignKeyField(Pod, null=True, backref="members", on_delete="SET NULL")
    active = pw.BooleanField(default=True)
    created_at = UTCDateTimeField()

    @property
    def is_leader(self):
        return self.role in LEADER_ROLES

    @property
    def sees_internal(self):
        return self.role in ("manager", "coo", "ceo", "admin")


class Team(BaseModel):
    key = pw.CharField(unique=True, max_length=100)
    name = pw.CharField(max_length=200)
    email = pw.CharField(null=True, max_length=320)
    active = pw.BooleanField(default=True)


class TeamMember(BaseModel):
    team = pw.ForeignKeyField(Team, backref="memberships", on_delete="CASCADE")
    user = pw.ForeignKeyField(User, backref="team_memberships", on_delete="CASCADE")

    class Meta:
        indexes = ((("team", "user"), True),)


class Account(BaseModel):
    name = pw.CharField(unique=True, max_length=200)
    strategic = pw.BooleanField(default=False)
    annual_revenue = Money(null=True)


class Contact(BaseModel):
    account = pw.ForeignKeyField(Account, backref="contacts", on_delete="CASCADE")
    name = pw.CharField(max_length=200)
    email = pw.CharField(unique=True, max_length=320)
    phone = pw.CharField(null=True, max_length=50)
    title = pw.CharField(null=True, max_length=200)
    unreachable_at = UTCDateTimeField(null=True)
    unreachable_reason = pw.TextField(null=True)


class Contract(BaseModel):
    """A placement under contract: candidate, account, agreed bill and pay rates."""
    code = pw.CharField(unique=True, max_length=100)
    account = pw.ForeignKeyField(Account, backref="contracts", on_delete="CASCADE")
    candidate = pw.CharField(max_length=200)
    title = pw.CharField(null=True, max_length=200)
    bill_rate = Money()
    pay_rate = Money()
    start_date = pw.DateField()
    end_date = pw.DateField(null=True)


class Escalation(BaseModel):
    code = pw.CharField(unique=True, max_length=32)
    day = pw.DateField()                    # creation date in the company zone
    seq = pw.IntegerField()                 # per-day sequence
    title = pw.CharField(max_length=300)
    category = pw.CharField(max_length=100)
    subcategory = pw.CharField(null=True, max_length=100)
    priority = pw.CharField(max_length=10)
    priority_rank = pw.SmallIntegerField()  # 0 critical .. 3 low, for sorting in SQL
    impact = pw.CharField(max_length=20)
    impact_reason = pw.TextField(null=True)
    status = pw.CharField(max_length=20, default="pending")
    substate = pw.CharField(null=True, max_length=100)
    reporter = pw.ForeignKeyField(User, backref="reported", on_delete="RESTRICT")
    pod = pw.ForeignKeyField(Pod, null=True, backref="escalations", on_delete="SET NULL")
    owner = pw.ForeignKeyField(User, null=True, backref="owned", on_delete="SET NULL")
    account = pw.ForeignKeyField(Account, null=True, backref="escalations", on_delete="SET NULL")
    contact = pw.ForeignKeyField(Contact, null=True, on_delete="SET NULL")
    contract = pw.ForeignKeyField(Contract, null=True, on_delete="SET NULL")
    description = pw.TextField()
    assessment = pw.TextField(null=True)
    created_at = UTCDateTimeField()
    claimed_at = UTCDateTimeField(null=True)
    escalated_at = UTCDateTimeField(null=True)
    escalated_to = pw.CharField(null=True, max_length=10)
    resolved_at = UTCDateTimeField(null=True)
    resolved_by = pw.ForeignKeyField(User, null=True, on_delete="SET NULL")
    resolution_notes = pw.TextField(null=True)
    resolution_seconds = pw.IntegerField(null=True)
    resolved_by_ic = pw.BooleanField(default=False)
    approval = pw.CharField(null=True, max_length=20)   # pending / approved (A2)
    approved_by = pw.ForeignKeyField(User, null=True, on_delete="SET NULL")
    approved_at = UTCDateTimeField(null=True)
    policy_version = pw.CharField(max_length=50)
    sla_policy = pw.TextField(null=True)                 # JSON snapshot (migration 0003)
    response_due = UTCDateTimeField(null=True)
    resolution_due = UTCDateTimeField(null=True)
    paused_seconds = pw.IntegerField(default=0)   # business seconds on hold that moved the due time
    paused_wall_seconds = pw.IntegerField(default=0)
    hold_started_at = UTCDateTimeField(null=True)
    hold_until = UTCDateTimeField(null=True)
    hold_reason = pw.TextField(null=True)
    last_action = pw.CharField(null=True, max_length=100)
    last_action_at = UTCDateTimeField(null=True)
    idempotency_key = pw.CharField(null=True, unique=True, max_length=200)
    source = pw.CharField(default="manual", max_length=50)      # manual / system
    source_key = pw.CharField(null=True, unique=True, max_length=200)
    version = pw.IntegerField(default=1)
    updated_at = UTCDateTimeField()

    class Meta:
        indexes = (
            (("day", "seq"), True),
            (("pod", "status", "priority_rank", "created_at"), False),
            (("owner", "status"), False),
            (("reporter", "status"), False),
            (("account", "created_at"), False),
            (("status", "priority_rank", "created_at"), False),
            (("hold_until",), False),
            (("owner", "status", "pod"), False),                      # 0007
            (("status", "hold_until"), False),                        # 0007
            (("approval", "status"), False),                          # 0009
        )


# 0007: the queue's pages in order (escalate_cli/queue.py); named, as PostgreSQL cuts names at 63
for _name, _fields in (
        ("escalation_queue_pod_response", ("pod", "status", "priority_rank", "response_due", "created_at")),
        ("escalation_queue_pod_resolution", ("pod", "status", "priority_rank", "resolution_due", "created_at")),
        ("escalation_queue_response", ("status", "priority_rank", "response_due", "created_at")),
        ("escalation_queue_resolution", ("status", "priority_rank", "resolution_due", "created_at"))):
    Escalation.add_index(*(getattr(Escalation, f) for f in _fields), name=_name)


class Consulted(BaseModel):
    escalation = pw.ForeignKeyField(Escalation, backref="consulted", on_delete="CASCADE")
    user = pw.ForeignKeyField(User, on_delete="CASCADE")
    added_at = UTCDateTimeField()

    class Meta:
        indexes = ((("escalation", "user"), True),)


class SlaClock(BaseModel):
    """Hot clock state, kept out of the wide escalation row so sweeps touch narrow rows.

    ``next_check_at`` is when a sweep must next look at this clock (warning time, then due
    time); it is null once the clock is stopped, breached or paused.
    """
    escalation = pw.ForeignKeyField(Escalation, backref="clocks", on_delete="CASCADE")
    kind = pw.CharField(max_length=12)          # response / resolution
    started_at = UTCDateTimeField()
    warn_at = UTCDateTimeField(null=True)
    due_at = UTCDateTimeField(null=True)
    next_check_at = UTCDateTimeField(null=True)
    stopped_at = UTCDateTimeField(null=True)
    met = pw.BooleanField(null=True)
    warned_at = UTCDateTimeField(null=True)
    breached_at = UTCDateTimeField(null=True)

    class Meta:
        table_name = "sla_clock"
        indexes = ((("escalation", "kind"), True), (("next_check_at",), False),
                   (("breached_at",), False))


class Activity(BaseModel):
    """The timeline: emails, calls, meetings, messages, notes, status changes, tasks."""
    escalation = pw.ForeignKeyField(Escalation, backref="activities", on_delete="CASCADE")
    type = pw.CharField(max_length=30)
    internal = pw.BooleanField(default=False)   # investigation notes: managers and leaders only
    direction = pw.CharField(null=True, max_length=10)
    subject = pw.TextField(null=True)
    body = pw.TextField(null=True)
    actor = pw.ForeignKeyField(User, null=True, on_delete="SET NULL")
    occurred_at = UTCDateTimeField()
    created_at = UTCDateTimeField()
    meta = pw.TextField(null=True)              # JSON

    class Meta:
        indexes = ((("escalation", "occurred_at"), False),)


class Attachment(BaseModel):
    escalation = pw.ForeignKeyField(Escalation, backref="attachments", on_delete="CASCADE")
    name = pw.CharField(max_length=255)
    content_type = pw.CharField(max_length=200)
    size = pw.IntegerField()
    sha256 = pw.CharField(max_length=64)
    data = pw.BlobField()
    uploaded_by = pw.ForeignKeyField(User, null=True, on_delete="SET NULL")
    created_at = UTCDateTimeField()


class Notification(BaseModel):
    """In-app notifications: ``escalate inbox``."""
    user = pw.ForeignKeyField(User, backref="notifications", on_delete="CASCADE")
    escalation = pw.ForeignKeyField(Escalation, null=True, on_delete="CASCADE")
    kind = pw.CharField(max_length=50)
    message = pw.TextField()
    created_at = UTCDateTimeField()
    read_at = UTCDateTimeField(null=True)
    dedupe_key = pw.CharField(null=True, unique=True, max_length=300)

    class Meta:
        indexes = ((("user", "read_at", "created_at"), False),)


class Event(BaseModel):
    """The event log; ``id`` is the stream position for ``escalate events --since``."""
    name = pw.CharField(max_length=100)
    escalation = pw.ForeignKeyField(Escalation, null=True, on_delete="SET NULL")
    actor = pw.ForeignKeyField(User, null=True, on_delete="SET NULL")
    payload = pw.TextField()                    # JSON
    created_at = UTCDateTimeField()
    dedupe_key = pw.CharField(null=True, unique=True, max_length=300)


class CodeCounter(BaseModel):
    day = pw.DateField(primary_key=True)
    last = pw.IntegerField()

    class Meta:
        table_name = "code_counter"


# -- communication and jobs (migration 0002) -----------------------------------------------

class Outbox(BaseModel):
    """Every outbound email and SMS, written with the change that causes it."""
    key = pw.CharField(unique=True, max_length=300)
    channel = pw.CharField(max_length=10)       # email / sms
    escalation = pw.ForeignKeyField(Escalation, null=True, on_delete="SET NULL")
    author = pw.ForeignKeyField(User, null=True, on_delete="SET NULL")
    recipients = pw.TextField()                 # JSON {"to": [...], "cc": [...], "bcc": [...]}
    subject = pw.TextField(null=True)
    body_text = pw.TextField(null=True)         # rendered; null until rendered from template
    body_html = pw.TextField(null=True)
    context = pw.TextField(null=True)           # JSON: template variables, rendered at delivery
    headers = pw.TextField(null=True)           # JSON
    parts = pw.TextField(null=True)             # JSON: attachment ids, calendar parts
    template = pw.CharField(null=True, max_length=100)
    status = pw.CharField(max_length=12, default="queued")   # draft/queued/sending/sent/failed/dead
    attempts = pw.IntegerField(default=0)
    next_attempt_at = UTCDateTimeField(null=True)
    lease_until = UTCDateTimeField(null=True)
    lease_owner = pw.CharField(null=True, max_length=100)
    last_error = pw.TextField(null=True)
    message_id = pw.CharField(null=True, max_length=300)
    not_before = UTCDateTimeField(null=True)
    created_at = UTCDateTimeField()
    sent_at = UTCDateTimeField(null=True)

    class Meta:
        indexes = ((("status", "next_attempt_at"), False),)


class Task(BaseModel):
    escalation = pw.ForeignKeyField(Escalation, null=True, backref="tasks", on_delete="CASCADE")
    title = pw.CharField(max_length=300)
    description = pw.TextField(null=True)
    assignee_user = pw.ForeignKeyField(User, null=True, backref="tasks", on_delete="SET NULL")
    assignee_team = pw.ForeignKeyField(Team, null=True, backref="tasks", on_delete="SET NULL")
    due_at = UTCDateTimeField(null=True)
    priority = pw.CharField(max_length=10, default="medium")
    status = pw.CharField(max_length=10, default="open")       # open / done
    created_by = pw.ForeignKeyField(User, null=True, on_delete="SET NULL")
    created_at = UTCDateTimeField()
    done_at = UTCDateTimeField(null=True)
    done_by = pw.ForeignKeyField(User, null=True, on_delete="SET NULL")

    class Meta:
        indexes = ((("assignee_user", "status", "due_at"), False),
                   (("assignee_team", "status", "due_at"), False),
                   (("status", "due_at"), False))


class Meeting(BaseModel):
    """A scheduled call; the invite's UID and SEQUENCE live here."""
    escalation = pw.ForeignKeyField(Escalation, backref="meetings", on_delete="CASCADE")
    uid = pw.CharField(unique=True, max_length=200)
    sequence = pw.IntegerField(default=0)
    starts_at = UTCDateTimeField()
    duration_minutes = pw.IntegerField()
    type = pw.CharField(max_length=20)
    agenda = pw.TextField(null=True)
    status = pw.CharField(max_length=12, default="scheduled")  # scheduled / cancelled / done
    organizer = pw.ForeignKeyField(User, null=True, on_delete="SET NULL")
    attendees = pw.TextField(null=True)         # JSON list of emails
    created_at = UTCDateTimeField()

    class Meta:
        indexes = ((("status", "starts_at"), False),)


class RateApproval(BaseModel):
    contract = pw.ForeignKeyField(Contract, backref="rate_approvals", on_delete="CASCADE")
    bill_rate = Money()
    effective = pw.DateField()
    approved_by = pw.ForeignKeyField(User, null=True, on_delete="SET NULL")
    created_at = UTCDateTimeField()


class Invoice(BaseModel):
    number = pw.CharField(unique=True, max_length=100)
    contract = pw.ForeignKeyField(Contract, backref="invoices", on_delete="CASCADE")
    period = pw.CharField(max_length=20)
    hours = pw.DecimalField(max_digits=10, decimal_places=2)
    bill_rate = Money()
    pay_rate = Money(null=True)
    imported_at = UTCDateTimeField()


class JobRun(BaseModel):
    """Heartbeat: each job's last run and last success."""
    name = pw.CharField(primary_key=True, max_length=50)
    last_started_at = UTCDateTimeField(null=True)
    last_finished_at = UTCDateTimeField(null=True)
    last_success_at = UTCDateTimeField(null=True)
    last_outcome = pw.CharField(null=True, max_length=20)
    last_message = pw.TextField(null=True)
    host = pw.CharField(null=True, max_length=200)

    class Meta:
        table_name = "job_run"


class JobLock(BaseModel):
    """A lease: survives a crash because it expires."""
    name = pw.CharField(primary_key=True, max_length=50)
    holder = pw.CharField(max_length=200)
    expires_at = UTCDateTimeField()

    class Meta:
        table_name = "job_lock"


ALL_MODELS = [SchemaMigration, Pod, User, Team, TeamMember, Account, Contact, Contract,
              Escalation, Consulted, SlaClock, Activity, Attachment, Notification, Event,
              CodeCounter, Outbox, Task, Meeting, RateApproval, Invoice, JobRun, JobLock]
