"""Rate watch: the use case's incident caught before the client sees it.

An imported invoice (``escalate import invoices``) is an anomaly when

- its bill rate differs from the rate agreed for its period: the contract's own rate, or the
  latest rate change approved with ``escalate contract approve-rate`` effective on or before
  the first day of the period; or
- its margin is negative: the pay rate (the invoice's, else the contract's) exceeds the
  bill rate.

Each anomaly becomes one system-reported escalation (``source='system'``, ``source_key``
unique: ``rate-watch:<kind>:<invoice>:<rate>``), whatever the number of runs or hosts.

Category: billing the client above the agreed rate is a Client Complaint / Billing Dispute
(the client is overcharged, as in the use case); billing below it is a Rate Exception / Bill
Rate; a negative margin is a Rate Exception / Margin.

Priority, from the amount at stake (difference × hours) and the account's value (strategic,
or $1M+ annual revenue): critical at $5,000+, or $1,000+ on a high-value account; high at
$1,000+, or any amount on a high-value account; medium at $100+; low below.

Reporter: the ``system`` user, created on first need: inactive (nobody can act as it),
role ``ic``, no email address (it receives nothing). Pod: ``[jobs.rate_watch] pod`` in the
settings, else the pod of the account's latest escalation, else the only pod; when there is
none, the COO and the admins are told instead of a pod manager.
"""
import datetime as dt
from decimal import Decimal

import peewee as pw

from escalate_cli import domain
from escalate_cli.errors import Refused
from escalate_cli.fmt import money
from escalate_cli.models import (Account, Contract, Escalation, Invoice, Pod, RateApproval,
                                 User)
from escalate_cli.rates import agreed_rate, anomaly_key

from .conf import job_settings

SYSTEM_LOGIN = "system"
HIGH_VALUE_REVENUE = Decimal("1000000")


def system_user(app):
    """The reporter of system escalations (see the module docstring)."""
    with domain.atomic():
        (User.insert(login=SYSTEM_LOGIN, name="System", email="", role="ic", active=False,
                     title="Automatic escalation", created_at=app.now)
         .on_conflict_ignore().execute())
    return User.get(User.login == SYSTEM_LOGIN)


def period_start(invoice, zone):
    text = (invoice.period or "").strip()
    for fmt in ("%Y-%m", "%Y-%m-%d", "%b %Y", "%B %Y", "%m/%Y"):
        try:
            return dt.datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    return invoice.imported_at.astimezone(zone).date()


def _hours(value):
    value = Decimal(value).normalize()
    return f"{value:,f}" if value == value.to_integral() else f"{value:,}"


def priority_for(amount, account):
    high_value = bool(account.strategic) or (account.annual_revenue or 0) >= HIGH_VALUE_REVENUE
    if amount >= Decimal("5000") or (high_value and amount >= Decimal("1000")):
        return "critical"
    if amount >= Decimal("1000") or high_value:
        return "high"
    if amount >= Decimal("100"):
        return "medium"
    return "low"


def anomalies(invoice, contract, account, approvals, zone):
    """What is wrong with one invoice: a list of dicts (pure)."""
    start = period_start(invoice, zone)
    agreed = agreed_rate(contract, approvals, start)
    billed = invoice.bill_rate
    hours = Decimal(invoice.hours)
    pay = invoice.pay_rate if invoice.pay_rate is not None else contract.pay_rate
    where = (f"Invoice {invoice.number} ({invoice.period}) for {contract.candidate} on contract "
             f"{contract.code} ({account.name})")
    found = []
    if billed != agreed:
        over = billed > agreed
        amount = abs(billed - agreed) * hours
        approved = [a for a in approvals if a.effective <= start]
        basis = (f"the rate approved from {approved[-1].effective:%b %d, %Y}" if approved
                 else "no approved rate change is on file")
        found.append({
            "kind": "bill-rate", "rate": billed, "amount": amount,
            "category": "Client Complaint" if over else "Rate Exception",
            "subcategory": "Billing Dispute" if over else "Bill Rate",
            "title": (f"Unauthorized rate increase on {contract.code} ({contract.candidate})" if over
                      else f"Unapproved rate decrease on {contract.code} ({contract.candidate})"),
            "numbers": (f"{money(billed)}/hr billed vs {money(agreed)}/hr agreed, "
                        f"{_hours(hours)} hours, {money(amount)} "
                        f"{'overbilled' if over else 'underbilled'}"),
            "why": (f"The agreed rate is {basis}." if approved else
                    f"The contract's agreed rate is {money(agreed)}/hr and {basis}."),
        })
    if pay is not None and billed < pay:
        amount = (pay - billed) * hours
        found.append({
            "kind": "margin", "rate": billed, "amount": amount,
            "category": "Rate Exception", "subcategory": "Margin",
            "title": f"Negative margin on {contract.code} ({contract.candidate})",
            "numbers": (f"{money(billed)}/hr billed vs {money(pay)}/hr paid, {_hours(hours)} hours, "
                        f"{money(amount)} negative margin"),
            "why": "The placement loses money on every hour billed.",
        })
    for a in found:
        a["source_key"] = anomaly_key(a["kind"], invoice.number, a["rate"])
        a["priority"] = priority_for(a["amount"], account)
        a["description"] = (f"{where}: {a['numbers']}. {a['why']} Found by the rate watch "
                            f"before the client raised it.")
    return found


def _candidates():
    """Invoices that may be off: rate differs from the contract's, pay above bill, or the
    contract has approved changes (then the agreed rate may differ from the contract's)."""
    pay = pw.fn.COALESCE(Invoice.pay_rate, Contract.pay_rate)
    with_changes = RateApproval.select(RateApproval.contract)
    return (Invoice.select(Invoice, Contract, Account)
            .join(Contract, on=(Invoice.contract == Contract.id))
            .join(Account, on=(Contract.account == Account.id))
            .where((Invoice.bill_rate != Contract.bill_rate) | (pay > Invoice.bill_rate)
                   | Contract.id.in_(with_changes))
            .order_by(Invoice.id))


def _pod_for(app, account):
    name = job_settings(app).rate_watch_pod
    if name:
        pod = Pod.get_or_none(Pod.name == name)
        if pod is None:
            raise Refused(f"settings: jobs.rate_watch.pod: unknown pod '{name}'")
        return pod
    latest = (Escalation.select(Escalation.pod).where(
        (Escalation.account == account.id) & Escalation.pod.is_null(False))
        .order_by(Escalation.created_at.desc()).first())
    if latest is not None:
        return Pod.get_by_id(latest.pod_id)
    pods = list(Pod.select().limit(2))
    return pods[0] if len(pods) == 1 else None


class Result:
    def __init__(self):
        self.checked = 0
        self.found = 0
        self.created = []
        self.warnings = []

    def summary(self):
        text = (f"{self.checked} suspicious invoice(s) checked, {self.found} anomaly(ies), "
                f"{len(self.created)} new escalation(s)")
        return text + (f": {', '.join(self.created)}" if self.created else "")


def rate_watch(app, tick=None):
    tick = tick or (lambda: None)
    app.db                      # bind the models to the store
    zone = app.get_settings().zone
    result = Result()
    approvals = {}
    system = None
    for invoice in _candidates().iterator():
        result.checked += 1
        contract, account = invoice.contract, invoice.contract.account
        if contract.id not in approvals:
            approvals[contract.id] = list(RateApproval.select().where(
                RateApproval.contract == contract.id).order_by(RateApproval.effective, RateApproval.id))
        found = anomalies(invoice, contract, account, approvals[contract.id], zone)
        if not found:
            continue
        result.found += len(found)
        known = {e.source_key for e in Escalation.select(Escalation.source_key).where(
            Escalation.source_key.in_([a["source_key"] for a in found]))}
        for a in found:
            if a["source_key"] in known:
                continue
            system = system or system_user(app)
            esc = _raise(app, system, a, account, contract)
            if esc is not None:
                result.created.append(esc.code)
        tick()
    return result


def _raise(app, system, anomaly, account, contract):
    pod = _pod_for(app, account)
    saved = app._actor
    app._actor = system              # events and timeline: the system did it
    try:
        esc = domain.create_escalation(
            app, title=anomaly["title"], category=anomaly["category"],
            subcategory=anomaly["subcategory"], priority=anomaly["priority"],
            description=anomaly["description"], account=account.name, contract=contract.code,
            pod=pod.name if pod else None, source="system", source_key=anomaly["source_key"],
            reporter=system)
    finally:
        app._actor = saved
    if pod is None:
        _tell_leaders(app, esc)
    return esc


def _tell_leaders(app, esc):
    from .notices import Notices
    notices = Notices(app)
    ctx = dict(domain._esc_context(app, esc), urgent=esc.priority in ("critical", "high"),
               recipient=None)
    for user in User.select().where(User.role.in_(["coo", "admin"]) & (User.active == True)):  # noqa: E712
        notices.notify(user, "escalation.new",
                       f"New system escalation with no pod: {esc.title} ({esc.code})", esc.id,
                       email=("new-escalation", dict(ctx, recipient=user.name)), dedupe="new")
    with domain.atomic():
        notices.flush()
