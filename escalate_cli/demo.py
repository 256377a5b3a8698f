"""The use case's people and records, so a newcomer can try everything at once."""
import datetime as dt
import os
import tempfile
from decimal import Decimal
from zoneinfo import ZoneInfo

from . import domain
from .directory import bootstrap_admin
from .rates import anomaly_key
from .models import (Account, Activity, Contact, Contract, Escalation, Invoice, Pod, Team,
                     TeamMember, User)

INVOICE = "INV-2024-11-GOOG-001"

NY = ZoneInfo("America/New_York")

PEOPLE = [
    # login, name, email, role, title, phone
    ("sarah.martinez", "Sarah Martinez", "sarah.martinez@intime.com", "manager",
     "Manager - Recruiting Pod A", "+15550100001"),
    ("john.smith", "John Smith", "john.smith@intime.com", "ic", "IC - Recruiting", "+15550100002"),
    ("olivia.park", "Olivia Park", "olivia.park@intime.com", "coo", "COO", "+15550100003"),
    ("david.kim", "David Kim", "david.kim@intime.com", "ceo", "CEO", "+15550100004"),
    ("maria.lopez", "Maria Lopez", "maria.lopez@intime.com", "finance", "Finance Specialist", None),
]

DESCRIPTION = """Client called upset about November invoice showing bill rate of $120/hr instead of the agreed $110/hr. Client states no approval was given for this rate increase. Candidate has been working for 3 months with no issues until this invoice.

Client's exact words (per John's note):
"We never approved a rate increase. This is a breach of our agreement. If this isn't fixed immediately, we will terminate all contracts with InTime.\""""

ASSESSMENT = """I updated the placement rate per the new contract template we started using in November. I thought this was automatic for all placements going forward. I didn't realize it only applies to NEW placements, not existing ones. Client is very upset and threatening to end all 3 active contracts ($180K annual).

I apologized and said I'd escalate to my manager immediately. I need help ASAP - client expects callback by 9 AM tomorrow."""

HISTORY = [
    (dt.datetime(2024, 11, 1, 10, 0, tzinfo=NY), "email", "maria.lopez",
     "Finance sends November invoice"),
    (dt.datetime(2024, 11, 28, 10, 30, tzinfo=NY), "email", None,
     "Client emails complaint to John"),
    (dt.datetime(2024, 11, 28, 23, 15, tzinfo=NY), "call", "john.smith",
     "John calls client, discovers issue"),
    (dt.datetime(2024, 11, 28, 23, 35, tzinfo=NY), "email", "john.smith",
     "John logs email activity"),
]


def _pdf(title, lines):
    """A small, valid one-page PDF."""
    text = " ".join(f"({line.replace('(', '[').replace(')', ']')}) Tj 0 -16 Td" for line in [title] + lines)
    stream = f"BT /F1 12 Tf 72 720 Td {text} ET".encode()
    objs = [b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
            b"/Resources << /Font << /F1 5 0 R >> >> >>",
            b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream",
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for i, body in enumerate(objs, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % i + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objs) + 1)
    for off in offsets:
        out += b"%010d 00000 n \n" % off
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objs) + 1, xref)
    return bytes(out)


EMAIL_THREAD = """From: Jane Doe <jane@google.com>
To: John Smith <john.smith@intime.com>
Subject: November invoice - rate
Date: Thu, 28 Nov 2024 10:30:00 -0500

John, the November invoice for Sarah Chen shows $120/hr. We agreed $110/hr. We never approved a rate increase.

From: John Smith <john.smith@intime.com>
Subject: Re: November invoice - rate
Date: Thu, 28 Nov 2024 23:35:00 -0500

Jane, I am so sorry. I am escalating this to my manager right now.

From: Jane Doe <jane@google.com>
Subject: Re: November invoice - rate
Date: Thu, 28 Nov 2024 23:40:00 -0500

If this isn't fixed immediately, we will terminate all contracts with InTime.
"""


def load_demo(app, escalation=True):
    """Idempotent: running it twice leaves one copy of everything. Without ``escalation``,
    only the people and records (for a newcomer who raises the escalation themselves)."""
    if Escalation.select().where(Escalation.code == "ESC-2024-11-28-001").exists():
        return Escalation.get(Escalation.code == "ESC-2024-11-28-001"), False
    if not escalation and User.select().where(User.login == "sarah.martinez").exists():
        return None, False
    created = dt.datetime(2024, 11, 28, 23, 47, tzinfo=NY)
    app.now_override = created
    with domain.atomic():
        admin = bootstrap_admin(app, "admin", "admin@intime.com", "Escalate Admin")
        pod = Pod.get_or_none(Pod.name == "Recruiting Pod A")
        if pod is None:
            pod = Pod.create(name="Recruiting Pod A", manager=None)
        users = {}
        for login, name, email, role, title, phone in PEOPLE:
            u = User.get_or_none(User.login == login)
            if u is None:
                u = User.create(login=login, name=name, email=email, role=role, title=title,
                                phone=phone, pod=pod.id if role in ("manager", "ic") else None,
                                created_at=created)
            users[login] = u
        Pod.update(manager=users["sarah.martinez"].id).where(Pod.id == pod.id).execute()
        team = Team.get_or_none(Team.key == "finance") or Team.create(
            key="finance", name="Finance Team", email="finance@intime.com")
        TeamMember.insert(team=team.id, user=users["maria.lopez"].id).on_conflict_ignore().execute()
        acc = Account.get_or_none(Account.name == "Google Inc.") or Account.create(
            name="Google Inc.", strategic=True, annual_revenue=Decimal("2000000"))
        for name, email, phone, title in (
                ("Jane Doe", "jane@google.com", "+16505550101", "Hiring Manager"),
                ("Tom Lee", "tom.lee@google.com", "+16505550102", "Procurement Lead")):
            if not Contact.select().where(Contact.email == email).exists():
                Contact.create(account=acc.id, name=name, email=email, phone=phone, title=title)
        contract = Contract.get_or_none(Contract.code == "C-2024-08-15-GOOG-001") or Contract.create(
            code="C-2024-08-15-GOOG-001", account=acc.id, candidate="Sarah Chen",
            title="Senior Developer", bill_rate=Decimal("110"), pay_rate=Decimal("90"),
            start_date=dt.date(2024, 8, 15))
        # the November invoice at $120/hr: the incident itself
        if not Invoice.select().where(Invoice.number == INVOICE).exists():
            Invoice.create(number=INVOICE, contract=contract.id, period="2024-11",
                           hours=Decimal("160"), bill_rate=Decimal("120"), pay_rate=Decimal("90"),
                           imported_at=dt.datetime(2024, 11, 1, 10, 0, tzinfo=NY))
    del admin
    if not escalation:
        app.now_override = None
        return None, True
    app._actor = users["john.smith"]
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for name, data in (
                ("invoice-nov-2024-google.pdf", _pdf("InTime - Invoice November 2024", [
                    "Client: Google Inc.  Candidate: Sarah Chen (Senior Developer)",
                    "Bill rate: $120/hr  Pay rate: $90/hr  Hours: 160",
                    "Total billed: $19,200"])),
                ("contract-aug-2024-google.pdf", _pdf("Contract C-2024-08-15-GOOG-001", [
                    "Google Inc. / InTime - Sarah Chen, Senior Developer",
                    "Bill rate: $110/hr  Pay rate: $90/hr  Start: Aug 15, 2024",
                    "No automatic rate escalation clause"])),
                ("client-email-thread.txt", EMAIL_THREAD.encode())):
            path = os.path.join(tmp, name)
            with open(path, "wb") as fh:
                fh.write(data)
            paths.append(path)
        esc = domain.create_escalation(
            app, title="Unauthorized Rate Increase", category="Client Complaint",
            subcategory="Billing Dispute", priority="critical", description=DESCRIPTION,
            assessment=ASSESSMENT, account="Google Inc.", contact="jane@google.com",
            contract="C-2024-08-15-GOOG-001", attachments=paths,
            idempotency_key="demo:ESC-2024-11-28-001",
            # John raised the very anomaly the rate watch looks for: it must not raise it again
            source_key=anomaly_key("bill-rate", INVOICE, 120))
    with domain.atomic():
        for when, kind, login, text in HISTORY:
            Activity.create(escalation=esc.id, type=kind, body=text,
                            actor=users[login].id if login else None, occurred_at=when,
                            created_at=created, direction="inbound" if login is None else None)
        Activity.update(occurred_at=dt.datetime(2024, 11, 28, 23, 45, tzinfo=NY)).where(
            (Activity.escalation == esc.id) & (Activity.type.in_(["created", "assessment"]))).execute()
    app.now_override = None
    app._actor = None
    app.urgent.clear()      # the demo's 2024 notices wait for 'escalate jobs deliver'
    return esc, True
