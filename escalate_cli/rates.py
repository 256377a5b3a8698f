"""Agreed rates: approved rate changes on contracts, and the rate an invoice should carry."""
import datetime as dt
from decimal import Decimal, InvalidOperation

from .domain import atomic, emit, require_role
from .errors import NotFound, Refused
from .models import Contract, RateApproval

APPROVERS = ("manager", "coo", "ceo", "admin", "finance")


def anomaly_key(kind, invoice_number, rate):
    """The unique source key of a rate-watch escalation: one per anomaly, however often it runs."""
    return f"rate-watch:{kind}:{invoice_number}:{Decimal(rate):.2f}"


def parse_rate(text, option="--bill-rate"):
    value = str(text or "").strip().replace("$", "").replace(",", "").removesuffix("/hr")
    try:
        rate = Decimal(value)
    except InvalidOperation:
        raise Refused(f"{option}: {text!r} is not an amount like 120 or 120.50")
    if not rate.is_finite() or rate <= 0 or rate >= Decimal("1e9"):
        raise Refused(f"{option}: {text!r} is out of range")
    if rate != rate.quantize(Decimal("0.01")):
        raise Refused(f"{option}: {text!r} has more than two decimals")
    return rate.quantize(Decimal("0.01"))


def get_contract(code):
    contract = Contract.get_or_none(Contract.code == (code or "").strip())
    if contract is None:
        raise NotFound(f"Unknown contract '{code}'")
    return contract


def approve_rate(app, code, bill_rate, effective):
    """Record an approved bill-rate change on a contract, effective from a date."""
    actor = app.actor
    require_role(actor, APPROVERS, "approve rate changes")
    contract = get_contract(code)
    rate = parse_rate(bill_rate)
    from .timeparse import year_in_range
    if not isinstance(effective, dt.date) or not year_in_range(effective.year):
        raise Refused("--effective must be a date like 2024-11-01")
    with atomic():
        same = RateApproval.get_or_none((RateApproval.contract == contract.id)
                                        & (RateApproval.bill_rate == rate)
                                        & (RateApproval.effective == effective))
        if same is not None:
            from .errors import Conflict
            raise Conflict(f"{contract.code}: ${rate}/hr from {effective} was approved already")
        approval = RateApproval.create(contract=contract.id, bill_rate=rate, effective=effective,
                                       approved_by=actor.id, created_at=app.now)
        emit(app, "contract.rate_approved", None, {
            "contract": contract.code, "bill_rate": rate, "previous_bill_rate": contract.bill_rate,
            "effective": effective, "approved_by": actor.login, "approved_at": app.now})
    return contract, approval


def approvals(app, code):
    app.actor
    contract = get_contract(code)
    return contract, list(RateApproval.select().where(RateApproval.contract == contract.id)
                          .order_by(RateApproval.effective, RateApproval.id))


def agreed_rate(contract, approvals_, on):
    """The bill rate in force on ``on``: the latest approval effective by then, else the
    contract's own rate."""
    rate = contract.bill_rate
    for a in sorted(approvals_, key=lambda a: (a.effective, a.id)):
        if a.effective <= on:
            rate = a.bill_rate
    return rate
